"""A real SMTP server for tests and the benchmark: aiosmtpd on loopback with a
self-signed certificate (STARTTLS or implicit TLS), AUTH PLAIN/LOGIN, or plain."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import logging
import socket
import ssl
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# aiosmtpd logs a deprecation notice of its own internals on every AUTH.
logging.getLogger("mail.log").setLevel(logging.ERROR)

USER = "drucker@example.org"
PASSWORD = "s3cret-Pässword"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_cert(d: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = d / "smtp-cert.pem", d / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Received:
    def __init__(self, at: float, mail_from: str, rcpt_tos: list[str], content: bytes, login: str | None) -> None:
        self.at = at
        self.mail_from = mail_from
        self.rcpt_tos = rcpt_tos
        self.login = login
        self.message: EmailMessage = email.message_from_bytes(content, policy=email.policy.default)  # type: ignore[assignment]

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part is not None else ""  # type: ignore[no-any-return]

    def html(self) -> str:
        part = self.message.get_body(("html",))
        return part.get_content() if part is not None else ""  # type: ignore[no-any-return]


class Sink:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.cond = threading.Condition()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        rec = Received(time.perf_counter(), str(envelope.mail_from), list(envelope.rcpt_tos),
                       bytes(envelope.content or b""), login)
        with self.cond:
            self.messages.append(rec)
            self.cond.notify_all()
        return "250 OK"

    def wait(self, n: int = 1, timeout: float = 10.0) -> list[Received]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.messages) >= n, timeout)
            return list(self.messages)


def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER
          and auth_data.password.decode() == PASSWORD)
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class Server:
    """One aiosmtpd instance: mode 'starttls', 'tls' or 'plain'."""

    def __init__(self, mode: str, cert: tuple[Path, Path], *, port: int | None = None,
                 mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN")) -> None:
        self.mode = mode
        self.port = port or free_port()
        self.sink = Sink()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        kw: dict[str, Any] = {}
        excluded = [m for m in ("PLAIN", "LOGIN") if m not in mechanisms]
        if mode == "starttls":
            kw = {"tls_context": ctx, "require_starttls": True, "auth_require_tls": True,
                  "authenticator": authenticator, "auth_required": True, "auth_exclude_mechanism": excluded}
            self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port, **kw)
        elif mode == "tls":
            # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; the whole session
            # is encrypted here, so AUTH is offered without it (and still checked).
            kw = {"auth_require_tls": False, "authenticator": authenticator,
                  "auth_exclude_mechanism": excluded}
            self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port, ssl_context=ctx,
                                         server_hostname="localhost", **kw)
        else:
            self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)

    def start(self) -> Server:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[Received]:
        return self.sink.messages
