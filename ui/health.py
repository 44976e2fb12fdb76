"""Health of the setup, as ``callqa doctor`` reports it (:mod:`core.doctor`): the sidebar's compact
list and the Settings & health page, plus where the configuration comes from.

Nothing here decides what is healthy; secrets are reported as set or not set by the checks.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import streamlit as st

from core.doctor import FAIL, PASS, WARN, Check
from core.errors import CallQAError

#: The checks about what the dashboard itself uses (the sidebar and the top of the Settings page).
DASHBOARD_CHECKS = ("store", "weights", "vad", "vicidial", "recordings", "claude")
_ICONS = {PASS: ":green[:material/check_circle:]", WARN: ":orange[:material/warning:]",
          FAIL: ":red[:material/error:]"}


@st.cache_data(ttl=60, show_spinner="Checking the setup…")
def checks(store_url: str, *, live: bool, only: tuple[str, ...] | None = None) -> tuple[Check, ...]:
    """The doctor's checks for the app's settings and the store it reads (cached a minute; the
    Settings page's refresh button clears it). ``live`` connects to ViciDial."""
    from core.doctor import run_doctor
    from ui import cached

    try:
        settings = cached.get_settings()
    except CallQAError as exc:
        return (Check("config", FAIL, str(exc), "Configuration"),)
    return run_doctor(settings, store_url=store_url, only=only, live=live).checks


def _store_url() -> str:
    from ui import cached

    try:
        return cached.store_target().url
    except CallQAError:
        return ""


def sidebar_panel() -> None:
    """The sidebar under the navigation: a demo badge and the compact health list (no connections)."""
    from ui import cached

    try:
        demo = cached.store_target().demo
    except CallQAError:
        demo = False
    if demo:
        st.badge("Demo data", icon=":material/science:", color="violet")
    st.caption("Health")
    lines = [f"{_ICONS.get(c.status, '')} **{c.title}**" for c in checks(_store_url(), live=False,
                                                                         only=DASHBOARD_CHECKS)]
    st.markdown("  \n".join(lines), help="Details on the Settings & health page")


def check_cards(items: Iterable[Check]) -> None:
    """One bordered card per check: status, title and what the check found."""
    for c in items:
        with st.container(border=True):
            st.markdown(f"{_ICONS.get(c.status, '')} **{c.title}** — {c.detail}")


def health_page() -> None:
    """Every check, live: what the dashboard uses first, then the rest of ``callqa doctor``."""
    report = checks(_store_url(), live=True)
    ours = [c for c in report if c.name in DASHBOARD_CHECKS or c.name == "config"]
    check_cards(ours)
    rest = [c for c in report if c not in ours]
    if rest:
        st.subheader("This machine")
        st.caption("The rest of `callqa doctor`: what running callqa in production needs.")
        check_cards(rest)


def configuration_rows() -> pd.DataFrame:
    """Where the configuration comes from and the paths in use (no secrets)."""
    from core.store.engine import redact_url
    from ui import cached

    settings = cached.get_settings()
    target = cached.store_target(settings)
    rows = [
        ("Configuration file", str(settings.path) if settings.path else "none (defaults; set CALLQA_CONFIG)"),
        ("Secrets file sections", ", ".join(sorted(cached.secret_sections())) or "none"),
        ("Result store", redact_url(target.url) if "://" in target.url else target.url),
        ("Store chosen by", {"demo": "demo (nothing configured)", "default": "default path"}.get(target.origin,
                                                                                              target.origin)),
        ("Data folder", str(settings.data_dir)),
        ("Models folder", str(settings.models_dir)),
        ("Recording folders", ", ".join(str(f) for f in cached.allowed_folders(settings)) or "none"),
    ]
    return pd.DataFrame(rows, columns=["Setting", "Value"])
