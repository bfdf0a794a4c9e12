"""One raw session to a network receipt printer, with every reply byte classified.

The printer talks back asynchronously (ASB on every status change, process-id answers
when paper has moved), so one reader task parses the stream and routes each reply to
whoever waits for it; the writer never reads the socket itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from .status import (
    ASB_ENABLE,
    CLEAR_BUFFERS,
    DLE_EOT,
    GS_R_PAPER,
    Status,
    from_asb,
    from_eot,
    is_asb_header,
    is_eot_reply,
)

log = logging.getLogger(__name__)


class PrinterGone(Exception):
    """The link dropped or the printer stopped answering."""


class ByteWriter(Protocol):
    """What a Connection needs to send: an asyncio StreamWriter, or the USB writer."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


class Connection:
    """A connected session. Create with `open_network`; close when done."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: ByteWriter,
        on_status: Callable[[Status], None] | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._on_status = on_status
        self._eot: asyncio.Queue[int] = asyncio.Queue()
        self._paper: asyncio.Queue[int] = asyncio.Queue()
        self._cleared = asyncio.Event()
        self.process_ids: set[str] = set()
        self._pid_event = asyncio.Event()
        self.asb: Status | None = None
        self.closed = asyncio.Event()
        self._task = asyncio.create_task(self._read_loop())

    # --- reading ------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        try:
            while True:
                b = await self._read1()
                if b == 0x37:
                    await self._extended()
                elif is_asb_header(b):
                    rest = await self._reader.readexactly(3)
                    self.asb = from_asb(bytes([b]) + rest)
                    if self._on_status:
                        self._on_status(self.asb)
                elif is_eot_reply(b):
                    self._eot.put_nowait(b)
                else:
                    # GS r answers have bit 4 clear; anything else is noise from an
                    # earlier session and is dropped.
                    self._paper.put_nowait(b)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            self._pid_event.set()

    async def _read1(self) -> int:
        data = await self._reader.readexactly(1)
        return data[0]

    async def _extended(self) -> None:
        kind = await self._read1()
        body = bytearray()
        while True:
            b = await self._read1()
            if b == 0x00:
                break
            body.append(b)
            if len(body) > 80:  # not a real reply; resynchronise
                return
        if kind == 0x22:
            self.process_ids.add(body.decode("ascii", "replace"))
            self._pid_event.set()
        elif kind == 0x25:
            self._cleared.set()

    # --- writing ------------------------------------------------------------------------
    async def send(self, data: bytes, chunk: int = 4096) -> None:
        if self.closed.is_set():
            raise PrinterGone("connection closed")
        try:
            for i in range(0, len(data), chunk):
                self._writer.write(data[i : i + chunk])
                await self._writer.drain()
        except (ConnectionError, OSError) as e:
            raise PrinterGone(f"write failed: {e}") from e

    async def _ask(self, cmd: bytes, queue: asyncio.Queue[int], timeout: float) -> int:
        await self.send(cmd)
        get = asyncio.ensure_future(queue.get())
        closed = asyncio.ensure_future(self.closed.wait())
        try:
            done, _ = await asyncio.wait({get, closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        if get in done:
            return get.result()
        get.cancel()
        if self.closed.is_set():
            raise PrinterGone("connection closed while waiting for a status reply")
        raise PrinterGone(f"no answer to {cmd.hex(' ')} within {timeout:g} s")

    async def status(self, timeout: float = 2.0) -> Status:
        """DLE EOT 1..4: answered at once, even while the printer is stopped."""
        replies = {n: await self._ask(DLE_EOT + bytes([n]), self._eot, timeout) for n in (1, 2, 3, 4)}
        return from_eot(replies)

    async def paper_status(self, timeout: float) -> int:
        """GS r 1: answered only after everything sent before it was processed."""
        return await self._ask(GS_R_PAPER, self._paper, timeout)

    async def drain_input(self, quiet: float = 0.05) -> None:
        """Forget replies left over from before (a stale reply must not be read as fresh)."""
        await asyncio.sleep(quiet)
        for q in (self._eot, self._paper):
            while not q.empty():
                q.get_nowait()

    async def enable_asb(self) -> None:
        await self.send(ASB_ENABLE)

    async def clear_buffers(self, timeout: float = 2.0) -> bool:
        self._cleared.clear()
        await self.send(CLEAR_BUFFERS)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._cleared.wait(), timeout)
        return self._cleared.is_set()

    async def wait_process_id(self, pid: str, timeout: float) -> bool:
        """True once `pid` came back; False on timeout; PrinterGone if the link drops."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while pid not in self.process_ids:
            if self.closed.is_set():
                raise PrinterGone("connection lost before the printer confirmed the job")
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._pid_event.clear()
            # asyncio.timeout, not wait_for: no extra task per ticket on the stock loop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 1.0)):
                    await self._pid_event.wait()
        return True

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        self.closed.set()


async def open_network(
    host: str, port: int, timeout: float, on_status: Callable[[Status], None] | None = None
) -> Connection:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as e:
        raise PrinterGone(f"cannot connect to {host}:{port}: {e or 'timeout'}") from e
    return Connection(reader, writer, on_status)
