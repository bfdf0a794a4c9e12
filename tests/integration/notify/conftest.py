"""Real aiosmtpd servers on loopback (STARTTLS + AUTH, implicit TLS + AUTH, plain)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.notify.smtpserver import PASSWORD, USER, Server, make_cert
from wix_printer.config import MailConfig
from wix_printer.store import Store


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("cert"))


@pytest.fixture
def smtp_server(cert: tuple[Path, Path]) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def make(mode: str = "starttls", **kw: Any) -> Server:
        s = Server(mode, cert, **kw).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def mail_for(cert: tuple[Path, Path]) -> Callable[..., MailConfig]:
    def make(server: Server | None = None, *, port: int | None = None, mode: str | None = None,
             **kw: Any) -> MailConfig:
        mode = mode or (server.mode if server else "starttls")
        base: dict[str, Any] = {
            "enabled": True, "host": "127.0.0.1", "port": port or (server.port if server else 1),
            "security": "none" if mode == "plain" else mode, "sender": USER,
            "recipients": ["inhaber@example.org"], "ca_file": str(cert[0]), "timeout": 5.0,
            "resolve_delay": 0.0,
        }
        if mode != "plain":
            base |= {"username": USER, "password": PASSWORD}
        return MailConfig(**(base | kw))

    return make


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "queue.db")
    await s.open()
    yield s
    await s.close()
