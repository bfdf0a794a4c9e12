"""The virtual TM-m30III: one raw TCP session at a time, a held print queue, faults.

Two paths, as in the real printer:

* the receive path parses bytes as they arrive and answers real-time commands
  (DLE EOT, DLE DC4 fn8) at once, even while printing is stopped;
* the print engine works through everything else strictly in stream order. It
  stops in front of anything that needs paper while the printer is offline, the
  cover is open or the paper is out, and keeps the data until the fault clears.
  Replies that depend on printing (GS ( H process id, GS r) therefore come back
  only once everything before them has printed.

A second connection is accepted by the kernel but not read until the first one
closes, like an Epson network interface that queues clients; its bytes wait in
the socket buffer and its status queries go unanswered until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import TracebackType
from typing import Any

from . import parser as p
from .model import JobBuilder, Receipt
from .render import render_png

log = logging.getLogger("wix_printer.devprinter")

#: Fault names as used on the command line, in the control API and by ``set_fault``.
FAULT_NAMES = (
    "offline",
    "paper-near-end",
    "paper-end",
    "cover-open",
    "slow",
    "silent",
    "cut-after",
    "no-process-id",
)
STATUS_FAULTS = frozenset({"offline", "paper-near-end", "paper-end", "cover-open"})

# Events that put something on paper; they wait while printing is stopped.
_PRINTING = (
    p.Text,
    p.LineFeed,
    p.Tab,
    p.FeedLines,
    p.FeedDots,
    p.Cut,
    p.QrPrint,
    p.RasterImage,
)

_JOB_FILE = re.compile(r"^(\d{4,})\.(?:bin|txt|png)$")

PRINTER_IDS = {
    1: b"\x20",  # model id
    2: b"\x02",  # type id: auto cutter, no drawer sensor tricks
    3: b"\x40",  # firmware version id
    65: b"_1.00 ESC/POS\x00",
    66: b"_EPSON\x00",
    67: b"_TM-m30III\x00",
    68: b"_VIRTUAL0001\x00",
}


@dataclass
class Faults:
    offline: bool = False
    paper_near_end: bool = False
    paper_end: bool = False
    cover_open: bool = False
    slow: float = 0.0  # seconds per KiB of job data
    silent: bool = False
    cut_after: int | None = None  # bytes still to receive before the connection is cut
    no_process_id: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {k.replace("_", "-"): v for k, v in asdict(self).items()}

    @property
    def stopped(self) -> bool:
        """Printing is stopped (data is held, not lost)."""
        return self.offline or self.paper_end or self.cover_open


@dataclass(frozen=True)
class PrintedJob:
    number: int
    raw: bytes = field(repr=False)
    text: str
    receipt: Receipt = field(repr=False)
    bin_path: Path | None = None
    txt_path: Path | None = None
    png_path: Path | None = None

    @property
    def name(self) -> str:
        return f"{self.number:04d}"


def _fault_attr(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    if key not in FAULT_NAMES:
        raise KeyError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")
    return key.replace("-", "_")


def next_job_number(out_dir: Path) -> int:
    """Continue after the highest NNNN.{bin,txt,png} already in the folder."""
    numbers = [int(m.group(1)) for f in out_dir.iterdir() if (m := _JOB_FILE.match(f.name))]
    return max(numbers, default=0) + 1


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_job_files(out_dir: Path, name: str, receipt: Receipt, png: bool) -> tuple[Path, Path, Path | None]:
    # .txt goes last: watchers poll for it and may read the other two right away.
    bin_path = out_dir / f"{name}.bin"
    _write_atomic(bin_path, receipt.raw)
    png_path: Path | None = None
    if png:
        png_path = out_dir / f"{name}.png"
        _write_atomic(png_path, render_png(receipt))
    txt_path = out_dir / f"{name}.txt"
    _write_atomic(txt_path, receipt.text.encode("utf-8"))
    return bin_path, txt_path, png_path


class VirtualPrinter:
    """An in-process virtual printer; ``async with VirtualPrinter(tmp_path) as vp: vp.port``."""

    def __init__(
        self,
        out_dir: Path | str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int | None = None,
        faults: Faults | None = None,
        render_png: bool = True,
        receive_buffer: int = 1 << 20,
    ) -> None:
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.host = host
        self._port = port
        self.control_port_requested = control_port
        self.faults = faults if faults is not None else Faults()
        self.render_png = render_png and self.out_dir is not None
        # Once this much is held, stop reading the socket: the client's sends then block
        # like against a real printer whose receive buffer is full during paper end.
        self.receive_buffer = receive_buffer
        self.jobs: list[PrintedJob] = []
        self.bytes_received = 0
        self.replies_sent = 0

        self._server: asyncio.Server | None = None
        self._control: Any = None
        self._engine_task: asyncio.Task[None] | None = None
        self._session_tasks: set[asyncio.Task[Any]] = set()
        self._session_lock = asyncio.Lock()
        self._writer: asyncio.StreamWriter | None = None
        self._queue: deque[p.Event] = deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._busy = False
        self._builder = JobBuilder()
        self._asb = 0
        self._asb_last: bytes | None = None
        self._next_number = 1

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._next_number = next_job_number(self.out_dir)
        self._engine_task = asyncio.create_task(self._engine(), name="devprinter-engine")
        self._server = await asyncio.start_server(self._on_connect, self.host, self._port)
        if self.control_port_requested is not None:
            from .control import ControlServer

            self._control = ControlServer(self, port=self.control_port_requested)
            await self._control.start()

    async def stop(self) -> None:
        if self._control is not None:
            await self._control.stop()
            self._control = None
        if self._server is not None:
            self._server.close()
        for task in list(self._session_tasks):
            task.cancel()
        for task in list(self._session_tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._engine_task is not None:
            self._engine_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._engine_task
            self._engine_task = None

    async def __aenter__(self) -> VirtualPrinter:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("printer not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def control_port(self) -> int | None:
        return None if self._control is None else int(self._control.port)

    # --- faults ----------------------------------------------------------------------

    def set_fault(self, name: str, value: bool | float | int = True) -> None:
        """Switch a fault on. ``slow`` takes seconds per KiB, ``cut-after`` a byte count."""
        attr = _fault_attr(name)
        if attr == "slow":
            seconds = 1.0 if value is True else float(value)
            if seconds < 0:
                raise ValueError("slow needs seconds per KiB >= 0")
            self.faults.slow = seconds
        elif attr == "cut_after":
            if isinstance(value, bool) or int(value) != value or int(value) < 0:
                raise ValueError("cut-after needs a byte count >= 0")
            self.faults.cut_after = int(value)
        else:
            setattr(self.faults, attr, bool(value))
        log.info("fault %s set (%s)", attr.replace("_", "-"), getattr(self.faults, attr))
        self._status_changed()

    def clear_fault(self, name: str) -> None:
        attr = _fault_attr(name)
        default = next(f.default for f in fields(Faults) if f.name == attr)
        setattr(self.faults, attr, default)
        log.info("fault %s cleared", attr.replace("_", "-"))
        self._status_changed()

    def reset_faults(self) -> None:
        for name in FAULT_NAMES:
            self.clear_fault(name)

    # --- waiting helpers for tests ---------------------------------------------------

    # The helpers take a timeout on purpose: tests read better as
    # ``await vp.wait_for_jobs(2, timeout=3)`` than wrapped in asyncio.timeout blocks.
    async def wait_for_jobs(self, n: int, timeout: float = 5.0) -> list[PrintedJob]:
        """Wait until at least ``n`` jobs have printed; returns the first ``n``."""
        await self._wait_until(lambda: len(self.jobs) >= n, timeout)
        return self.jobs[:n]

    async def wait_until_idle(self, timeout: float = 5.0) -> None:
        """Wait until nothing is queued (held data counts as queued)."""
        await self._wait_until(lambda: not self._queue and not self._busy, timeout)

    async def wait_for_received(self, n: int, timeout: float = 5.0) -> None:
        """Wait until the printer has read at least ``n`` bytes in total."""
        await self._wait_until(lambda: self.bytes_received >= n, timeout)

    async def _wait_until(self, predicate: Callable[[], bool], timeout: float | None) -> None:
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                if predicate():
                    return
                await changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    @property
    def held_bytes(self) -> int:
        """Stream bytes received but not yet executed by the print engine."""
        return self._queued_bytes

    @property
    def session_active(self) -> bool:
        return self._writer is not None

    def state(self) -> dict[str, Any]:
        return {
            "faults": self.faults.as_dict(),
            "jobs_printed": len(self.jobs),
            "last_job": self.jobs[-1].name if self.jobs else None,
            "next_job": f"{self._next_number:04d}",
            "bytes_received": self.bytes_received,
            "bytes_printed": sum(len(j.raw) for j in self.jobs),
            "held_bytes": self._queued_bytes,
            "printing_stopped": self.faults.stopped,
            "session_active": self.session_active,
            "asb_enabled": self._asb != 0,
            "code_page": self._builder.code_page,
            "port": self.port if self._server is not None else None,
            "out_dir": str(self.out_dir) if self.out_dir is not None else None,
        }

    # --- status bytes ----------------------------------------------------------------

    def dle_eot_byte(self, n: int) -> int | None:
        f = self.faults
        value = 0x12  # fixed bits 0xx1xx10
        if n == 1:
            if f.stopped:
                value |= 0x08
        elif n == 2:
            if f.cover_open:
                value |= 0x04
            if f.paper_end:
                value |= 0x20
        elif n == 3:
            pass
        elif n == 4:
            if f.paper_near_end or f.paper_end:
                value |= 0x0C
            if f.paper_end:
                value |= 0x60
        else:
            return None
        return value

    def paper_status_byte(self) -> int:
        f = self.faults
        value = 0x00
        if f.paper_near_end or f.paper_end:
            value |= 0x03
        if f.paper_end:
            value |= 0x0C
        return value

    def asb_bytes(self) -> bytes:
        f = self.faults
        b1 = 0x10
        if f.stopped:
            b1 |= 0x08
        if f.cover_open:
            b1 |= 0x20
        return bytes([b1, 0x00, self.paper_status_byte(), 0x00])

    # --- internals ---------------------------------------------------------------------

    def _status_changed(self) -> None:
        if self._asb:
            self._send_asb(force=False)
        self._wake.set()

    def _send_asb(self, *, force: bool) -> None:
        status = self.asb_bytes()
        if force or status != self._asb_last:
            self._asb_last = status
            self._reply(status)

    def _reply(self, data: bytes) -> None:
        if self.faults.silent:
            return
        writer = self._writer
        # Replies go to whoever holds the session now: a late process id after a
        # reconnect is exactly what a client waits for.
        if writer is None or writer.is_closing():
            return
        writer.write(data)
        self.replies_sent += 1

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._session_tasks.add(task)
        try:
            async with self._session_lock:
                await self._session(reader, writer)
        except asyncio.CancelledError:
            # Shutdown. Python 3.11's start_server callback calls exception() on a
            # cancelled handler task and logs a bogus traceback; end normally instead.
            pass
        finally:
            self._session_tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        log.debug("session from %s", peer)
        self._writer = writer
        self._asb = 0
        self._asb_last = None
        stream = p.Parser()
        try:
            while True:
                if self._queued_bytes >= self.receive_buffer:
                    await self._wait_until(lambda: self._queued_bytes < self.receive_buffer, None)
                try:
                    data = await reader.read(65536)
                except ConnectionError:
                    break
                if not data:
                    break
                drop = False
                remaining = self.faults.cut_after
                if remaining is not None:
                    if len(data) >= remaining:
                        data = data[:remaining]
                        drop = True
                        self.faults.cut_after = None
                    else:
                        self.faults.cut_after = remaining - len(data)
                self.bytes_received += len(data)
                for ev in stream.feed(data):
                    self._dispatch(ev)
                self._notify()
                if drop:
                    log.info("cut-after: dropping connection from %s", peer)
                    sock = writer.get_extra_info("socket")
                    if sock is not None:
                        # Linger 0 makes close send RST: the client sees a reset, not a polite FIN.
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    break
        finally:
            if self._writer is writer:
                self._writer = None
                self._asb = 0
            if stream.pending:
                log.info("session closed inside a command; %d bytes discarded", stream.pending)
            log.debug("session from %s closed", peer)

    def _dispatch(self, ev: p.Event) -> None:
        if isinstance(ev, p.RealtimeStatus):
            value = self.dle_eot_byte(ev.n)
            if value is not None:
                self._reply(bytes([value]))
        elif isinstance(ev, p.ClearBuffers):
            self._clear_buffers()
            self._reply(b"\x37\x25\x00")
        elif isinstance(ev, p.RealtimeIgnored):
            pass
        else:
            self._queue.append(ev)
            self._queued_bytes += len(ev.raw)
            self._wake.set()

    def _clear_buffers(self) -> None:
        dropped = self._queued_bytes
        ids = sum(1 for ev in self._queue if isinstance(ev, p.ProcessId))
        self._queue.clear()
        self._queued_bytes = 0
        self._builder.discard_line()
        self._notify()
        log.info("buffers cleared: %d held bytes and %d process ids discarded", dropped, ids)

    def _ready(self) -> bool:
        if not self._queue:
            return False
        return not (isinstance(self._queue[0], _PRINTING) and self.faults.stopped)

    async def _engine(self) -> None:
        while True:
            while not self._ready():
                self._wake.clear()
                await self._wake.wait()
            ev = self._queue.popleft()
            self._queued_bytes -= len(ev.raw)
            self._busy = True
            try:
                await self._execute(ev)
            except Exception:  # a rendering bug must not stop the printer
                log.exception("devprinter: failed to execute %r", ev)
            finally:
                self._busy = False
                self._notify()

    async def _execute(self, ev: p.Event) -> None:
        receipt = self._builder.apply(ev)
        if receipt is not None:
            await self._print(receipt)
            return
        match ev:
            case p.ProcessId(ident=ident):
                if not self.faults.no_process_id:
                    self._reply(b"\x37\x22" + ident + b"\x00")
            case p.PaperStatusRequest(n=n):
                if n in (1, 49):
                    self._reply(bytes([self.paper_status_byte()]))
                elif n in (2, 50):
                    self._reply(b"\x00")
            case p.SetAsb(n=n):
                self._asb = n
                if n:
                    self._send_asb(force=True)
            case p.PrinterIdRequest(n=n):
                if n in PRINTER_IDS:
                    self._reply(PRINTER_IDS[n])
            case _:
                pass

    async def _print(self, receipt: Receipt) -> None:
        if self.faults.slow > 0:
            await asyncio.sleep(len(receipt.raw) / 1024 * self.faults.slow)
        number = self._next_number
        self._next_number += 1
        name = f"{number:04d}"
        paths: tuple[Path | None, Path | None, Path | None] = (None, None, None)
        started = time.monotonic()
        if self.out_dir is not None:
            # Rendering takes milliseconds; off the loop so real-time replies stay instant.
            paths = await asyncio.to_thread(write_job_files, self.out_dir, name, receipt, self.render_png)
        self.jobs.append(
            PrintedJob(
                number=number,
                raw=receipt.raw,
                text=receipt.text,
                receipt=receipt,
                bin_path=paths[0],
                txt_path=paths[1],
                png_path=paths[2],
            )
        )
        log.info("printed %s.txt (%d bytes)", name, len(receipt.raw))
        log.debug("job %s written in %.1f ms", name, (time.monotonic() - started) * 1000)
