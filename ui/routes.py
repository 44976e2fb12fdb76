"""The dashboard's own HTTP routes, served beside Streamlit by ``server.py`` (``st.App``).

- ``GET/POST /callqa/signin``: the sign-in form of the built-in accounts. A good password sets
  the session cookie (``HttpOnly``, ``SameSite=Lax``, ``Secure`` over HTTPS); the form carries a
  CSRF token bound to a cookie; failures and lock-outs are in the audit log.
- ``GET /callqa/signout``: ends the session and clears the cookie.
- ``GET /callqa/audio/<grant>``: a leg of a call as WAV, the only way recordings reach a browser.
  A grant is issued to one user for one call and leg by the deep dive of a role that may play
  recordings; the route checks the requester again (the same user, the role still allowing it),
  writes each playback (the first range of a play) and each download (``?download=1``) to the
  audit log, and answers ``Cache-Control: no-store``.

The Streamlit script learns whether these routes run from :data:`ACTIVE`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import time
from collections import OrderedDict
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from core.access.roles import Identity
from core.errors import AccessDeniedError, CallQAError

SIGNIN_PATH = "/callqa/signin"
SIGNOUT_PATH = "/callqa/signout"
AUDIO_PREFIX = "/callqa/audio/"
SESSION_COOKIE = "callqa_session"
CSRF_COOKIE = "callqa_csrf"
GRANT_TTL_S = 3600
#: True once ``server.py`` serves these routes (the script then links to them).
ACTIVE = False
_SECRET = secrets.token_bytes(32)  # grants live as long as this process
_SAFE_NEXT = re.compile(r"^/(?!/)[^\s\\]*$")


# --- grants ------------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_grant(call_id: str, leg: str, user: str, *, ttl_s: int = GRANT_TTL_S) -> str:
    """A signed, expiring permission for ``user`` to fetch one leg of one call."""
    body = _b64(json.dumps({"c": call_id, "l": leg, "u": user, "e": int(time.time()) + ttl_s},
                           separators=(",", ":")).encode())
    sig = _b64(hmac.new(_SECRET, body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig}"


def read_grant(token: str) -> dict[str, Any] | None:
    """The grant's ``c``all, ``l``eg and ``u``ser; None when forged, malformed or expired."""
    body, _, sig = token.partition(".")
    if not body or not sig or len(token) > 2000:
        return None
    expected = _b64(hmac.new(_SECRET, body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(sig, expected):
        return None
    try:
        grant = json.loads(_unb64(body))
    except ValueError:
        return None
    return grant if isinstance(grant, dict) and grant.get("e", 0) >= time.time() else None


def audio_path(grant: str) -> str:
    return AUDIO_PREFIX + grant


# --- who is asking (the same rules as the script's ui.access) -------------------------------------------
def client_address(access, headers: dict[str, str], peer: str | None) -> str | None:
    """The client's address for the audit log: the proxy's ``X-Forwarded-For`` when the peer is a
    trusted proxy, else the peer (None: the local host)."""
    if peer is None or access.trusts(peer):
        forwarded = next((v for k, v in headers.items() if k.lower() == "x-forwarded-for"), "")
        last = forwarded.split(",")[-1].strip() if forwarded else ""
        if last:
            return last[:64]
    return peer


def _settings_and_store():
    from core.access.settings import AccessSettings
    from ui import cached

    return AccessSettings.from_settings(cached.get_settings()), cached.get_store()


def request_identity(request: Request) -> tuple[Identity | None, Any, Any]:
    """``(identity, access settings, store)`` of an HTTP request to these routes."""
    from core.access.identity import request_identity as resolve

    access, store = _settings_and_store()
    peer = request.client.host if request.client else None
    headers = dict(request.headers)
    who = resolve(access, store, headers=headers, remote=peer, session_token=request.cookies.get(SESSION_COOKIE))
    if who is not None:
        who = Identity(who.name, who.role, who.source, who.groups, client_address(access, headers, peer))
    return who, access, store


# --- audio --------------------------------------------------------------------------------------------
_WAV_CACHE: OrderedDict[tuple[str, Any], bytes] = OrderedDict()


def leg_wav(store, call_id: str, leg: str) -> bytes:
    """One leg of a stored call as 16-bit PCM WAV (the last few kept in memory)."""
    from core.audio import preview
    from core.errors import AudioNotFoundError

    legs = store.get_analysis(call_id).get("legs") or {}
    if leg not in legs:
        raise AudioNotFoundError(f"call {call_id} has no {leg} leg")
    source = str(legs[leg].get("source") or "")
    key = (source, preview.file_stamp(source))
    if key[1] is None:
        raise AudioNotFoundError(f"the recording of call {call_id} is no longer at its place")
    if key not in _WAV_CACHE:
        _WAV_CACHE[key] = preview.wav_bytes(*preview.leg_samples(source))
        while len(_WAV_CACHE) > 6:
            _WAV_CACHE.popitem(last=False)
    _WAV_CACHE.move_to_end(key)
    return _WAV_CACHE[key]


def _ranged(data: bytes, range_header: str | None, headers: dict[str, str]) -> Response:
    """``data`` whole (200) or the one byte range asked for (206), as browsers' media elements want."""
    size = len(data)
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", (range_header or "").strip())
    if not match or (not match.group(1) and not match.group(2)):
        return Response(data, media_type="audio/wav", headers={**headers, "Accept-Ranges": "bytes"})
    if match.group(1):
        start = int(match.group(1))
        end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
    else:
        start, end = max(0, size - int(match.group(2))), size - 1
    if start >= size or start > end:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    return Response(data[start:end + 1], status_code=206, media_type="audio/wav",
                    headers={**headers, "Accept-Ranges": "bytes", "Content-Range": f"bytes {start}-{end}/{size}"})


_RECENT: dict[tuple[str, ...], float] = {}
#: A browser fetches the start of a recording again when a page reruns; one entry per minute is enough.
AUDIT_EVERY_S = 60.0


def _first_in_a_while(key: tuple[str, ...]) -> bool:
    """True when ``key`` (user, action, call, leg) was not recorded in the last :data:`AUDIT_EVERY_S`."""
    now = time.monotonic()
    if now - _RECENT.get(key, -AUDIT_EVERY_S) < AUDIT_EVERY_S:
        return False
    if len(_RECENT) > 10_000:
        _RECENT.clear()
    _RECENT[key] = now
    return True


def _refuse(status: int, message: str) -> Response:
    return Response(message + "\n", status_code=status, media_type="text/plain",
                    headers={"Cache-Control": "no-store"})


async def audio(request: Request) -> Response:
    """``GET /callqa/audio/<grant>``: see the module docstring."""
    grant = read_grant(request.path_params["grant"])
    if grant is None:
        return _refuse(404, "unknown or expired recording link: open the call again")
    download = request.query_params.get("download") == "1"
    range_header = request.headers.get("range")

    def work() -> Response:
        who, _access, store = request_identity(request)
        if who is None or not who.can("play_audio") or who.name != grant["u"]:
            role = who.role if who else None
            raise AccessDeniedError(f"playing recordings needs the analyst role and this link's user "
                                    f"(you are {who.name if who else 'not signed in'}, {role or 'no role'})")
        data = leg_wav(store, grant["c"], grant["l"])
        action = "audio.download" if download else "audio.play"
        if (download or not range_header or range_header.strip().startswith("bytes=0-")) and _first_in_a_while(
                (who.name, action, grant["c"], grant["l"])):
            from core.audit import record

            record(store, who, action, source="dashboard", target=grant["c"], detail={"leg": grant["l"]})
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        if download:
            headers["Content-Disposition"] = f'attachment; filename="{quote(grant["c"])}-{quote(grant["l"])}.wav"'
        return _ranged(data, None if download else range_header, headers)

    try:
        return await run_in_threadpool(work)
    except AccessDeniedError as exc:
        return _refuse(403, str(exc))
    except CallQAError as exc:
        return _refuse(exc.http_status if exc.http_status < 500 else 503, str(exc))


# --- signing in and out -----------------------------------------------------------------------------
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · callqa</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f5f6f8; margin: 0; display: grid; place-items: center;
       min-height: 100vh; color: #1f2937; }}
form {{ background: #fff; padding: 2rem 2.25rem; border-radius: 10px; box-shadow: 0 2px 12px #0001; width: 20rem; }}
h1 {{ font-size: 1.35rem; margin: 0 0 1.25rem; }}
label {{ display: block; font-size: .9rem; margin: .75rem 0 .25rem; }}
input[type=text], input[type=password] {{ width: 100%; box-sizing: border-box; padding: .55rem; font-size: 1rem;
       border: 1px solid #cbd5e1; border-radius: 6px; }}
button {{ margin-top: 1.25rem; width: 100%; padding: .6rem; font-size: 1rem; border: 0; border-radius: 6px;
          background: #ff4b4b; color: #fff; cursor: pointer; }}
.error {{ color: #b91c1c; font-size: .9rem; margin: 0 0 .5rem; }}
</style></head>
<body><form method="post" action="{action}">
<h1>callqa</h1>
{error}
<label for="username">User name</label><input id="username" name="username" type="text" autocomplete="username"
 required autofocus value="{username}">
<label for="password">Password</label><input id="password" name="password" type="password"
 autocomplete="current-password" required>
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}">
<button type="submit">Sign in</button>
</form></body></html>
"""


def _next(value: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    return value if value and _SAFE_NEXT.match(value) and len(value) < 2000 else "/"


def _form(request: Request, *, error: str = "", username: str = "", next_path: str = "/",
          status: int = 200) -> HTMLResponse:
    csrf = secrets.token_urlsafe(24)
    page = _PAGE.format(action=SIGNIN_PATH, csrf=csrf, next=html.escape(next_path), username=html.escape(username),
                        error=f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "")
    response = HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})
    response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=_https(request), path=SIGNIN_PATH)
    return response


def _https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


async def signin_form(request: Request) -> Response:
    """``GET /callqa/signin``: the form."""
    return _form(request, next_path=_next(request.query_params.get("next")))


async def signin(request: Request) -> Response:
    """``POST /callqa/signin``: check the password, open a session, go back to where the user was."""
    form = await request.form()
    username = str(form.get("username") or "")[:100]
    password = str(form.get("password") or "")
    next_path = _next(str(form.get("next") or "/"))
    token = request.cookies.get(CSRF_COOKIE, "")
    if not token or not hmac.compare_digest(token, str(form.get("csrf") or "")):
        return _form(request, error="The form expired: please sign in again.", username=username,
                     next_path=next_path, status=400)

    def work():
        from core.access.accounts import sign_in

        access, store = _settings_and_store()
        peer = request.client.host if request.client else None
        remote = client_address(access, dict(request.headers), peer)
        return access, sign_in(store, username, password, settings=access, remote=remote, source="dashboard")

    try:
        access, (session, _who) = await run_in_threadpool(work)
    except AccessDeniedError as exc:
        return _form(request, error=f"Sign-in failed: {exc}.", username=username, next_path=next_path, status=401)
    except CallQAError as exc:
        return _form(request, error=str(exc), username=username, next_path=next_path, status=503)
    response = RedirectResponse(next_path, status_code=303, headers={"Cache-Control": "no-store"})
    response.set_cookie(SESSION_COOKIE, session, max_age=int(access.session_hours * 3600), httponly=True,
                        samesite="lax", secure=_https(request), path="/")
    response.delete_cookie(CSRF_COOKIE, path=SIGNIN_PATH)
    return response


async def signout(request: Request) -> Response:
    """``GET /callqa/signout``: end the session, clear the cookie, back to the sign-in form."""
    token = request.cookies.get(SESSION_COOKIE)

    def work() -> None:
        from core.access.accounts import session_identity, sign_out
        from core.audit import record

        access, store = _settings_and_store()
        who = session_identity(store, token, settings=access) if token else None
        if sign_out(store, token) and who is not None:
            record(store, who, "logout", source="dashboard")

    try:
        await run_in_threadpool(work)
    except CallQAError:
        pass  # the cookie goes anyway
    response = RedirectResponse(SIGNIN_PATH, status_code=303, headers={"Cache-Control": "no-store"})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


ROUTES = [
    Route(SIGNIN_PATH, signin_form, methods=["GET"]),
    Route(SIGNIN_PATH, signin, methods=["POST"]),
    Route(SIGNOUT_PATH, signout, methods=["GET"]),
    Route(AUDIO_PREFIX + "{grant}", audio, methods=["GET"]),
]


@asynccontextmanager
async def lifespan(_app):
    """Marks the routes as served for the script (:data:`ACTIVE`) while the server runs."""
    global ACTIVE
    ACTIVE = True
    try:
        yield
    finally:
        ACTIVE = False
