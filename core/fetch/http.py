"""Downloading a recording over HTTP(S) with httpx: streamed, size-capped, cached.

The body is streamed into the cache (never held in memory) and refused past
``[recordings] max_mb``. A cached copy is revalidated with ``If-None-Match`` /
``If-Modified-Since``; a ``304`` serves it without downloading. Redirects are followed only to
allowed hosts. Basic auth credentials come from ``[recordings]``, never from the URL.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from core.errors import FetchError
from core.fetch.cache import FetchCache
from core.fetch.locations import HttpLocation, http_location
from core.vicidial.settings import RecordingAccess

MAX_REDIRECTS = 3
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK_BYTES = 64 * 1024
_REASONS = {401: "unauthorized", 403: "forbidden", 404: "not found", 410: "gone"}


@dataclass(frozen=True)
class Download:
    """A file fetched (or revalidated) over HTTP and now in the cache."""

    path: Path
    size_bytes: int
    url: str
    cached: bool


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / (1024 * 1024):.3g} MB"


def _verify(access: RecordingAccess) -> ssl.SSLContext | bool:
    if not access.tls_verify:
        return False
    try:
        return ssl.create_default_context(cafile=access.tls_ca or None)
    except (OSError, ssl.SSLError) as exc:
        raise FetchError(f"[recordings] tls_ca {access.tls_ca}: cannot be read ({exc})") from None


def http_client(access: RecordingAccess) -> httpx.Client:
    """An httpx client with the timeouts, TLS verification and basic auth of ``access``."""
    timeout = httpx.Timeout(
        connect=access.connect_timeout_s, read=access.read_timeout_s,
        write=access.read_timeout_s, pool=access.connect_timeout_s,
    )
    auth = (access.http_user, access.http_password) if access.http_user else None
    # trust_env=False: dialers are on the LAN; proxy variables meant for the internet must not apply
    return httpx.Client(timeout=timeout, verify=_verify(access), auth=auth, follow_redirects=False, trust_env=False)


def _status_error(url: str, response: httpx.Response, access: RecordingAccess) -> FetchError:
    code = response.status_code
    reason = _REASONS.get(code, response.reason_phrase or "error")
    if code == 401:
        hint = ("the server refused [recordings] http_user/http_password" if access.http_user
                else "the server wants a login: set [recordings] http_user and http_password")
        return FetchError(f"{url}: HTTP 401 {reason} ({hint})")
    return FetchError(f"{url}: HTTP {code} {reason}")


def _transport_error(url: str, exc: httpx.HTTPError, access: RecordingAccess, received: int | None,
                     expected: int | None) -> FetchError:
    if isinstance(exc, httpx.ConnectTimeout):
        return FetchError(f"{url}: unreachable (connect timed out after {access.connect_timeout_s:g} s)")
    if isinstance(exc, httpx.TimeoutException):
        return FetchError(f"{url}: timed out (no data for {access.read_timeout_s:g} s)")
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
            return FetchError(f"{url}: TLS certificate verification failed (set [recordings] tls_ca)")
        reason = "connection refused" if "refused" in text.lower() else text or "connection failed"
        return FetchError(f"{url}: unreachable ({reason})")
    if isinstance(exc, httpx.RemoteProtocolError) and received is not None:
        of = f" of {expected}" if expected else ""
        return FetchError(f"{url}: truncated download: the server closed the connection after {received}{of} bytes")
    return FetchError(f"{url}: download failed ({type(exc).__name__}: {exc})")


def _stream_to(response: httpx.Response, tmp: Path, url: str, access: RecordingAccess) -> int:
    """Write the body to ``tmp`` within the size cap and deadline; return the byte count."""
    deadline = time.monotonic() + access.download_timeout_s
    received = 0
    with tmp.open("wb") as out:
        for chunk in response.iter_bytes(CHUNK_BYTES):
            received += len(chunk)
            if received > access.max_bytes:
                raise FetchError(f"{url}: larger than the {_mb(access.max_bytes)} cap ([recordings] max_mb)")
            if time.monotonic() > deadline:
                raise FetchError(f"{url}: download took longer than {access.download_timeout_s:g} s")
            out.write(chunk)
    return received


def fetch_http(location: HttpLocation, *, access: RecordingAccess, cache: FetchCache) -> Download:
    """Fetch one recording URL into the cache (or revalidate the cached copy).

    Parameters
    ----------
    location : HttpLocation
        A URL validated by :func:`core.fetch.locations.http_location`.
    access : RecordingAccess
        Timeouts, size cap, TLS and credentials.
    cache : FetchCache
        Where the file is stored; the cache key is the contacted URL.

    Returns
    -------
    Download
        The cached file; ``cached`` is true when the server answered ``304 Not Modified``.

    Raises
    ------
    FetchError
        HTTP error status, timeout, truncated body, oversized file, TLS failure.
    UnsafeLocationError
        A redirect to a host that is not allowed.
    """
    key = location.url
    cached = cache.get(key)
    headers = {}
    if cached is not None:
        if cached.meta.get("etag"):
            headers["If-None-Match"] = str(cached.meta["etag"])
        if cached.meta.get("last_modified"):
            headers["If-Modified-Since"] = str(cached.meta["last_modified"])
    url = location.url
    with http_client(access) as client:
        for _ in range(MAX_REDIRECTS + 1):
            received: int | None = None
            expected: int | None = None
            tmp: Path | None = None
            try:
                with client.stream("GET", url, headers=headers) as response:
                    if response.status_code == 304 and cached is not None:
                        cache.touch(cached)
                        return Download(cached.path, cached.size_bytes, url, cached=True)
                    if response.status_code in REDIRECTS and response.headers.get("location"):
                        target = urljoin(url, response.headers["location"])
                        url = http_location(target, access, what=f"redirect from {url}",
                                            trusted_host=urlsplit(url).hostname).url
                        continue
                    if response.status_code != 200:
                        raise _status_error(url, response, access)
                    length = response.headers.get("content-length")
                    expected = int(length) if length and length.isdigit() else None
                    if expected is not None and expected > access.max_bytes:
                        raise FetchError(
                            f"{url}: {_mb(expected)} is larger than the {_mb(access.max_bytes)} cap ([recordings] max_mb)"
                        )
                    tmp = cache.begin(key)
                    received = 0
                    received = _stream_to(response, tmp, url, access)
                    if expected is not None and received != expected:
                        raise FetchError(f"{url}: truncated download: got {received} of {expected} bytes")
                    entry = cache.commit(
                        key, tmp, name=location.leaf,
                        etag=response.headers.get("etag"), last_modified=response.headers.get("last-modified"),
                    )
                    tmp = None
                    return Download(entry.path, entry.size_bytes, url, cached=False)
            except httpx.HTTPError as exc:
                if tmp is not None and received is not None:
                    received = tmp.stat().st_size if tmp.exists() else received
                raise _transport_error(url, exc, access, received, expected) from None
            finally:
                if tmp is not None:
                    cache.discard(tmp)
    raise FetchError(f"{location.url}: more than {MAX_REDIRECTS} redirects")
