"""Report: the managers' report of a day or a week, as ``callqa report`` mails it."""

from __future__ import annotations

from datetime import date

import streamlit as st

from ui import access, alerts, cached, errors, state, widgets

access.require("view_calls", action="the report")
target = errors.call_or_stop(cached.store_target)
if target.demo:
    widgets.demo_banner()
st.title("Report")
st.caption("The report `callqa report` e-mails to managers (callqa-report.timer sends the week's on Mondays).")

c1, c2, c3 = st.columns([1, 1, 2], vertical_alignment="bottom")
period = c1.segmented_control("Period", ["week", "day"], default="week", key=state.REPORT_PERIOD, required=True,
                              format_func=lambda p: {"week": "7 days", "day": "One day"}[p])
end = c2.date_input("Up to (not included)", value=date.today(), key=state.REPORT_END)
ai = access.can("use_ai")  # the narrative is a Claude request: analysts and admins
narrative = c3.toggle("With Haiku's narrative", key=state.REPORT_NARRATIVE,
                      disabled=not (ai and cached.claude_configured()),
                      help="Sends the aggregates (never a phone number or call id) to Claude Haiku; needs "
                           "ANTHROPIC_API_KEY.")
html, error = errors.call_or_stop(alerts.report_html, target.url, period, end, bool(narrative) and ai)
if error:
    st.warning(f"No narrative: {error}", icon=":material/info:")
st.download_button("Download the HTML", html, file_name=f"callqa-report-{period}-{end:%Y-%m-%d}.html",
                   mime="text/html", icon=":material/download:")
st.html(html)
