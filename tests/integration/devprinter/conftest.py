"""A real VirtualPrinter on loopback and a raw TCP client that speaks bytes, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from wix_printer.devprinter import VirtualPrinter
from wix_printer.devprinter.wire import RawClient


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
async def printer(out_dir: Path) -> AsyncIterator[VirtualPrinter]:
    async with VirtualPrinter(out_dir) as vp:
        yield vp


@pytest.fixture
async def connect(printer: VirtualPrinter) -> AsyncIterator[Callable[[], Awaitable[RawClient]]]:
    clients: list[RawClient] = []

    async def make() -> RawClient:
        client = await RawClient.open(printer.port)
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.close()
