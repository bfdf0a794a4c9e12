"""SMTP with aiosmtplib: implicit TLS (465), STARTTLS (587) or plain for a local relay.

Certificates are verified unless `verify_tls = false`; `ca_file` adds a private CA (a
relay in the restaurant's network, or the tests' self-signed server).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import aiosmtplib

from ..config import MailConfig
from .templates import Rendered


class SmtpFailure(Exception):
    """One line for the outbox's last_error and the setup wizard."""


def tls_context(mail: MailConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=mail.ca_file or None)
    if not mail.verify_tls:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def message_id(key: str, sender: str) -> str:
    # Derived from the idempotency key: if a crash between the server's "250 OK" and our
    # commit makes us send once more, mail clients see the same Message-ID and drop it.
    domain = sender.rpartition("@")[2] or "wix-printer.invalid"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def build_message(mail: MailConfig, rendered: Rendered, *, key: str, to: list[str], now: float,
                  urgent: bool = False) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["From"] = formataddr(("Wix-Drucker" if mail.language == "de" else "Wix printer", mail.sender))
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(dt.datetime.fromtimestamp(now, dt.UTC))
    msg["Message-ID"] = message_id(key, mail.sender)
    # RFC 3834: no vacation replies or bounces-to-bots loops from the owner's mailbox.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    if urgent:
        msg["Importance"] = "high"
        msg["X-Priority"] = "1"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg


def _describe(e: BaseException) -> str:
    if isinstance(e, aiosmtplib.SMTPAuthenticationError):
        return f"login refused by the mail server: {e.code} {e.message}"
    if isinstance(e, aiosmtplib.SMTPRecipientsRefused):
        return "recipients refused: " + "; ".join(
            f"{r.recipient}: {r.code} {r.message}" for r in e.recipients)
    if isinstance(e, aiosmtplib.SMTPResponseException):
        return f"mail server said {e.code} {e.message}"
    if isinstance(e, aiosmtplib.SMTPConnectTimeoutError | aiosmtplib.SMTPReadTimeoutError | TimeoutError):
        return f"timeout talking to the mail server: {e}"
    if isinstance(e, ssl.SSLError | ssl.CertificateError):
        return f"TLS problem: {e}"
    if isinstance(e, aiosmtplib.SMTPConnectError | OSError):
        return f"cannot connect to the mail server: {e}"
    return f"{type(e).__name__}: {e}"


class Connection:
    """One SMTP session: connect (TLS as configured), log in, send several messages."""

    def __init__(self, mail: MailConfig) -> None:
        self.mail = mail
        self.smtp = aiosmtplib.SMTP(
            hostname=mail.host,
            port=mail.port,
            timeout=mail.timeout,
            use_tls=mail.security == "tls",
            # "none" means plain on purpose (a local relay): no opportunistic upgrade that a
            # relay with a broken certificate would turn into a failure.
            start_tls=mail.security == "starttls",
            tls_context=tls_context(mail) if mail.security != "none" else None,
        )

    async def __aenter__(self) -> Connection:
        try:
            await self.smtp.connect()
            if self.mail.username:
                await self.smtp.login(self.mail.username, self.mail.password)
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as e:
            await self.close()
            raise SmtpFailure(_describe(e)) from e
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self.smtp.is_connected:
            try:
                await self.smtp.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                self.smtp.close()

    async def send(self, msg: EmailMessage, to: list[str]) -> None:
        try:
            await self.smtp.send_message(msg, sender=self.mail.sender, recipients=to)
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError, TimeoutError) as e:
            raise SmtpFailure(_describe(e)) from e

    @property
    def usable(self) -> bool:
        return self.smtp.is_connected


async def check_login(mail: MailConfig) -> None:
    """Connect and log in without sending; raises SmtpFailure with the reason."""
    async with Connection(mail):
        pass
