"""The HTTP control API, spoken as raw HTTP/1.1 over loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from wix_printer.devprinter import VirtualPrinter
from wix_printer.devprinter.wire import LOOPBACK, RawClient, id_reply, job, process_id


async def http(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, Any]:
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
    await writer.drain()
    async with asyncio.timeout(5):
        response = await reader.read()
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = response.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload)


@pytest.fixture
async def controlled(out_dir: Path) -> AsyncIterator[VirtualPrinter]:
    async with VirtualPrinter(out_dir, control_port=0) as vp:
        yield vp


async def test_state_reports_faults_jobs_and_bytes(controlled: VirtualPrinter) -> None:
    client = await RawClient.open(controlled.port)
    data = job("Hallo")
    await client.send(data)
    await controlled.wait_for_jobs(1)
    assert controlled.control_port is not None
    status, state = await http(controlled.control_port, "GET", "/state")
    assert status == 200
    assert state["jobs_printed"] == 1
    assert state["last_job"] == "0001"
    assert state["bytes_received"] == len(data)
    assert state["session_active"] is True
    assert state["faults"] == {
        "offline": False,
        "paper-near-end": False,
        "paper-end": False,
        "cover-open": False,
        "slow": 0.0,
        "silent": False,
        "cut-after": None,
        "no-process-id": False,
    }
    status, jobs = await http(controlled.control_port, "GET", "/jobs")
    assert jobs == [{"name": "0001", "bytes": len(data), "text": "Hallo\n"}]
    await client.close()


async def test_faults_switch_at_run_time(controlled: VirtualPrinter) -> None:
    port = controlled.control_port
    assert port is not None
    client = await RawClient.open(controlled.port)

    status, state = await http(port, "POST", "/fault/paper-end")
    assert status == 200
    assert state["faults"]["paper-end"] is True
    assert await client.query(4) == 0x7E
    await client.send(job("gehalten") + process_id(b"K001"))
    await client.expect_silence(0.3)

    status, state = await http(port, "DELETE", "/fault/paper-end")
    assert status == 200
    assert await client.recv(7) == id_reply(b"K001")

    status, state = await http(port, "POST", "/fault/slow", b'{"value": 0.5}')
    assert (status, state["faults"]["slow"]) == (200, 0.5)
    status, state = await http(port, "POST", "/fault/cut-after", b'{"value": 100}')
    assert (status, state["faults"]["cut-after"]) == (200, 100)
    await http(port, "POST", "/fault/cover-open")
    status, state = await http(port, "POST", "/reset")
    assert status == 200
    assert not any(state["faults"][k] for k in ("cover-open", "slow", "cut-after"))
    assert await client.query(2) == 0x12
    await client.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("POST", "/fault/jammed", b"", 404),
        ("POST", "/fault/slow", b'{"value": -1}', 400),
        ("POST", "/fault/slow", b'{"value": "fast"}', 400),
        ("POST", "/fault/cut-after", b"", 400),
        ("POST", "/fault/slow", b"{not json", 400),
        ("PUT", "/fault/slow", b"", 405),
        ("POST", "/state", b"", 405),
        ("GET", "/nowhere", b"", 404),
    ],
)
async def test_bad_requests(
    controlled: VirtualPrinter, method: str, path: str, body: bytes, expected: int
) -> None:
    assert controlled.control_port is not None
    status, payload = await http(controlled.control_port, method, path, body)
    assert status == expected
    assert "error" in payload
