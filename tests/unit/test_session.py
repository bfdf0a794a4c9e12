"""The signed session cookie: what a browser sends back is trusted only when signed by
this box, and clearing a session makes the browser forget the cookie."""

from __future__ import annotations

import asyncio
from typing import Any

from wix_printer.web.session import SignedCookieSession

SECRET = b"k" * 32


def run(mw: SignedCookieSession, path: str = "/", cookie: str | None = None,
        set_to: object = "keep") -> tuple[dict[str, Any] | None, list[bytes]]:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["session"] = scope.get("session")
        if set_to != "keep":
            scope["session"] = set_to
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    mw.app = app
    headers = [(b"cookie", f"other=1; s={cookie}".encode())] if cookie is not None else []
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    asyncio.run(mw({"type": "http", "path": path, "headers": headers}, receive, send))
    cookies = [v for k, v in sent[0]["headers"] if k == b"set-cookie"]
    return seen["session"], cookies


def middleware(secret: bytes = SECRET) -> SignedCookieSession:
    return SignedCookieSession(lambda *a: None, secret=secret, cookie="s", max_age=3600,  # type: ignore[arg-type,return-value]
                               exclude=["^/status$"])


def test_a_session_set_by_a_handler_comes_back_on_the_next_request() -> None:
    _, cookies = run(middleware(), set_to={"auth": "fp", "at": 5, "flash": ["ok", "Gedruckt ✓"]})
    value = cookies[0].decode().split(";")[0].split("=", 1)[1]
    assert b"HttpOnly" in cookies[0] and b"SameSite=Strict" in cookies[0] and b"Max-Age=3600" in cookies[0]
    session, _ = run(middleware(), cookie=value)
    assert session == {"auth": "fp", "at": 5, "flash": ["ok", "Gedruckt ✓"]}


def test_a_forged_or_altered_cookie_gives_no_session_and_is_deleted() -> None:
    _, cookies = run(middleware(), set_to={"auth": "fp", "at": 5})
    value = cookies[0].decode().split(";")[0].split("=", 1)[1]
    body, sig = value.split(".")
    forged = middleware().encode({"auth": "fp", "at": 5}).split(".")[0]
    assert forged == body  # same payload, but:
    for bad in (f"{body}x.{sig}", f"{body}.{sig[:-2]}", body, "", "...", f"{middleware(b'x' * 32).encode({'a': 1})}"):
        session, out = run(middleware(), cookie=bad)
        assert session is None, bad
        assert out == [b"s=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict"]


def test_clearing_the_session_deletes_the_cookie() -> None:
    value = middleware().encode({"auth": "fp"})
    session, out = run(middleware(), cookie=value, set_to=None)
    assert session == {"auth": "fp"}
    assert out == [b"s=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict"]


def test_excluded_paths_never_see_or_set_a_session() -> None:
    value = middleware().encode({"auth": "fp"})
    session, out = run(middleware(), path="/status", cookie=value, set_to={"x": 1})
    assert session is None and out == []


def test_no_cookie_and_no_session_sets_nothing() -> None:
    assert run(middleware()) == (None, [])
