"""Session-state and widget keys, prefixed per page, and the deep-link parameters.

Widget state belongs to one page and is dropped on navigation; anything that must survive a page
switch lives under one of these keys. Pages and ``ui`` modules never spell a key as a literal:
every ``key=`` and every ``st.session_state`` entry is a constant here (a test checks it).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

# --- deep links ---------------------------------------------------------------------------------
#: ``/deep_dive?call=<call_id>`` opens a stored call; the optional parameters say where an
#: unanalysed call comes from so the deep dive can analyse it on the spot.
PARAM_CALL = "call"
PARAM_RECORDING_ID = "recording_id"
PARAM_FOLDER = "folder"
#: ``/alerts?event=<id>`` opens one alert with the calls it counted (the link in every alert message).
PARAM_EVENT = "event"

# --- page paths (relative to app.py, as st.switch_page and AppTest.switch_page want them) ------
PAGE_OVERVIEW = "pages/overview.py"
PAGE_LOOKUP = "pages/lookup.py"
PAGE_DEEP_DIVE = "pages/deep_dive.py"
PAGE_FLEET = "pages/fleet.py"
PAGE_CHAT = "pages/chat.py"
PAGE_SETTINGS = "pages/settings.py"
PAGE_ALERTS = "pages/alerts.py"
PAGE_REPORT = "pages/report.py"
PAGE_AUDIT = "pages/audit.py"

# --- who is signed in (ui.access) ------------------------------------------------------------------
ACCESS_WHO = "access.who"  # core.access.roles.Identity of this run (set by ui.access.gate)
ACCESS_MODE = "access.mode"  # open | proxy | accounts
ACCESS_AUDITED = "access.audited"  # {(call_id, leg)} embedded players already in the audit log
ACCESS_GRANTS = "access.grants"  # {(user, call_id, leg): (grant, expires)} for the players' URLs

# --- overview -----------------------------------------------------------------------------------
OVERVIEW_PERIOD = "overview.period"
OVERVIEW_WORST = "overview.worst_table"

# --- call lookup --------------------------------------------------------------------------------
LOOKUP_SOURCE = "lookup.source"
LOOKUP_RESULTS = "lookup.results"  # the last search: {"source", "frame", "note"}
LOOKUP_TABLE = "lookup.table"
LOOKUP_STORE_FORM = "lookup.store_form"
LOOKUP_VICIDIAL_FORM = "lookup.vicidial_form"
LOOKUP_FOLDER_FORM = "lookup.folder_form"

# --- deep dive ----------------------------------------------------------------------------------
DEEP_CALL = "deep.call"  # the last call opened, for returning to the page without a link
DEEP_SEEK = "deep.seek"  # {"call_id", "start_s", "end_s", "label"} of the finding row clicked
DEEP_FINDINGS_TABLE = "deep.findings_table"
DEEP_SUMMARISE = "deep.summarise"  # the "Summarise with Claude" button
DEEP_MARK_AGENT = "deep.mark_agent"  # f"{DEEP_MARK_AGENT}.{side}": "this side is the agent" buttons

# --- fleet --------------------------------------------------------------------------------------
FLEET_DAYS = "fleet.days"
FLEET_BUCKET = "fleet.bucket"
FLEET_GROUP = "fleet.group"
FLEET_METRIC = "fleet.metric"
FLEET_SORT = "fleet.sort"
FLEET_GROUPS_TABLE = "fleet.groups_table"  # one per ranking: f"{FLEET_GROUPS_TABLE}.{by}"
FLEET_CALLS_TABLE = "fleet.calls_table"
FLEET_WORST_BY = "fleet.worst_by"
FLEET_SIDE_CONFIDENCE = "fleet.side_confidence"
#: Download buttons, by what they download.
FLEET_DOWNLOADS = {"hist": "fleet.dl.hist", "trend": "fleet.dl.trend", "rates": "fleet.dl.rates",
                   "groups": "fleet.dl.groups", "calls": "fleet.dl.calls", "sides": "fleet.dl.sides"}

# --- settings & health ----------------------------------------------------------------------------
SETTINGS_REFRESH = "settings.refresh"

# --- alerts and report ----------------------------------------------------------------------------
ALERTS_FIRING_TABLE = "alerts.firing_table"
ALERTS_HISTORY_TABLE = "alerts.history_table"
ALERTS_CALLS_TABLE = "alerts.calls_table"
ALERTS_CHECK_BUTTON = "alerts.check"
REPORT_PERIOD = "report.period"
REPORT_END = "report.end"
REPORT_NARRATIVE = "report.narrative"
# --- audit log ------------------------------------------------------------------------------------
AUDIT_FORM = "audit.form"
AUDIT_VERIFY = "audit.verify"

# --- chat ---------------------------------------------------------------------------------------
CHAT_MESSAGES = "chat.messages"  # the transcript as shown
CHAT_CONVERSATION = "chat.conversation"  # core.llm.chat.Conversation (API history, no key)


def get(key: str, default: Any = None) -> Any:
    """``st.session_state[key]`` or ``default``."""
    return st.session_state.get(key, default)


def put(key: str, value: Any) -> None:
    st.session_state[key] = value


def drop(key: str) -> None:
    st.session_state.pop(key, None)


def selected_row(key: str) -> int | None:
    """The index of the row selected in the single-row ``st.dataframe`` with widget ``key``."""
    event = st.session_state.get(key)
    if event is None:
        return None
    selection = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", {})
    rows = selection.get("rows", []) if isinstance(selection, dict) else getattr(selection, "rows", [])
    return int(rows[0]) if rows else None
