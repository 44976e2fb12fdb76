"""A threaded HTTP server for test stand-ins that stays quiet when a client hangs up early."""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer


class QuietHTTPServer(ThreadingHTTPServer):
    """A client that disconnects mid-response (a timeout, a cancelled stream, a size cap) is
    expected in these tests; the default handler would print a traceback to stderr, where other
    tests' output checks see it."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)
