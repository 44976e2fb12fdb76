"""Audit log (admins): who played, downloaded, asked or changed what, when and from where."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pandas as pd
import streamlit as st

from ui import access, cached, errors, state

ACTIONS = {"": "Every action", "audio.": "Playbacks and downloads", "summary": "AI summaries",
           "investigate": "Investigations", "chat.": "Chat questions and SQL", "user.": "Accounts",
           "voiceprint.": "Voiceprints", "settings.": "Settings", "login": "Sign-ins", "login.failed": "Failed sign-ins",
           "retention.apply": "Retention runs"}

st.title("Audit log")
access.require("audit", action="the audit log")
st.caption("Every playback or download of a recording, every AI summary, investigation and chat question, every "
           "SQL the model ran, and every change of accounts, voiceprints or settings. Entries can only be appended; "
           "the retention removes those older than `[retention] audit_days`. Times are UTC.")

with st.form(state.AUDIT_FORM):
    c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
    since = c1.date_input("From", value=date.today() - timedelta(days=7))
    actor = c2.text_input("User", placeholder="e.g. alice, api:grafana, cli:root")
    action = c3.selectbox("Action", list(ACTIONS), format_func=lambda a: ACTIONS[a])
    limit = c4.number_input("At most", min_value=10, max_value=5000, value=500, step=50)
    st.form_submit_button("Show", type="primary", icon=":material/filter_alt:")


def _entries() -> list[dict]:
    from core.audit import entries

    start = datetime.combine(since, time()) if isinstance(since, date) else None
    return entries(cached.get_store(), since=start, actor=actor.strip() or None, action=action or None,
                   limit=int(limit))


rows = errors.call_or_stop(_entries)
if not rows:
    st.info("No audit entries match.", icon=":material/policy:")
else:
    frame = pd.DataFrame(rows)[["at", "actor", "role", "source", "action", "target", "detail", "remote"]]
    st.dataframe(frame, hide_index=True, width="stretch", column_config={
        "at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "actor": "User", "role": "Role", "source": "From", "action": "Action", "target": "On",
        "detail": st.column_config.TextColumn("Detail", width="large"), "remote": "Address"})
    st.caption(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}, newest first.")

if st.button("Verify the log's hash chain", icon=":material/verified:", key=state.AUDIT_VERIFY):
    from core.audit import verify

    check = errors.call_or_stop(verify, cached.get_store())
    if check.ok:
        st.success(f"Intact: {check.checked} entries checked.", icon=":material/verified:")
    else:
        st.error(f"Broken at entry {check.broken_at}: {check.reason}.", icon=":material/gpp_bad:")
