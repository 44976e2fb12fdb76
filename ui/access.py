"""Who is using the dashboard, what their role lets them see, and the server-side refusals.

Every run of the app resolves the identity again (:func:`gate`, called by ``app.py`` before any
page): from a trusted reverse proxy's header, from the session cookie of a built-in account
(signed in on ``/callqa/signin``, :mod:`ui.routes`), or nobody in open mode (the demo). Pages
call :func:`require` before doing what a role may lack, so a crafted request for a hidden page
or action is refused, not only hidden. The rules themselves are in :mod:`core.access`.
"""

from __future__ import annotations

from urllib.parse import quote, urljoin

import pandas as pd
import streamlit as st

from core.access.roles import Identity
from core.errors import AccessDeniedError, CallQAError
from ui import state
from ui.errors import show_error


def _access():
    from core.access.settings import AccessSettings
    from ui import cached

    return AccessSettings.from_settings(cached.get_settings())


def _resolve() -> tuple[Identity | None, str]:
    """``(identity or None, mode)`` of this browser session, from the request it connected with."""
    from core.access.identity import access_mode, open_identity, request_identity
    from ui import cached, routes

    access = _access()
    headers = dict(st.context.headers or {})
    peer = st.context.ip_address  # None: the local host
    try:
        store = cached.get_store()
    except CallQAError:
        # no store yet: with nothing configured this is the demo before it is built (open); with
        # a proxy the header decides; with accounts possibly configured, nobody gets in
        if access.mode in ("open", "proxy") or access.proxy_header or cached.store_target().demo:
            store = None
        else:
            raise
    mode = access_mode(access, store)
    remote = routes.client_address(access, headers, peer)
    if mode == "open":
        return open_identity(access, remote=remote), mode
    if store is None and mode == "accounts":
        return None, mode
    who = request_identity(access, store, headers=headers, remote=peer, session_token=st.context.cookies.get(
        routes.SESSION_COOKIE))
    if who is not None and remote != who.remote:
        who = Identity(who.name, who.role, who.source, who.groups, remote)
    return who, mode


def gate() -> Identity:
    """The identity of this run (kept in ``state.ACCESS_WHO`` for the pages); without one, the
    sign-in prompt (or why there is none) is shown and the run stops."""
    from ui import routes

    try:
        who, mode = _resolve()
    except CallQAError as exc:
        show_error(exc)
        st.stop()
        raise
    if who is not None and who.role is not None:
        state.put(state.ACCESS_WHO, who)
        state.put(state.ACCESS_MODE, mode)
        return who
    state.drop(state.ACCESS_WHO)
    st.title("callqa")
    if who is not None:
        st.error(f"**{who.name}** is signed in but has no role in callqa: ask an administrator to map the user "
                 "or one of its groups in `[access]`.", icon=":material/block:")
    elif mode == "proxy":
        st.error("**Not signed in.** The reverse proxy did not name a user, or this connection does not come "
                 "from one of `[access] trusted_proxies`.", icon=":material/block:")
    elif not routes.ACTIVE:
        st.error("**Sign-in is not available**: start the dashboard with `streamlit run server.py` (it serves "
                 "the sign-in page), as `make run` and the systemd unit do.", icon=":material/block:")
    else:
        st.info("Recordings and call data need a signed-in user.", icon=":material/lock:")
        _same_tab_link("Sign in", f"{routes.SIGNIN_PATH}?next={quote(_here(), safe='')}", primary=True)
    st.stop()
    raise AssertionError("unreachable")


def _here() -> str:
    """The path (and query) of the page the browser shows, to come back to after signing in."""
    from urllib.parse import urlsplit

    url = st.context.url or "/"
    parts = urlsplit(url)
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in st.query_params.to_dict().items())
    return (parts.path or "/") + (f"?{query}" if query else "")


def who() -> Identity:
    """The identity :func:`gate` found for this run; a page run without ``app.py`` (Streamlit's
    legacy handling of a fresh server's first session) goes through the gate here."""
    current = state.get(state.ACCESS_WHO)
    return current if current is not None else gate()


def can(permission: str) -> bool:
    """True when the current user's role has ``permission`` (:data:`core.access.roles.PERMISSIONS`)."""
    return who().can(permission)


def require(permission: str, *, action: str) -> Identity:
    """Refuse the page (a message, then stop) unless the user's role has ``permission``."""
    from core.access.roles import require as check

    current = who()
    try:
        check(current, permission, action=action)
    except AccessDeniedError as exc:
        show_error(exc)
        st.stop()
    return current


def trail():
    """The audit trail of the current user in the dashboard."""
    from core.audit import AuditTrail
    from ui import cached

    return AuditTrail(cached.get_store(), who(), "dashboard")


def sidebar() -> None:
    """Who is signed in, with what role, and the sign-out link (accounts mode)."""
    from ui import routes

    current = who()
    if state.get(state.ACCESS_MODE) == "open" and current.role == "admin":
        return
    st.caption(f":material/person: {current.name} · {current.role}")
    if state.get(state.ACCESS_MODE) == "accounts" and routes.ACTIVE:
        _same_tab_link("Sign out", routes.SIGNOUT_PATH)


_LINK_STYLE = ("display:inline-block;padding:.4rem .9rem;border-radius:.5rem;text-decoration:none;font-weight:500;"
               "border:1px solid {border};background:{background};color:{color}")


def _same_tab_link(label: str, href: str, *, primary: bool = False) -> None:
    """A button-like link that stays in this tab (``st.link_button`` opens a new one)."""
    import html

    style = _LINK_STYLE.format(border="#ff4b4b" if primary else "#d0d3da",
                               background="#ff4b4b" if primary else "transparent",
                               color="#fff" if primary else "inherit")
    st.html(f'<a href="{html.escape(href)}" style="{style}">{html.escape(label)}</a>')


# --- what a role sees ----------------------------------------------------------------------------
def visible_digits() -> int:
    from core.privacy.settings import PrivacySettings
    from ui import cached

    try:
        return PrivacySettings.from_settings(cached.get_settings()).visible_digits
    except CallQAError:
        return 2


def call_label(call_id: str) -> str:
    """A call id as the user may read it (masked without ``see_personal``)."""
    if can("see_personal"):
        return call_id
    from core.privacy.mask import mask_call_id

    return mask_call_id(call_id, visible=visible_digits())


def shown_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A table (or CSV) as the user may see it: numbers masked and names dropped without ``see_personal``."""
    if can("see_personal"):
        return frame
    from core.privacy.mask import mask_frame

    return mask_frame(frame, visible=visible_digits())


def shown_text(text: str) -> str:
    """A text (a warning, a failure reason) with numbers masked without ``see_personal``."""
    if can("see_personal"):
        return text
    from core.privacy.mask import mask_text

    return mask_text(text, visible=visible_digits())


def call_links(call_ids) -> list[dict[str, str]]:
    """Deep-link parameters of stored calls: the call id, or for a role without ``see_personal``
    its opaque reference (so the address bar shows no phone number)."""
    ids = [str(c) for c in call_ids]
    if can("see_personal"):
        return [{state.PARAM_CALL: c} for c in ids]
    from ui import cached

    refs = cached.call_refs(cached.store_target().url, tuple(ids))
    return [{state.PARAM_CALL: refs.get(c, c)} for c in ids]


# --- recordings ------------------------------------------------------------------------------------
def audio_player(call_id: str, leg: str, source: str, *, start_s: float = 0.0) -> None:
    """One leg's player, for roles with ``play_audio`` only.

    With the dashboard's routes (``streamlit run server.py``) the browser fetches the audio from
    ``/callqa/audio/<grant>``, which checks the role again and writes each playback and download
    to the audit log. Without them (open mode only, e.g. ``streamlit run app.py``) the bytes are
    embedded, and the playback is audited when the player is shown.
    """
    from core.audio import preview
    from ui import cached, routes
    from ui.errors import call_or_none

    current = require("play_audio", action="playing recordings")
    if routes.ACTIVE:
        grant = _grant(call_id, leg, current.name)
        base = st.context.url or ""
        url = urljoin(base, routes.audio_path(grant))
        st.audio(url, format="audio/wav", start_time=int(start_s))
        st.markdown(f"[:material/download: Download]({routes.audio_path(grant)}?download=1)")
        return
    if state.get(state.ACCESS_MODE) != "open":
        st.caption(":material/volume_off: Playback needs the dashboard's own routes (`streamlit run server.py`).")
        return
    stamp = preview.file_stamp(source)
    data = call_or_none(cached.leg_audio, source, stamp)
    if data is not None:
        _audit_once("audio.play", call_id, leg)
        st.audio(data, format="audio/wav", start_time=int(start_s))


def _grant(call_id: str, leg: str, user: str) -> str:
    """The session's grant for one leg, reused while it has time left (a rerun keeps the player's URL,
    so the browser does not fetch the recording again)."""
    import time

    from ui import routes

    grants: dict = state.get(state.ACCESS_GRANTS, {})
    key = (user, call_id, leg)
    token, expires = grants.get(key, ("", 0.0))
    if expires - time.time() < 600:
        token = routes.issue_grant(call_id, leg, user)
        grants = {**grants, key: (token, time.time() + routes.GRANT_TTL_S)}
        state.put(state.ACCESS_GRANTS, grants)
    return token


def _audit_once(action: str, call_id: str, leg: str) -> None:
    """Record an embedded player once per call and leg in this browser session."""
    seen: set[tuple[str, str]] = state.get(state.ACCESS_AUDITED, set())
    if (call_id, leg) in seen:
        return
    trail().record(action, target=call_id, detail={"leg": leg, "delivery": "embedded"})
    state.put(state.ACCESS_AUDITED, seen | {(call_id, leg)})


def role_note(what: str) -> None:
    """A caption saying what the current role does not show."""
    st.caption(f":material/lock: {what} need the analyst role (you are {who().role}).")
