"""callqa dashboard: the entrypoint. Page config, navigation, the sidebar health panel.

Served by ``streamlit run server.py`` (``make run``), which adds the sign-in form and the
recordings' role-checked route (:mod:`ui.routes`); ``streamlit run app.py`` runs it alone. Pages
live in ``pages/`` and are registered here with ``st.navigation``, those a role lacks left out
(and refused by the pages themselves); their glue is in ``ui/``, the work in ``core/``.
"""

from __future__ import annotations

import streamlit as st

from ui import access, health, state

st.set_page_config(page_title="callqa", page_icon=":material/graphic_eq:", layout="wide")
who = access.gate()  # signed in (or open mode) before any page runs; pages check their own role too

deep_dive = st.Page(state.PAGE_DEEP_DIVE, title="Deep dive", icon=":material/graphic_eq:", url_path="deep_dive")
pages = {
    "Calls": [
        st.Page(state.PAGE_OVERVIEW, title="Overview", icon=":material/dashboard:", default=True),
        st.Page(state.PAGE_LOOKUP, title="Call lookup", icon=":material/search:", url_path="lookup"),
        deep_dive,
    ],
    "Fleet": [st.Page(state.PAGE_FLEET, title="Fleet trends", icon=":material/insights:", url_path="fleet"),
              st.Page(state.PAGE_ALERTS, title="Alerts", icon=":material/notifications:", url_path="alerts"),
              st.Page(state.PAGE_REPORT, title="Report", icon=":material/summarize:", url_path="report")],
    "Assistant": [st.Page(state.PAGE_CHAT, title="Chat", icon=":material/forum:", url_path="chat")]
    if who.can("use_ai") else [],
    "Admin": ([st.Page(state.PAGE_SETTINGS, title="Settings & health", icon=":material/settings:",
                       url_path="settings")] if who.can("settings") else [])
    + ([st.Page(state.PAGE_AUDIT, title="Audit log", icon=":material/policy:", url_path="audit")]
       if who.can("audit") else []),
}
page = st.navigation({section: entries for section, entries in pages.items() if entries})

# ``?call=<id>`` opens the deep dive from any page (links written by the chat are relative)
if state.PARAM_CALL in st.query_params and page.url_path != deep_dive.url_path:
    st.switch_page(deep_dive, query_params=st.query_params.to_dict())

with st.sidebar:
    access.sidebar()
    health.sidebar_panel()

page.run()
