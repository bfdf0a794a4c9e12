"""Fixtures for the status page: a real service with a password and an API token."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import Service
from wix_printer.web.auth import hash_password

PASSWORD = "Küchen-Passwort 42"
TOKEN = "integrator-token-0123456789abcdef"


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(PASSWORD)


def api_section(password_hash: str = "", token: str = TOKEN, extra: str = "") -> str:
    return f'[api]\nadmin_password_hash = "{password_hash}"\ntoken = "{token}"\n{extra}'


@pytest.fixture
def web_service(service_factory: Any, password_hash: str) -> Callable[..., Service]:
    """service_factory with [api] set; `api_extra` adds keys to [api]."""

    def make(*, api_extra: str = "", with_password: bool = True, **kw: Any) -> Service:
        extra = api_section(password_hash if with_password else "", extra=api_extra) + kw.pop("extra", "")
        svc: Service = service_factory(extra=extra, **kw)
        return svc

    return make


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def login(client: httpx.Client, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/login")
    assert page.status_code == 200, page.text[:300]
    return client.post("/login", data={"password": password, "next": "/", "csrf_token": csrf_from(page.text)})


@pytest.fixture
def client_for() -> Iterator[Callable[[Service], httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(svc: Service) -> httpx.Client:
        c = httpx.Client(base_url=svc.url, follow_redirects=False, timeout=10.0,
                         headers={"accept": "text/html,application/xhtml+xml"})
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()
