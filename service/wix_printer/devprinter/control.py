"""A tiny loopback-only HTTP control API for switching faults at run time.

Stdlib only, one request per connection: demos and tests drive it with curl or
httpx, and it must not pull a web framework into the printer process.

    GET    /state              faults, jobs printed, byte counters
    GET    /jobs               [{"name": "0001", "bytes": 123, "text": "..."}]
    POST   /fault/<name>       optional JSON body {"value": 0.5}
    DELETE /fault/<name>
    POST   /reset              clears every fault (held data then prints)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .printer import VirtualPrinter

log = logging.getLogger("wix_printer.devprinter")

CONTROL_HOST = "127.0.0.1"  # faults are a test lever, never reachable from the network
MAX_BODY = 64 * 1024


class ControlServer:
    def __init__(self, printer: VirtualPrinter, port: int = 0) -> None:
        self.printer = printer
        self._requested_port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, CONTROL_HOST, self._requested_port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("control server not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                status, payload = await self._serve(reader)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            status, payload = HTTPStatus.BAD_REQUEST, {"error": "bad request"}
        body = json.dumps(payload, indent=1).encode() + b"\n"
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        with contextlib.suppress(ConnectionError):
            writer.write(head + body)
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader) -> tuple[HTTPStatus, Any]:
        request_line = (await reader.readline()).decode("latin-1").strip()
        parts = request_line.split()
        if len(parts) != 3:
            return HTTPStatus.BAD_REQUEST, {"error": "bad request line"}
        method, target, _ = parts
        length = 0
        while True:
            line = (await reader.readline()).decode("latin-1").strip()
            if not line:
                break
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-length":
                length = int(value.strip())
        if length > MAX_BODY:
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"}
        body = await reader.readexactly(length) if length else b""
        path = target.split("?", 1)[0].rstrip("/") or "/"
        return self._route(method.upper(), path, body)

    def _route(self, method: str, path: str, body: bytes) -> tuple[HTTPStatus, Any]:
        vp = self.printer
        if path == "/state" and method == "GET":
            return HTTPStatus.OK, vp.state()
        if path == "/jobs" and method == "GET":
            return HTTPStatus.OK, [{"name": j.name, "bytes": len(j.raw), "text": j.text} for j in vp.jobs]
        if path == "/reset" and method == "POST":
            vp.reset_faults()
            return HTTPStatus.OK, vp.state()
        if path.startswith("/fault/"):
            name = path.removeprefix("/fault/")
            try:
                if method == "POST":
                    value: Any = True
                    if body.strip():
                        doc = json.loads(body)
                        if isinstance(doc, dict) and "value" in doc:
                            value = doc["value"]
                    if not isinstance(value, bool | int | float):
                        return HTTPStatus.BAD_REQUEST, {"error": "value must be a number or boolean"}
                    vp.set_fault(name, value)
                elif method == "DELETE":
                    vp.clear_fault(name)
                else:
                    return HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{method} not allowed"}
            except KeyError as exc:
                return HTTPStatus.NOT_FOUND, {"error": str(exc.args[0])}
            except (ValueError, TypeError) as exc:
                return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
            return HTTPStatus.OK, vp.state()
        if path in ("/state", "/jobs", "/reset"):
            return HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{method} not allowed"}
        return HTTPStatus.NOT_FOUND, {"error": f"no route {path}"}
