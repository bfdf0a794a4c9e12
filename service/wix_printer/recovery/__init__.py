"""Recovery after an outage: a small persisted state machine per run.

validation (printer OK, store healthy, stale orders held back) -> processing (the worker
drains the backlog, paced) -> completion (a report). A failed validation is retried with
backoff, then the run fails and says why. Runs are rows in `recovery_runs`, so a restart
mid-run is visible (`interrupted`) and the next run simply carries on: the queue itself
guarantees that nothing is printed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ..config import Config
from ..printing.status import PrinterState
from ..printing.worker import DrainLimiter, PrinterMonitor, PrintWorker
from ..store import Job, OrderRow, RecoveryRun, Store, SyncTx
from ..wix.model import order_from_stored

log = logging.getLogger(__name__)

PRINTABLE_STATES = (PrinterState.ONLINE, PrinterState.PAPER_LOW)
DOWN_STATES = (PrinterState.UNREACHABLE, PrinterState.OFFLINE, PrinterState.PAPER_OUT, PrinterState.COVER_OPEN,
               PrinterState.ERROR)
TRIGGERS = ("startup", "printer_back", "wix_back", "operator")


class RecoveryBusy(Exception):
    def __init__(self, run_id: int) -> None:
        super().__init__(f"recovery run {run_id} is still running")
        self.run_id = run_id


class Report(msgspec.Struct, kw_only=True):
    pending_at_start: int = 0
    printed: int = 0
    held: list[dict[str, Any]] = msgspec.field(default_factory=list)
    failed: int = 0
    first_ticket_after_s: float | None = None
    duration_s: float | None = None
    validation_errors: list[str] = msgspec.field(default_factory=list)


class RecoveryController:
    def __init__(
        self,
        store: Store,
        worker: PrintWorker,
        monitor: PrinterMonitor,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        on_failed: Callable[[int, str], Awaitable[None]] | None = None,
        poll: float = 0.25,
    ) -> None:
        self.store = store
        self.worker = worker
        self.monitor = monitor
        self.config = config
        self.cfg = config.recovery
        self.clock = clock
        self.on_failed = on_failed
        self.poll = poll
        self._task: asyncio.Task[None] | None = None
        self._run_id: int | None = None
        self._down_since: float | None = None

    # --- triggers -----------------------------------------------------------------------
    def on_printer_state(self, old: PrinterState, new: PrinterState) -> None:
        """PrinterMonitor listener: an outage starts pacing; its end starts a run."""
        now = self.clock()
        if new in DOWN_STATES and self._down_since is None:
            self._down_since = now
            self._pace()
        elif new in PRINTABLE_STATES and self._down_since is not None:
            down_for = now - self._down_since
            self._down_since = None
            if down_for >= self.cfg.min_outage_seconds:
                self.trigger("printer_back")
            elif self._task is None or self._task.done():
                self.worker.limiter = None

    def trigger(self, trigger: str) -> None:
        """Start a run unless one is running (it will see whatever the new trigger brought)."""
        if self._task is not None and not self._task.done():
            return
        asyncio.get_running_loop().create_task(self._start_quietly(trigger))

    async def _start_quietly(self, trigger: str) -> None:
        with contextlib.suppress(RecoveryBusy):
            await self.start(trigger)

    async def start(self, trigger: str) -> int:
        if trigger not in TRIGGERS:
            raise ValueError(f"unknown trigger {trigger!r}")
        if self._task is not None and not self._task.done() and self._run_id is not None:
            raise RecoveryBusy(self._run_id)
        run_id = await self.store.write(lambda tx: tx.insert_run(trigger))
        self._run_id = run_id
        log.info("recovery run %s started (%s)", run_id, trigger)
        self._task = asyncio.create_task(self._run(run_id), name=f"recovery-{run_id}")
        return run_id

    async def resume_after_restart(self) -> None:
        """A run cut short by a crash is marked interrupted; if work is pending, start anew."""
        stale = await self.store.write(lambda tx: tx.interrupt_running_runs())
        if stale:
            log.warning("recovery runs %s were interrupted by a restart", stale)
        counts = (await self.store.counts())["jobs"]
        if stale or counts["queued"] or counts["uncertain"]:
            self.trigger("startup")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def running(self) -> int | None:
        return self._run_id if self._task is not None and not self._task.done() else None

    def _pace(self) -> None:
        limiter = DrainLimiter(self.cfg.tickets_per_minute, self.cfg.batch_size, self.cfg.batch_pause_seconds)
        self.worker.limiter = limiter if limiter.active else None

    # --- the state machine --------------------------------------------------------------
    async def _save(self, run_id: int, report: Report, **fields: Any) -> None:
        text = msgspec.json.encode(report).decode()
        await self.store.write(lambda tx: tx.update_run(run_id, report=text, **fields))

    async def _run(self, run_id: int) -> None:
        report = Report()
        started = self.clock()
        try:
            if not await self._validate(run_id, report):
                return
            await self._save(run_id, report, phase="processing")
            self._pace()
            self.worker.wake()
            await self._drain(run_id, report, started)
            report.duration_s = round(self.clock() - started, 3)
            await self._save(run_id, report, phase="completion", state="completed", finished=True)
            log.info("recovery run %s completed: %d printed, %d held, %d failed in %.1f s", run_id,
                     report.printed, len(report.held), report.failed, report.duration_s)
        except asyncio.CancelledError:
            report.duration_s = round(self.clock() - started, 3)
            with contextlib.suppress(Exception):
                await asyncio.shield(self._save(run_id, report, state="interrupted", finished=True))
            raise
        finally:
            self.worker.limiter = None

    async def _validate(self, run_id: int, report: Report) -> bool:
        delay = 1.0
        for attempt in range(1, self.cfg.max_validation_attempts + 1):
            problems = []
            if self.monitor.state not in PRINTABLE_STATES and self.config.printer.kind != "file":
                problems.append(f"printer is {self.monitor.state}")
            if not await self.store.writable():
                problems.append("store is not writable")
            if not problems:
                report.held = await self._hold_stale()
                counts = (await self.store.counts())["jobs"]
                report.pending_at_start = counts["queued"] + counts["uncertain"] + counts["sending"]
                await self._save(run_id, report, attempts=attempt)
                return True
            report.validation_errors = problems
            await self._save(run_id, report, attempts=attempt, last_error="; ".join(problems))
            if attempt < self.cfg.max_validation_attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        why = "validation failed: " + "; ".join(report.validation_errors)
        await self._save(run_id, report, state="failed", last_error=why, finished=True)
        log.error("recovery run %s failed: %s", run_id, why)
        if self.on_failed is not None:
            await self.on_failed(run_id, why)
        return False

    async def _hold_stale(self) -> list[dict[str, Any]]:
        """Before draining: keep back what waited out the outage and is stale now."""
        held: list[dict[str, Any]] = []
        now = self.clock()
        limit = self.cfg.stale_after_minutes * 60
        for job in await self.store.jobs_in_state("queued", limit=10_000):
            if job.kind not in ("kitchen", "driver", "customer") or now - (job.received_at or job.created_at) < limit:
                continue
            order = await self.store.get_order(job.order_id)
            why = stale_check(self.config, now)(job, order) if order else None
            if why:
                await self.store.write(_hold(job.id, why))
                held.append({"job_id": job.id, "order_id": job.order_id, "number": order.number if order else None,
                             "kind": job.kind, "reason": why})
        for job in await self.store.jobs_in_state("held", limit=1000):
            if not any(h["job_id"] == job.id for h in held):
                order = await self.store.get_order(job.order_id)
                held.append({"job_id": job.id, "order_id": job.order_id, "number": order.number if order else None,
                             "kind": job.kind, "reason": job.last_error})
        return held

    async def _drain(self, run_id: int, report: Report, started: float) -> None:
        """Wait while the worker prints the backlog; count what came out."""
        since = started
        saved: tuple[int, int, float | None] | None = None
        while True:
            by_state = await self.store.drain_progress(since)
            report.printed = by_state.get("printed", (0, None))[0]
            report.failed = by_state.get("failed", (0, None))[0]
            first = by_state.get("printed", (0, None))[1]
            if first is not None and report.first_ticket_after_s is None:
                report.first_ticket_after_s = round(first - started, 3)
            busy = sum(by_state.get(s, (0, None))[0] for s in ("queued", "sending", "uncertain"))
            if busy == 0:
                return
            # Persist progress only when it moved: a commit is an fsync on a Pi's SD card.
            progress = (report.printed, report.failed, report.first_ticket_after_s)
            if progress != saved:
                await self._save(run_id, report)
                saved = progress
            await asyncio.sleep(self.poll)

    async def history(self, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
        return [run_dict(r) for r in await self.store.recovery_runs(limit=limit, offset=offset)]


def _hold(job_id: int, why: str) -> Callable[[SyncTx], None]:
    return lambda tx: tx.hold(job_id, why)


def run_dict(run: RecoveryRun) -> dict[str, Any]:
    out = msgspec.structs.asdict(run)
    out["report"] = json.loads(run.report or "{}")
    return out


def stale_check(config: Config, now: float | None = None) -> Callable[[Job, OrderRow], str | None]:
    """The worker's and the recovery's shared rule for "too old to print by itself"."""
    from ..intake import stale_reason

    def check(job: Job, order: OrderRow) -> str | None:
        return stale_reason(order_from_stored(order.raw), now or time.time(), config)

    return check
