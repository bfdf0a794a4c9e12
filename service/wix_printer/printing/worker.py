"""The print worker: owns the printer's one connection, takes jobs off the queue, and
only calls a job printed when the printer says so.

A job's rendered bytes and process id are committed before the first byte is sent, so a
crash at any point leaves either a queued job, a printed one, or an `uncertain` one
that is reprinted under a visible "possible duplicate" banner, never silently twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NamedTuple

import msgspec

from ..config import PrinterConfig, RecoveryConfig, StoreConfig
from ..store import Job, OrderRow, Store, SyncTx
from .connection import Connection, PrinterGone, open_network
from .status import PrinterState, Status, process_id_command
from .usb import EscposUsbDevice, UsbDevice, open_usb

log = logging.getLogger(__name__)

Renderer = Callable[[Job, OrderRow | None], bytes]
ORDER_KINDS = ("kitchen", "driver", "customer")
PID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class PrinterMonitor:
    """What /status and the notifier know about the printer."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.state = PrinterState.UNKNOWN
        self.since = clock()
        self.last_error: str | None = None
        self.last_ok_at: float | None = None
        self.paper_near_end = False
        self.listeners: list[Callable[[PrinterState, PrinterState], None]] = []

    def set(self, state: PrinterState, error: str | None = None) -> None:
        if error:
            self.last_error = error
        if state is not self.state:
            old, self.state, self.since = self.state, state, self._clock()
            log.info("printer: %s -> %s%s", old, state, f" ({error})" if error else "")
            for cb in self.listeners:
                cb(old, state)
        if state in (PrinterState.ONLINE, PrinterState.PAPER_LOW):
            self.last_ok_at = self._clock()

    def from_status(self, st: Status) -> None:
        self.paper_near_end = st.paper_near_end
        self.set(st.state)

    def as_dict(self) -> dict[str, object]:
        return {"state": str(self.state), "since": self.since, "last_error": self.last_error,
                "last_ok_at": self.last_ok_at, "paper_near_end": self.paper_near_end}


class _Verdict(NamedTuple):
    action: str  # send | held | failed
    why: str | None = None
    payload: bytes | None = None


def _peek(tx: SyncTx) -> tuple[Job, OrderRow | None] | None:
    """The next due job as the claim will see it (attempts counted) and its order."""
    job = tx.next_due()
    if job is None:
        return None
    return msgspec.structs.replace(job, attempts=job.attempts + 1), tx.get_order(job.order_id)


def _render_inputs(job: Job) -> tuple[object, ...]:
    return (job.id, job.order_id, job.kind, job.banner, job.detail, job.attempts, job.last_error, job.revision)


class Taken(NamedTuple):
    """A claimed job; `payload` is None when it is not to be sent (dead-lettered, held, unrenderable)."""

    job: Job
    payload: bytes | None
    pid: str
    # The job due after this one, read in the same transaction (see _take).
    following: tuple[Job, OrderRow | None] | None = None


def encode_pid(n: int) -> str:
    n %= len(PID_ALPHABET) ** 4
    out = []
    for _ in range(4):
        n, r = divmod(n, len(PID_ALPHABET))
        out.append(PID_ALPHABET[r])
    return "".join(reversed(out))


class PrintWorker:
    def __init__(
        self,
        store: Store,
        printer: PrinterConfig,
        store_cfg: StoreConfig,
        render: Renderer,
        *,
        monitor: PrinterMonitor | None = None,
        reprint_banner: str = "NACHDRUCK – evtl. doppelt",
        interruption_slip: bytes = b"",
        clock: Callable[[], float] = time.time,
        on_printed: Callable[[Job], Awaitable[None]] | None = None,
        recovery: RecoveryConfig | None = None,
        stale_check: Callable[[Job, OrderRow], str | None] | None = None,
        usb_device: Callable[[], UsbDevice] | None = None,
        warmup: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.store = store
        self.cfg = printer
        self.lease = store_cfg.lease_seconds
        self.render = render
        self.monitor = monitor or PrinterMonitor(clock)
        self.reprint_banner = reprint_banner
        self.interruption_slip = interruption_slip
        self.clock = clock
        self.on_printed = on_printed
        self._wake = asyncio.Event()
        self._conn: Connection | None = None
        # Process ids the printer confirmed on any connection of this worker; a late
        # answer may arrive on a session we already gave up on.
        self._confirmed: set[str] = set()
        self._pid_seq = random.SystemRandom().randrange(len(PID_ALPHABET) ** 4)
        self.recovery = recovery or RecoveryConfig()
        self.stale_check = stale_check
        self.usb_device = usb_device or (lambda: EscposUsbDevice(printer))
        self.warmup = warmup
        # Set by the recovery controller while a backlog drains, so the kitchen gets the
        # tickets at a pace it can take.
        self.limiter: DrainLimiter | None = None
        self.alive_at = clock()
        self._stopping = False
        # Fault injection for the watchdog test only: the loop stops making progress.
        self._hang_after = float(os.environ.get("WIX_PRINTER_TEST_HANG_WORKER_AFTER", "0") or 0)
        self._started = clock()
        # Jobs may be uncertain after a restart; afterwards only when we marked one.
        self._maybe_uncertain = True
        self._status_checked = 0.0
        # Confirmed by the printer, `printed` not committed yet (see _take).
        self._done_pending: Job | None = None
        self._following: tuple[Job, OrderRow | None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._conn:
            await self._conn.close()
            self._conn = None
        # A ticket the printer confirmed is committed as printed before the process ends,
        # or the next start would reprint it under the duplicate banner.
        try:
            await self._flush_done()
        except Exception:
            log.exception("could not record the last printed ticket at shutdown")

    # --- main loop ----------------------------------------------------------------------
    async def run(self) -> None:
        await self.store.requeue_stale(all_sending=True)
        if self.warmup is not None:
            # Before the first render: what it prepares (the money formats) would otherwise
            # be made in this process, at a cost in memory for as long as it runs.
            await self.warmup()
        backoff = 0.1
        next_lease_check = self.clock() + self.lease
        while not self._stopping:
            self.alive_at = self.clock()
            if self.alive_at >= next_lease_check:
                if await self.store.requeue_stale():
                    self._maybe_uncertain = True
                next_lease_check = self.alive_at + self.lease / 4
            if self._hang_after and self.clock() - self._started > self._hang_after:
                log.error("fault injection: print worker hangs now")
                await asyncio.Event().wait()
            try:
                if self.cfg.kind == "none":
                    self.monitor.set(PrinterState.NOT_CONFIGURED)
                    await self._idle(5.0)
                    continue
                if self.cfg.kind == "file":
                    await self._run_file_once()
                    continue
                conn = await self._ensure_connection()
                st = await self._printer_status(conn)
                self.monitor.from_status(st)
                if not st.can_print:
                    await self._flush_done()
                    # The printer keeps what it has; wait for it instead of sending more.
                    await self._idle(1.0)
                    continue
                backoff = 0.1
                if self._maybe_uncertain:
                    await self._flush_done()
                    if await self._resolve_uncertain(conn):
                        continue
                if self.limiter is not None and await self.store.has_due_jobs():
                    await self._flush_done()
                    await self.limiter.acquire()
                taken = await self._take()
                if taken is None:
                    # Idle: look at the printer again in a second, or at once when woken.
                    await self._idle(1.0)
                    continue
                if taken.payload is not None:
                    await self._print(conn, taken)
            except PrinterGone as e:
                await self._flush_done()
                self.monitor.set(PrinterState.UNREACHABLE, str(e))
                await self._drop_connection()
                # Probe twice a second while the printer is away (a refused connect costs
                # nothing), so the first ticket starts within a second of it coming back.
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.5)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the printer for the rest of the day
                log.exception("print worker iteration failed")
                await self._flush_done()
                await asyncio.sleep(1.0)
        await self._flush_done()
        await self._drop_connection()

    async def _printer_status(self, conn: Connection) -> Status:
        """Between jobs, trust Automatic Status Back (the printer reports every change)
        and ask with DLE EOT once a second only, as a liveness probe: four round trips
        before every ticket would cost more CPU than rendering it."""
        now = asyncio.get_running_loop().time()
        if conn.asb is not None and now - self._status_checked < 1.0:
            return conn.asb
        st = await conn.status(self.cfg.status_timeout)
        self._status_checked = now
        return st

    async def _idle(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _ensure_connection(self) -> Connection:
        if self._conn is not None and not self._conn.closed.is_set():
            return self._conn
        await self._drop_connection()
        if self.cfg.kind == "usb":
            conn = await open_usb(self.usb_device, self.cfg.usb_write_timeout, self.monitor.from_status)
        else:
            conn = await open_network(self.cfg.host, self.cfg.port, self.cfg.connect_timeout, self.monitor.from_status)
        conn.process_ids = self._confirmed
        await conn.drain_input()
        await conn.enable_asb()
        await conn.drain_input()
        self._conn = conn
        self._status_checked = 0.0
        return conn

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def _next_pid(self) -> str:
        self._pid_seq += 1
        return encode_pid(self._pid_seq)

    # --- one job ------------------------------------------------------------------------
    # A ticket costs one commit: the transaction that claims it also stores its exact bytes
    # and process id (before anything is sent), marks the previous ticket printed, and
    # reads the job due after it. That job is rendered here, on this thread, while the
    # database thread (which webhooks wait for) only runs SQL; the next claim then checks
    # that it took that very job, unchanged, with an unchanged order, or decides again.
    # So a backlog costs one hand-off to the database thread per ticket, not two. The
    # previous ticket's confirmation waits for that commit only on the fast path (printer
    # fine, nothing uncertain, no pacing): every other branch of the loop flushes it first.
    # A crash in between costs what it cost before: a `sending` job with a process id,
    # settled at start.
    async def _take(self) -> Taken | None:
        peek, self._following = self._following, None
        if peek is None:
            peek = await self.store.read(_peek)
        verdict = self._decide(*peek, self.clock()) if peek is not None else None
        done, self._done_pending = self._done_pending, None
        try:
            taken = await self.store.write(functools.partial(self._take_tx, done, peek, verdict))
        except BaseException:
            self._done_pending = done
            raise
        if done is not None:
            await self._after_done(done)
        if taken is not None:
            self._following = taken.following
        return taken

    def _decide(self, job: Job, order: OrderRow | None, now: float) -> _Verdict:
        """What to do with `job` as claimed (attempts already counted): send, hold or fail."""
        if job.attempts > self.recovery.max_print_attempts:
            # Dead-letter a job that keeps failing: visible and retryable, not retried forever.
            why = f"gave up after {job.attempts - 1} attempts: {job.last_error or 'unknown error'}"
            return _Verdict("failed", why)
        reason = self._stale_reason(job, order, now)
        if reason is not None:
            return _Verdict("held", reason)
        try:
            return _Verdict("send", payload=self.render(job, order))
        except Exception as e:
            log.exception("rendering job %s failed", job.id)
            return _Verdict("failed", f"render failed: {e}")

    def _take_tx(self, done: Job | None, peek: tuple[Job, OrderRow | None] | None, verdict: _Verdict | None,
                 tx: SyncTx) -> Taken | None:
        """On the database thread, inside one IMMEDIATE transaction."""
        if done is not None:
            tx.mark_printed(done.id)
        job = tx.claim(self.lease)
        if job is None:
            return None
        if peek is not None and verdict is not None and job.id == peek[0].id \
                and _render_inputs(job) == _render_inputs(peek[0]) \
                and tx.order_is(job.order_id, peek[1].raw if peek[1] else None):
            order = peek[1]
        else:
            # Nothing was read ahead, or since then a more urgent job arrived, a banner was
            # set or the order was updated: decide here, on what is stored now.
            order = tx.get_order(job.order_id)
            verdict = self._decide(job, order, tx.now)
        following = _peek(tx)
        if verdict.action == "failed":
            log.error("job %s (%s of order %s): %s", job.id, job.kind, job.order_id, verdict.why)
            tx.dead_letter(job.id, verdict.why or "")
            return Taken(job, None, "", following)
        if verdict.action == "held":
            log.warning("job %s (%s of order %s) held for a human: %s", job.id, job.kind, job.order_id, verdict.why)
            tx.hold(job.id, verdict.why or "")
            return Taken(job, None, "", following)
        pid = self._next_pid()
        tx.set_state(job.id, "sending", payload=verdict.payload, process_id=pid, sent_at=tx.now,
                     lease_until=tx.now + self.lease)
        if order is not None and job.kind in ORDER_KINDS:
            tx.mark_raw_printed(order.id)
        elif order is not None and job.kind == "change" and job.detail:
            tx.set_printed_raw(order.id, json.loads(job.detail)["raw"])
        return Taken(job, verdict.payload, pid, following)

    def _stale_reason(self, job: Job, order: OrderRow | None, now: float) -> str | None:
        """An order that waited out an outage and is too old is held for a human."""
        waited = now - (job.received_at or job.created_at)
        if self.stale_check is None or order is None or job.kind not in ORDER_KINDS:
            return None
        if waited < self.recovery.stale_after_minutes * 60:
            return None
        return self.stale_check(job, order)

    async def _print(self, conn: Connection, taken: Taken) -> None:
        job, payload, pid = taken.job, taken.payload, taken.pid
        if payload is None:
            return
        try:
            await conn.send(payload + process_id_command(pid))
            ok = await self._confirm(conn, job, pid)
        except PrinterGone as e:
            await self._mark_uncertain(job, f"link lost mid-job: {e}")
            raise
        if ok:
            # Committed with the next claim, or by _flush_done on any other path.
            self._done_pending = job
        else:
            await self._mark_uncertain(job, "printer did not confirm the job")

    async def _confirm(self, conn: Connection, job: Job, pid: str) -> bool:
        if self.cfg.confirm == "status":
            return await self._confirm_by_status(conn, job)
        ok_since = asyncio.get_running_loop().time()
        while True:
            self.alive_at = self.clock()
            if await conn.wait_process_id(pid, 1.0):
                return True
            st = await conn.status(self.cfg.status_timeout)
            self.monitor.from_status(st)
            now = asyncio.get_running_loop().time()
            if not st.can_print:
                # Paper end or cover open mid-job: the printer holds the rest; do not resend.
                await self._extend_lease(job)
                ok_since = now
            elif now - ok_since > self.cfg.confirm_timeout:
                return False

    async def _confirm_by_status(self, conn: Connection, job: Job) -> bool:
        """For printers without GS ( H: GS r answers once the job is processed, then DLE EOT."""
        while True:
            self.alive_at = self.clock()
            try:
                await conn.paper_status(self.cfg.confirm_timeout)
                break
            except PrinterGone:
                if conn.closed.is_set():
                    raise
                st = await conn.status(self.cfg.status_timeout)
                self.monitor.from_status(st)
                if st.can_print:
                    return False
                await self._extend_lease(job)
        st = await conn.status(self.cfg.status_timeout)
        self.monitor.from_status(st)
        return st.can_print

    async def _extend_lease(self, job: Job) -> None:
        await self.store.write(lambda tx: tx.extend_lease(job.id, self.lease))

    async def _done(self, job: Job) -> None:
        await self.store.complete(job.id)
        await self._after_done(job)

    async def _flush_done(self) -> None:
        """Commit a confirmed ticket's `printed` now, before the loop waits for anything."""
        done, self._done_pending = self._done_pending, None
        if done is None:
            return
        try:
            await self._done(done)
        except BaseException:
            self._done_pending = done
            raise

    async def _after_done(self, job: Job) -> None:
        self.monitor.last_ok_at = self.clock()
        if self.on_printed:
            await self.on_printed(job)

    async def _mark_uncertain(self, job: Job, why: str) -> None:
        log.warning("job %s (%s of order %s): outcome unknown: %s", job.id, job.kind, job.order_id, why)
        self._maybe_uncertain = True
        await self.store.write(lambda tx: tx.set_state(job.id, "uncertain", last_error=why, lease_until=None))

    async def _resolve_uncertain(self, conn: Connection) -> bool:
        """Settle jobs whose outcome is unknown before printing anything new."""
        jobs = await self.store.jobs_in_state("uncertain", limit=20)
        if not jobs:
            self._maybe_uncertain = False
            return False
        waited = False
        cleared = False
        for job in jobs:
            pid = job.process_id
            if pid and pid not in self._confirmed and not waited:
                # A late answer may still be on its way from the printer.
                await asyncio.sleep(self.cfg.late_confirm_wait)
                waited = True
            if pid and pid in self._confirmed:
                log.info("job %s: late confirmation %s arrived; it printed", job.id, pid)
                await self._done(job)
                continue
            # Whatever of it is still in the printer must not come out half: clear, then
            # print it again under a banner that says it may be a duplicate.
            if not cleared:
                await conn.clear_buffers()
                # Part of the job may already be on paper; cut it off before the reprint.
                if self.interruption_slip:
                    await conn.send(self.interruption_slip)
                cleared = True
            await self._requeue_marked(job)
            log.warning("job %s: reprinting with a possible-duplicate banner", job.id)
        return True

    async def _requeue_marked(self, job: Job) -> None:
        await self.store.write(lambda tx: tx.set_state(job.id, "queued", banner=self.reprint_banner, not_before=0,
                                                       last_error=job.last_error))

    # --- file printer -------------------------------------------------------------------
    async def _run_file_once(self) -> None:
        self.monitor.set(PrinterState.ONLINE)
        # A file cannot say what it received before a crash: reprint under the banner.
        for stale in await self.store.jobs_in_state("uncertain", limit=20):
            await self._requeue_marked(stale)
        taken = await self._take()
        if taken is None:
            await self._idle(1.0)
            return
        if taken.payload is None:
            return
        await asyncio.to_thread(_append, Path(self.cfg.path), taken.payload)
        await self._done(taken.job)


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)
        f.flush()
        if path.is_file():
            # A regular file must be on disk before the job counts as printed; a device
            # node (/dev/usb/lp0, /dev/null) cannot be fsynced and needs not be.
            os.fsync(f.fileno())


class DrainLimiter:
    """Paces a backlog: at most `per_minute` tickets a minute (0: no cap), and a pause
    after every `batch_size` tickets so the pass does not fill up in one go."""

    def __init__(self, per_minute: float, batch_size: int, batch_pause: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self.batch_size = batch_size
        self.batch_pause = batch_pause
        self.clock = clock
        self.count = 0
        self._next = 0.0

    @property
    def active(self) -> bool:
        return self.interval > 0 or self.batch_pause > 0

    async def acquire(self) -> None:
        if self.count and self.batch_pause > 0 and self.count % self.batch_size == 0:
            await asyncio.sleep(self.batch_pause)
        now = self.clock()
        if self.interval and self._next > now:
            await asyncio.sleep(self._next - now)
        self._next = max(now, self._next) + self.interval
        self.count += 1
