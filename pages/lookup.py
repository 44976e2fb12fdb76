"""Call lookup: find calls in the result store, in ViciDial or in a recording folder; a row opens
its deep dive (analysing it on the spot when it is not in the store yet)."""

from __future__ import annotations

from datetime import date, timedelta

import streamlit as st

from core.dashboard import FOLDERS_ENV
from core.results import FINDING_CODES
from core.vicidial.settings import vicidial_configured
from ui import access, cached, charts, dates, errors, lookup, state, widgets

STORE, VICIDIAL, FOLDER = "Result store", "ViciDial", "Recording folder"

st.title("Call lookup")
access.require("view_calls", action="call lookup")
settings = errors.call_or_stop(cached.get_settings)
target = errors.call_or_stop(cached.store_target, settings)
vicidial_on = vicidial_configured(settings)

sources = [STORE, VICIDIAL, FOLDER] if access.can("lookup_sources") else [STORE]  # viewers: analysed calls only
source = st.segmented_control(
    "Source", sources, default=VICIDIAL if vicidial_on and VICIDIAL in sources else STORE, key=state.LOOKUP_SOURCE,
    required=True, help="Result store: calls already analysed. ViciDial: every recording in the dialer's "
                        "database. Recording folder: files on this server.")
if source != STORE:
    access.require("lookup_sources", action="searching ViciDial and recording folders")
results = state.get(state.LOOKUP_RESULTS)
if results and results.get("source") != source:
    results = None

if source == STORE:
    status = errors.call_or_stop(cached.store_status, target.url)
    first, last = status["first_call_time"], status["last_call_time"]
    with st.form(state.LOOKUP_STORE_FORM):
        c1, c2, c3 = st.columns(3)
        days = c1.date_input("Call dates", value=[first.date(), last.date()] if first and last else [],
                             help="Empty: any date")
        text = c2.text_input("Phone, call id or lead", placeholder="e.g. 3125550101")
        agent = c3.text_input("Agent", placeholder="ViciDial user")
        c4, c5, c6 = st.columns(3)
        campaign = c4.text_input("Campaign / in-group")
        finding = c5.multiselect("Findings", FINDING_CODES, format_func=charts.finding_label)
        max_mos = c6.number_input("MOS at most", min_value=1.0, max_value=5.0, value=None, step=0.1,
                                  help="Only calls whose worst leg scored at most this")
        submitted = st.form_submit_button("Search", type="primary", icon=":material/search:")
    if submitted or results is None:  # the newest calls until the analyst searches
        since, until = dates.date_bounds(days)
        frame = errors.call_or_stop(cached.list_calls, target.url, since=since, until=until, text=text or None,
                                agent=agent.strip() or None, campaign=campaign.strip() or None,
                                finding=finding or None, max_mos=max_mos, limit=500)
        table, _links = lookup.store_results(frame)
        results = {"source": source, "table": access.shown_frame(table), "links": access.call_links(frame["call_id"]),
                   "columns": widgets.CALL_COLUMNS}
        state.put(state.LOOKUP_RESULTS, results)

elif source == VICIDIAL:
    if not vicidial_on:
        st.info("**ViciDial is not configured.** Set `[vicidial] host`, `user` and `password` in callqa.toml, in "
                "`.streamlit/secrets.toml` or as `CALLQA_VICIDIAL_HOST` / `_USER` / `_PASSWORD`, then reload. "
                "The result store and recording folders work without it.", icon=":material/link_off:")
        st.stop()
    with st.form(state.LOOKUP_VICIDIAL_FORM):
        c1, c2, c3, c4 = st.columns(4)
        days = c1.date_input("Call dates", value=(date.today() - timedelta(days=7), date.today()))
        phone = c2.text_input("Phone", placeholder="any spelling, e.g. +1 312 555 0101")
        agent = c3.text_input("Agent", placeholder="ViciDial user")
        lead = c4.text_input("Lead id")
        c5, c6, c7, c8 = st.columns(4)
        campaign = c5.text_input("Campaign")
        ingroup = c6.text_input("In-group")
        status_code = c7.text_input("Status", placeholder="e.g. SALE, NA, DROP")
        limit = c8.number_input("At most", min_value=10, max_value=1000, value=100, step=10)
        submitted = st.form_submit_button("Search ViciDial", type="primary", icon=":material/search:")
    if submitted:
        filters = errors.call_or_stop(lookup.vicidial_filters, days=days, phone=phone, agent=agent, lead=lead,
                                  campaign=campaign, ingroup=ingroup, status=status_code)
        frame = errors.call_or_stop(cached.vicidial_search, filters, int(limit))
        table, links = errors.call_or_stop(lookup.vicidial_results, frame, target.url)
        results = {"source": source, "table": table, "links": links, "columns": lookup.VICIDIAL_COLUMNS}
        state.put(state.LOOKUP_RESULTS, results)

else:
    folders = [str(f) for f in errors.call_or_stop(cached.allowed_folders, settings)]
    if not folders:
        st.info("**No recording folders are configured.** Add them to `[dashboard] folders` in callqa.toml "
                f"(or `{FOLDERS_ENV}`).", icon=":material/folder_off:")
        st.stop()
    with st.form(state.LOOKUP_FOLDER_FORM):
        c1, c2 = st.columns([2, 1])
        folder = c1.selectbox("Folder", folders)
        sub = c2.text_input("Sub-folder", placeholder="optional, e.g. 2026-11-07")
        c3, c4 = st.columns([2, 1])
        days = c3.date_input("Call dates", value=[], help="From the ViciDial file name; empty: any date")
        text = c4.text_input("Phone or name contains")
        submitted = st.form_submit_button("List calls", type="primary", icon=":material/folder_open:")
    if submitted:
        chosen = errors.call_or_stop(lookup.folder_choice, folder, sub)
        frame = errors.call_or_stop(cached.folder_calls, chosen)
        frame = lookup.filter_folder_calls(frame, days=days, text=text)
        table, links = errors.call_or_stop(lookup.folder_results, frame, chosen, target.url)
        results = {"source": source, "table": table, "links": links, "columns": lookup.FOLDER_COLUMNS}
        state.put(state.LOOKUP_RESULTS, results)

if results is None:
    st.caption("Fill in the filters and search; every field is optional.")
    st.stop()
if results["table"].empty:
    widgets.empty_state("No calls match these filters.", icon=":material/search_off:")
    st.stop()
n = len(results["table"])
st.caption(f"{n} call{'s' if n != 1 else ''} · click a row to open its deep dive "
           "(calls not analysed yet are analysed first).")
widgets.selectable_table(results["table"], key=state.LOOKUP_TABLE, column_config=results["columns"])
widgets.open_selected_call(state.LOOKUP_TABLE, results["links"])
