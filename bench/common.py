"""Shared bench helpers: machine info, pre-signed webhooks, a service process, a raw
keep-alive HTTP/1.1 client, an instant ESC/POS peer, percentiles and markdown tables.

Everything talks to 127.0.0.1 only. The bench never edits service/ or tests/; it starts
`python -m wix_printer serve` exactly as production would (default log level INFO).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import math
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only, always
KEEPALIVE_REUSE = 4.0  # s; uvicorn's default keep-alive timeout is 5 s


# --- machine -----------------------------------------------------------------------------
def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}, {model}), "
            f"Linux {platform.release()}, Python {platform.python_version()}")


# --- orders and tokens ---------------------------------------------------------------------
def sample_order(name: str = "delivery-berlin") -> dict[str, Any]:
    text = resources.files("wix_printer").joinpath("samples", f"{name}.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def order_variant(base: dict[str, Any], tag: str, i: int) -> tuple[dict[str, Any], str, str]:
    """A distinct order (id, number) and a distinct event id; returns (order, order_id, number)."""
    o = copy.deepcopy(base)
    oid = f"bench-{tag}-{i:07d}"
    number = f"9{zlib.crc32(tag.encode()) % 1000:03d}{i:06d}"
    o["id"] = oid
    o["number"] = number
    return o, oid, number


_SIGNER: Any = None


def _init_signer(pem: str) -> None:
    global _SIGNER
    from wix_printer.fakewix.signing import WebhookSigner, load_private_key

    _SIGNER = WebhookSigner(load_private_key(pem))


def _sign_range(args: tuple[str, int, int]) -> list[tuple[str, str, bytes]]:
    tag, lo, hi = args
    base = sample_order()
    out = []
    for i in range(lo, hi):
        o, oid, number = order_variant(base, tag, i)
        tok = _SIGNER.sign_webhook(o, "approved", "object", "site-1", 1, f"evt-{tag}-{i:07d}", 900, "RS256")
        out.append((oid, number, tok.encode("ascii")))
    return out


def presign(private_pem: str, tag: str, n: int, procs: int | None = None) -> list[tuple[str, str, bytes]]:
    """n signed webhook bodies [(order_id, number, token)], signed before any timing starts."""
    procs = procs or len(os.sched_getaffinity(0))
    chunk = max(1, math.ceil(n / (procs * 4)))
    ranges = [(tag, lo, min(n, lo + chunk)) for lo in range(0, n, chunk)]
    if n <= 200 or procs == 1:
        _init_signer(private_pem)
        return [t for r in ranges for t in _sign_range(r)]
    with mp.get_context("fork").Pool(procs, initializer=_init_signer, initargs=(private_pem,)) as pool:
        return [t for part in pool.map(_sign_range, ranges) for t in part]


def new_signer() -> Any:
    from wix_printer.fakewix.signing import WebhookSigner

    return WebhookSigner()


# --- processes -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    assert url.startswith(f"http://{HOST}:")
    with urllib.request.urlopen(url, timeout=timeout) as r:  # loopback only
        return int(r.status), r.read()


def network_printer(port: int) -> str:
    return (f'kind = "network"\nhost = "{HOST}"\nport = {port}\n'
            "connect_timeout = 0.5\nconfirm_timeout = 5.0\nlate_confirm_wait = 0.3\n")


class ServiceProc:
    """`python -m wix_printer serve --config ...` on a free loopback port, in its own session."""

    def __init__(self, workdir: Path, public_pem: str, printer_section: str, extra: str = "",
                 wix: str = "", python: str = sys.executable) -> None:
        self.python = python
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.db = workdir / "queue.db"
        pem = workdir / "wix.pub.pem"
        pem.write_text(public_pem)
        self.config = workdir / "config.toml"
        # WIX_BENCH_EVENT_LOOP=asyncio|uvloop compares the loops; unset, the default applies.
        loop = f'event_loop = "{os.environ["WIX_BENCH_EVENT_LOOP"]}"' if os.environ.get("WIX_BENCH_EVENT_LOOP") else ""
        self.config.write_text(f"""
[http]
host = "{HOST}"
port = {self.port}
{loop}
[store]
path = "{self.db}"
backup_dir = "{workdir / 'backups'}"
[wix]
public_key = "{pem}"
instance_id = "site-1"
{wix}
[printer]
{printer_section}
[restaurant]
name = "Testküche"
timezone = "Europe/Berlin"
{extra}
""", encoding="utf-8")
        self.log = workdir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> ServiceProc:
        self._fh = self.log.open("ab")
        self.started_at = time.monotonic()
        cmd = [self.python, "-m", "wix_printer", "serve", "--config", str(self.config)]
        if os.environ.get("BENCH_PROFILE"):
            # cProfile of the main thread, written to <workdir>/serve.prof on SIGTERM (uvicorn
            # re-raises the signal after shutdown; our handler turns it into SystemExit).
            cmd = [self.python, "-c", (
                "import cProfile, signal, sys\n"
                "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
                "from wix_printer.cli import main\n"
                "prof = cProfile.Profile()\n"
                "try:\n"
                f"    prof.runcall(main, ['serve', '--config', {str(self.config)!r}])\n"
                "finally:\n"
                f"    prof.dump_stats({str(self.dir / 'serve.prof')!r})\n")]
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.dir,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                if http_get(f"{self.url}/status", 1.0)[0] == 200:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"service did not come up: {self.log.read_text()[-2000:]}")

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(http_get(f"{self.url}/status")[1])
        return data

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if hasattr(self, "_fh"):
            self._fh.close()

    def __enter__(self) -> ServiceProc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class DevPrinterProc:
    """`wix-printer devprinter` (the project's virtual printer) as its own process."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DevPrinterProc:
        self.out.mkdir(parents=True, exist_ok=True)
        self._fh = (self.out.parent / "devprinter.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wix_printer", "devprinter", "--host", HOST, "--port", str(self.port),
             "--out", str(self.out)],
            stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.2):
                return self
            time.sleep(0.05)
        raise RuntimeError("devprinter did not come up")

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        self._fh.close()


@contextlib.contextmanager
def workdir(name: str) -> Any:
    """A scratch folder on the same disk as the service would use (fsync is real here)."""
    d = Path(tempfile.mkdtemp(prefix=f"wixbench-{name}-"))
    try:
        yield d
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(d, ignore_errors=True)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS/VmHWM/... in KiB from /proc/PID/status."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM", "RssAnon", "RssFile", "VmSize", "Threads")):
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[str, tuple[float, float]]:
    """(user, system) CPU seconds per thread: "loop" (the main thread, which runs the event
    loop) and "other" (SQLite's thread, the default executor), summed."""
    out = {"loop": (0.0, 0.0), "other": (0.0, 0.0)}
    tck = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        key = "loop" if int(tid) == pid else "other"
        u, s = out[key]
        out[key] = (u + int(fields[11]) / tck, s + int(fields[12]) / tck)
    return out


# --- raw HTTP/1.1 keep-alive client ------------------------------------------------------------
class HttpConn:
    """One persistent HTTP/1.1 connection; a request costs a write and two reads."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    async def connect(self) -> HttpConn:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.last_used = time.monotonic()
        return self

    def _head(self, body: bytes) -> bytes:
        return (f"POST /webhooks/wix HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
                f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n").encode("ascii")

    async def post(self, body: bytes, on_sent: Callable[[], None] | None = None) -> tuple[int, bytes]:
        if self.writer is not None and time.monotonic() - self.last_used > KEEPALIVE_REUSE:
            await self.close()  # uvicorn drops keep-alive connections idle for 5 s
        if self.writer is None:
            await self.connect()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(self._head(body) + body)
        if on_sent:
            on_sent()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        close = False
        for line in lines[1:]:
            k, _, v = line.partition(":")
            k = k.strip().lower()
            if k == "content-length":
                length = int(v)
            elif k == "connection" and v.strip().lower() == "close":
                close = True
        data = await self.reader.readexactly(length) if length else b""
        self.last_used = time.monotonic()
        if close:
            await self.close()
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


# --- an instant ESC/POS peer that timestamps every cut -------------------------------------------
class InstantPrinter:
    """A raw TCP 9100 peer on loopback: answers DLE EOT with 0x12, GS ( H with its id, ASB on
    enable, clear-buffers with 37 25 00 -- all at once -- and records (time, job bytes) for every
    job when its cut arrives. Time is `time.perf_counter()` of the read that delivered the cut."""

    def __init__(self) -> None:
        self.jobs: list[tuple[float, bytes]] = []
        self.on_job: Callable[[float, bytes], None] | None = None
        self.first_data_at: float | None = None
        self._server: asyncio.Server | None = None
        self.connections = 0

    async def start(self, port: int = 0) -> InstantPrinter:
        self._server = await asyncio.start_server(self._session, HOST, port)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from wix_printer.devprinter import parser as p

        self.connections += 1
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = p.Parser()
        job = bytearray()
        try:
            while True:
                data = await reader.read(65536)
                t = time.perf_counter()
                if not data:
                    break
                if self.first_data_at is None and not data.startswith((b"\x10\x04", b"\x1da")):
                    self.first_data_at = t
                out = bytearray()
                for ev in stream.feed(data):
                    if isinstance(ev, p.RealtimeStatus):
                        out.append(0x12)
                    elif isinstance(ev, p.ProcessId):
                        out += b"\x37\x22" + ev.ident + b"\x00"
                    elif isinstance(ev, p.ClearBuffers):
                        job.clear()
                        out += b"\x37\x25\x00"
                    elif isinstance(ev, p.SetAsb):
                        if ev.n:
                            out += b"\x10\x00\x00\x00"
                    elif isinstance(ev, p.PaperStatusRequest):
                        out.append(0x00)
                    elif isinstance(ev, p.RealtimeIgnored):
                        pass
                    else:
                        job += ev.raw
                        if isinstance(ev, p.Cut):
                            raw = bytes(job)
                            job.clear()
                            self.jobs.append((t, raw))
                            if self.on_job:
                                self.on_job(t, raw)
                if out:
                    writer.write(bytes(out))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def receipt_kind(raw: bytes) -> str:
    """Tell the service's three receipts apart by their content (see receipts/build.py)."""
    if b"Bestellung #" in raw or b"Order #" in raw:
        return "customer"
    if b"\x1d(k" in raw:  # the driver ticket carries the navigation QR code
        return "driver"
    return "kitchen"


# --- statistics and output -----------------------------------------------------------------------
def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, math.ceil(p / 100 * len(s)) - 1)
    return s[k]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def db_rows(db: Path, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return list(con.execute(sql, tuple(args)))
    finally:
        con.close()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def runtime_python() -> str:
    """A venv with only what a box installs (requirements.lock + the project as a wheel, no
    dev tools), on Debian's own python3.11 when there is one (the box's interpreter).

    Memory must be measured there: with the dev extras installed, Litestar finds pydantic
    and loads its plugin, which a box never does. Built once per lock file in var/bench/.
    """
    root = Path(__file__).resolve().parents[1]
    base = "/usr/bin/python3.11" if Path("/usr/bin/python3.11").exists() else sys.executable
    lock = (root / "requirements.lock").read_bytes() + (root / "pyproject.toml").read_bytes()
    tag = hashlib.sha256(lock + base.encode()).hexdigest()[:12]
    venv = root / "var" / "bench" / f"runtime-{tag}"
    py = venv / "bin" / "python"
    uv = str(Path(sys.executable).with_name("uv"))
    if not (venv / ".ok").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run([uv, "pip", "install", "--python", str(py), "-q", "-r", str(root / "requirements.lock")],
                       check=True)
        (venv / ".ok").write_text("ok\n")
    # The service code changes between runs; the dependencies only with the lock. Built from
    # a clean copy as a release is (roles/wheelhouse): an in-place build would leave build/
    # in the project and reuse whatever a previous build left there.
    with tempfile.TemporaryDirectory(prefix="wix-bench-src-") as tmp:
        subprocess.run([base, str(root / "roles" / "wheelhouse" / "files" / "stage_sources.py"), str(root),
                        f"{tmp}/src"], check=True)
        subprocess.run([uv, "pip", "install", "--python", str(py), "-q", "--no-deps", "--reinstall-package",
                        "wix-printer", f"{tmp}/src"], check=True)
    return str(py)
