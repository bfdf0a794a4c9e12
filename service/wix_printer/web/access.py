"""Default-deny access control and CSRF, in front of every route.

Deny by default so a route added later is never public by accident: only the paths in
`_public` answer without a login. A request is let in with a valid session (the page) or
the bearer token (integrators). Every state-changing request that rides on a cookie
(session or the anonymous one of the login and setup forms) must carry the session's
CSRF token, in the `X-CSRF-Token` header or the `csrf_token` form field; bearer-token
requests carry no ambient credentials, so they need none.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, quote

from .auth import Auth

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = b"x-csrf-token"
# Our forms are a few fields; anything bigger is not one of them.
MAX_FORM_BYTES = 64 * 1024


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def header_value(scope: Scope, name: bytes) -> str:
    for k, v in scope.get("headers", ()):
        if k == name:
            return bytes(v).decode("latin-1")
    return ""


def client_key(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"


def via_https(scope: Scope) -> bool:
    """HTTPS directly, or through a proxy on this box (the relay tunnel ends on loopback)."""
    if scope.get("scheme") == "https":
        return True
    if header_value(scope, b"x-forwarded-proto").lower() != "https":
        return False
    try:
        return ipaddress.ip_address(client_key(scope)).is_loopback
    except ValueError:
        return False


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"no-store"), *headers]})
    await send({"type": "http.response.body", "body": data})


async def _send_redirect(send: Send, location: str) -> None:
    await send({"type": "http.response.start", "status": 303, "headers": [
        (b"location", location.encode("latin-1")), (b"content-length", b"0"), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": b""})


class SecureCookies:
    """Outermost: marks every Set-Cookie `Secure` when the request came over HTTPS.

    Litestar's cookie settings are fixed at start-up, but the same box is reached over
    plain HTTP on the restaurant LAN (`http://<box>.local/`) and over HTTPS through the
    relay; a Secure cookie on plain HTTP would make the tablet's login impossible.
    """

    def __init__(self, app: ASGIApp, always: bool = False) -> None:
        self.app = app
        self.always = always

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (self.always or via_https(scope)):
            await self.app(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (k, v + b"; Secure") if k.lower() == b"set-cookie" and b"secure" not in v.lower() else (k, v)
                    for k, v in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, send_secure)


class AccessControl:
    """Inside the session middleware (it needs `scope["session"]`)."""

    def __init__(self, app: ASGIApp, auth: Auth, public_health: bool = True, public_metrics: bool = True) -> None:
        self.app = app
        self.auth = auth
        self.public_health = public_health
        self.public_metrics = public_metrics

    def _public(self, path: str, method: str) -> bool:
        if path == "/webhooks/wix" or path == "/status" or path.startswith("/static/"):
            # The webhook proves itself with Wix's signature; /status is the documented
            # contract for monitors and carries counts only, no personal data.
            return True
        if path == "/health":
            return self.public_health
        if path == "/metrics":
            return self.public_metrics
        if path in ("/login", "/logout"):
            return True
        # The one-time password form, only while no password exists.
        return path == "/setup" and not self.auth.is_set

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        by_token = False
        if self._public(path, method):
            pass
        else:
            authz = header_value(scope, b"authorization")
            if authz[:7].lower() == "bearer " and self.auth.token_ok(authz[7:].strip()):
                by_token = True
            elif self.auth.session_ok(scope.get("session")):
                session = scope["session"]
                # Sliding login: a tablet in daily use never has to log in again.
                if self.auth.clock() - session["at"] > 60:
                    session["at"] = self.auth.clock()
            else:
                await self._deny(scope, send, path, method)
                return
        if method in SAFE_METHODS or by_token or path == "/webhooks/wix":
            await self.app(scope, receive, send)
            return
        ok, receive = await self._csrf_ok(scope, receive)
        if not ok:
            await _send_json(send, 403, {"error": "missing or wrong CSRF token; reload the page and try again"}, [])
            return
        await self.app(scope, receive, send)

    async def _deny(self, scope: Scope, send: Send, path: str, method: str) -> None:
        accept = header_value(scope, b"accept")
        wants_page = method == "GET" and "text/html" in accept and not path.startswith(("/api/", "/metrics"))
        if wants_page:
            target = "/setup" if not self.auth.is_set else "/login"
            if target == "/login" and path != "/":
                target += "?next=" + quote(path, safe="/")
            await _send_redirect(send, target)
            return
        await _send_json(send, 401, {"error": "login required (session cookie or Authorization: Bearer token)"},
                         [(b"www-authenticate", b'Bearer realm="wix-printer"')])

    async def _csrf_ok(self, scope: Scope, receive: Receive) -> tuple[bool, Receive]:
        session = scope.get("session")
        expected = session.get("csrf") if isinstance(session, dict) else None
        presented = header_value(scope, CSRF_HEADER)
        replay = receive
        if not presented and header_value(scope, b"content-type").startswith("application/x-www-form-urlencoded"):
            body = await _read_body(receive, MAX_FORM_BYTES)
            if body is None:
                return False, receive
            fields = parse_qs(body.decode("latin-1"), max_num_fields=50)
            presented = (fields.get(CSRF_FIELD) or [""])[0]
            replay = _replay(body, receive)
        if not isinstance(expected, str) or not presented:
            return False, replay
        return hmac.compare_digest(presented.encode("latin-1"), expected.encode("latin-1")), replay


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The handler reads the form again: hand it the body we consumed, then the real stream."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
