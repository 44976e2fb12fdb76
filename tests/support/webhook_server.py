"""A local HTTP receiver for alert webhooks: records every JSON body, answers scripted statuses.

``statuses`` is a queue of HTTP statuses to answer with (then 200 for ever); ``hang_s`` makes it
hold every request that long before answering (a webhook that does not answer in time).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.quiet_http import QuietHTTPServer


@dataclass
class WebhookReceiver:
    url: str
    statuses: deque[int] = field(default_factory=deque)
    hang_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)  # every request: {"path", "status", "body"}
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, *, accepted_only: bool = True) -> list[dict[str, Any]]:
        with self.lock:
            return [r["body"] for r in self.requests if not accepted_only or r["status"] < 300]

    def hits(self) -> int:
        with self.lock:
            return len(self.requests)


@contextmanager
def webhook_receiver(*, statuses: tuple[int, ...] = (), hang_s: float = 0.0) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(url="", statuses=deque(statuses), hang_s=hang_s)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if receiver.hang_s:
                time.sleep(receiver.hang_s)
            with receiver.lock:
                status = receiver.statuses.popleft() if receiver.statuses else 200
                receiver.requests.append({"path": self.path, "status": status, "body": json.loads(raw or b"null"),
                                          "content_type": self.headers.get("Content-Type")})
            payload = b"ok" if status < 300 else b"unavailable"
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = QuietHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/B000/secret-token"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
