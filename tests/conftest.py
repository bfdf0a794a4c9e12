"""Shared fixtures: a webhook signer and real service processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Service
from wix_printer.fakewix.signing import WebhookSigner


@pytest.fixture(scope="session")
def signer() -> WebhookSigner:
    return WebhookSigner()


@pytest.fixture
def service_factory(tmp_path: Path, signer: WebhookSigner) -> Iterator[Any]:
    started: list[Service] = []

    def make(**kw: Any) -> Service:
        svc = Service(tmp_path, signer=signer, **kw).start()
        started.append(svc)
        return svc

    yield make
    for s in started:
        s.stop()
