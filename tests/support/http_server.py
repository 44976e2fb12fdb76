"""A real threaded HTTP server on 127.0.0.1 serving recordings under ``/RECORDINGS/``.

Like Apache's ``Alias /RECORDINGS/ /var/spool/asterisk/monitorDONE/`` on a dialer, it serves
the files of a folder (``../shared/corpus`` in the tests), with ``Last-Modified``/``ETag`` and
``304 Not Modified`` answers, optional basic auth, and special path prefixes that misbehave:

- ``/slow/RECORDINGS/...`` waits ``slow_s`` seconds before answering;
- ``/truncated/RECORDINGS/...`` announces the full length but closes after half the body;
- ``/redirect/<host:port>/...`` answers ``302`` to ``http://<host:port>/...``.

With ``flatten=True`` a sub-folder path (``MP3/x.mp3``, ``ORIG/2026-11-07/x.wav``) falls back
to the file of that name at the top of the folder, so a flat corpus can stand in for a
monitorDONE tree. With ``tls=(cert, key)`` it speaks HTTPS (:func:`self_signed_cert` makes a
pair for 127.0.0.1). Every request is recorded in :attr:`RecordingServer.requests`.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.quiet_http import QuietHTTPServer

_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".gsm": "audio/x-gsm", ".ogg": "audio/ogg"}


@dataclass
class RecordingServer:
    """A running server: where it listens and what it was asked."""

    host: str
    port: int
    root: Path
    scheme: str = "http"
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, relpath: str, *, prefix: str = "") -> str:
        return f"{self.scheme}://{self.netloc}{prefix}/RECORDINGS/{relpath}"

    def count(self, path_suffix: str, status: int | None = None) -> int:
        with self.lock:
            return sum(1 for _, p, s in self.requests if p.endswith(path_suffix) and status in (None, s))


def _handler(server: RecordingServer, *, auth: tuple[str, str] | None, flatten: bool,
             slow_s: float) -> type[BaseHTTPRequestHandler]:
    expected_auth = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode() if auth else None

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

        def _done(self, status: int) -> None:
            with server.lock:
                server.requests.append((self.command, self.path, status))

        def _plain(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
            body = text.encode()
            self._done(status)  # before answering, so a client that got the answer sees it counted
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _file(self, relpath: str) -> Path | None:
            parts = [unquote(p) for p in relpath.split("/") if p]
            if not parts or any(p in (".", "..") for p in parts):
                return None
            path = server.root.joinpath(*parts)
            if not path.is_file() and flatten:
                path = server.root / parts[-1]
            return path if path.is_file() else None

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if expected_auth and self.headers.get("Authorization") != expected_auth:
                self._plain(401, "login required", {"WWW-Authenticate": 'Basic realm="RECORDINGS"'})
                return
            mode = ""
            for prefix in ("/slow", "/truncated"):
                if path.startswith(prefix + "/"):
                    mode, path = prefix[1:], path[len(prefix):]
            if path.startswith("/redirect/"):
                target_host, _, rest = path[len("/redirect/"):].partition("/")
                self._plain(302, "moved", {"Location": f"http://{target_host}/{rest}"})
                return
            if mode == "slow":
                time.sleep(slow_s)
            if not path.startswith("/RECORDINGS/"):
                self._plain(404, "not found")
                return
            file = self._file(path[len("/RECORDINGS/"):])
            if file is None:
                self._plain(404, "not found")
                return
            info = file.stat()
            etag = f'"{info.st_size:x}-{int(info.st_mtime):x}"'
            last_modified = email.utils.formatdate(info.st_mtime, usegmt=True)
            since = self.headers.get("If-Modified-Since")
            if self.headers.get("If-None-Match") == etag or (
                since and not self.headers.get("If-None-Match")
                and email.utils.parsedate_to_datetime(since).timestamp() >= int(info.st_mtime)
            ):
                self._done(304)
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            data = file.read_bytes()
            self._done(200)
            self.send_response(200)
            self.send_header("Content-Type", _TYPES.get(file.suffix.lower(), "application/octet-stream"))
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Last-Modified", last_modified)
            self.send_header("ETag", etag)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data[: len(data) // 2] if mode == "truncated" else data)
                self.wfile.flush()
            if mode == "truncated":
                self.close_connection = True

    return Handler


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, written to ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "callqa test recordings")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@contextmanager
def recording_server(root: Path, *, auth: tuple[str, str] | None = None, flatten: bool = False,
                     slow_s: float = 2.0, tls: tuple[Path, Path] | None = None) -> Iterator[RecordingServer]:
    """Serve ``root`` under ``/RECORDINGS/`` on a free 127.0.0.1 port until the block ends."""
    httpd = QuietHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    server = RecordingServer(host="127.0.0.1", port=int(httpd.server_address[1]), root=Path(root),
                             scheme="https" if tls else "http")
    httpd.RequestHandlerClass = _handler(server, auth=auth, flatten=flatten, slow_s=slow_s)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
