"""Settings & health: ``callqa doctor``'s checks of this setup, and where the configuration comes from
(no secret shown)."""

from __future__ import annotations

import streamlit as st

from ui import access, cached, errors, health, state

st.title("Settings & health")
access.require("settings", action="the settings page")
c1, c2 = st.columns([4, 1])
c1.caption("Live checks of the store, the models, ViciDial, recording access and the Claude key — the same "
           "checks as `callqa doctor`. Secrets are reported as present or absent, never shown.")
if c2.button("Refresh data", icon=":material/refresh:", help="Forget cached queries and check again",
             key=state.SETTINGS_REFRESH):
    st.cache_data.clear()
    st.rerun()

target = errors.call_or_none(cached.store_target)
if target is not None:
    st.caption(f"The dashboard reads {'the demo store' if target.demo else 'the result store'} "
               f"(chosen by {target.origin}).")
health.health_page()

st.subheader("Configuration")
st.dataframe(errors.call_or_stop(health.configuration_rows), hide_index=True, width="stretch",
             column_config={"Setting": st.column_config.TextColumn(width="medium"),
                            "Value": st.column_config.TextColumn(width="large")})

st.subheader("How to configure")
st.markdown(
    "- **Real data:** set `[vicidial] host`, `user`, `password` (and `[recordings]` access) in `callqa.toml` or "
    "`.streamlit/secrets.toml` — see `callqa.toml.example` and `.streamlit/secrets.toml.example`. "
    "Environment variables (`CALLQA_VICIDIAL_HOST`, `CALLQA_VICIDIAL_PASSWORD`…) override both; every "
    "setting can be overridden as `CALLQA_<SECTION>_<KEY>`.\n"
    "- **Result store:** `CALLQA_STORE` or `[store] url` (a SQLite path or `postgresql://…`); fill it with "
    "`callqa scan FOLDER` or `callqa scan vicidial`.\n"
    "- **Recording folders** for Call lookup: `[dashboard] folders` or `CALLQA_DASHBOARD_FOLDERS`.\n"
    "- **Claude** (AI summaries, chat): `ANTHROPIC_API_KEY` in the environment or in `.streamlit/secrets.toml`.\n"
    "- **Models:** `make models` installs the NISQA weights.\n\n"
    "Restart the dashboard after changing the configuration."
)
if target is not None and target.demo:
    st.caption(":material/science: Running on the demo store because neither a store nor ViciDial is configured.")
