"""A real SMTP server on 127.0.0.1 (aiosmtpd) with STARTTLS and AUTH, collecting what it receives.

The certificate is made for 127.0.0.1 with its own CA (:func:`tests.support.http_server.self_signed_cert`),
so a client verifying it needs that CA (``[alerts] smtp_ca_file``); the login is offered only
after STARTTLS, so a client that sent credentials in clear text would fail.
"""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.http_server import self_signed_cert
from tests.support.mariadb import free_port

USER, PASSWORD = "callqa-mailer", "smtp-test-password-not-real"


@dataclass
class Received:
    """One accepted message: envelope sender, recipients, the parsed message, the login used."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None


@dataclass
class SmtpServer:
    host: str
    port: int
    ca_file: Path
    messages: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.messages)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        login = session.auth_data.login.decode() if session.auth_data is not None else None
        with self.server.lock:
            self.server.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message, login))
        return "250 OK"


@contextmanager
def smtp_server(folder: Path, *, require_auth: bool = True) -> Iterator[SmtpServer]:
    """An SMTP server with STARTTLS (required) and, when ``require_auth``, AUTH as :data:`USER`."""
    cert, key = self_signed_cert(folder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    server = SmtpServer(host="127.0.0.1", port=free_port(), ca_file=cert)

    def authenticate(smtp, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER \
            and auth_data.password.decode() == PASSWORD
        if ok:
            with server.lock:
                server.logins.append(USER)
        return AuthResult(success=ok, auth_data=auth_data if ok else None)

    controller = Controller(_Handler(server), hostname=server.host, port=server.port, tls_context=context,
                            require_starttls=True, authenticator=authenticate, auth_required=require_auth,
                            auth_require_tls=True, ready_timeout=10)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
