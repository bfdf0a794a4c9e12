"""The status page's login session: a small JSON object in one HMAC-signed cookie.

Why not Litestar's client-side sessions: they encrypt with AES-GCM from `cryptography`,
whose bundled OpenSSL alone is about 7 MB of resident memory on a box that otherwise needs
under 45 MB. Nothing in the session is secret from the browser that holds it (a login
fingerprint, a timestamp, the CSRF token, a one-line message, the language), so a
signature is what matters: it stops a client from forging or altering a session. The
cookie is HttpOnly and SameSite=Strict; SecureCookies adds Secure behind HTTPS.

Handlers see the usual Litestar interface: `scope["session"]` is a dict (or absent),
`request.set_session(...)` replaces it, `request.clear_session()` deletes the cookie.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from .access import ASGIApp, Message, Receive, Scope, Send, header_value

# Browsers keep at most 4096 bytes per cookie; a larger session is dropped, not split.
MAX_COOKIE_BYTES = 4000


class SignedCookieSession:
    def __init__(self, app: ASGIApp, *, secret: bytes, cookie: str, max_age: int,
                 exclude: Sequence[str] = ()) -> None:
        self.app = app
        self._key = hashlib.sha256(b"wix-printer session v1\x00" + secret).digest()
        self.cookie = cookie
        self.max_age = max_age
        self._exclude = re.compile("|".join(exclude)) if exclude else None

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def encode(self, session: dict[str, Any]) -> str:
        payload = msgspec.json.encode(session)
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def decode(self, value: str) -> dict[str, Any] | None:
        body, _, sig = value.partition(".")
        try:
            payload, mac = _unb64(body), _unb64(sig)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._sign(payload)):
            return None
        try:
            data = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            return None
        return data if isinstance(data, dict) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self._exclude is not None and self._exclude.search(scope["path"])):
            await self.app(scope, receive, send)
            return
        incoming = _cookie(header_value(scope, b"cookie"), self.cookie)
        session = self.decode(incoming) if incoming else None
        if session is not None:
            scope["session"] = session

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                header = self._set_cookie(scope.get("session"), had_cookie=incoming is not None)
                if header is not None:
                    message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", header)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _set_cookie(self, session: object, *, had_cookie: bool) -> bytes | None:
        attrs = "; Path=/; HttpOnly; SameSite=Strict"
        if isinstance(session, dict) and session:
            value = self.encode(session)
            if len(value) <= MAX_COOKIE_BYTES:
                return f"{self.cookie}={value}; Max-Age={self.max_age}{attrs}".encode("latin-1")
        if had_cookie:
            # Cleared (log out) or unusable: tell the browser to forget it.
            return f"{self.cookie}=; Max-Age=0{attrs}".encode("latin-1")
        return None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip('"')
    return None
