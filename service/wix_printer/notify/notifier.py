"""Incidents -> durable outbox -> SMTP, throttled so the owner hears quickly but rarely.

Rules (times from MailConfig):
- The first occurrence of an incident is queued in the same transaction that records
  it, and the sender is woken, so it reaches the SMTP server within a second or two.
- While an incident is open, raising it again only updates its detail. A "resolved"
  waits `resolve_delay`; if the problem comes back meanwhile it stays one incident and
  counts as a repeat. A new incident of the same kind within `repeat_interval` of the
  last alert is not mailed at once; if it is still open when the interval is over it
  is, otherwise it is counted. Counted repeats appear in the next mail about that kind
  ("seit 14:05 3 weitere Male").
- At most `max_per_hour` mails across all kinds; an alert over the cap waits (it is not
  dropped) while its incident stays open. "Resolved" mails for incidents the owner was
  told about and escalations are never held back by the cap.
- Critical kinds still open `escalate_after` seconds later, during service hours, get
  one urgent mail, also to `escalate_to`.
- Each mail has an idempotency key (kind, key, incident start, phase) that is UNIQUE in
  the outbox, so an incident is mailed at most once per phase even across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import time
from collections.abc import Callable
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import msgspec

from ..config import MailConfig
from ..printing.status import PrinterState
from ..store import Store, Tx, outbox
from ..store.outbox import OutboxRow, Track
from .hours import in_service, parse_hours
from .kinds import ONE_SHOT, PRINTER_KINDS, PRINTER_STATE_KINDS, SEVERITY, Kind, kind_of
from .smtp import Connection, SmtpFailure, build_message
from .templates import Phase, Renderer

log = logging.getLogger(__name__)

HOUR = 3600.0
BACKOFF_BASE = 5.0
PRINTER_KEY = "printer"


class _Monitor(Protocol):
    state: PrinterState
    last_error: str | None
    listeners: list[Callable[[PrinterState, PrinterState], None]]


class _Catchup(Protocol):
    last_error: str | None
    last_run_at: float | None


class Notifier:
    def __init__(
        self,
        store: Store,
        mail: MailConfig,
        restaurant: str,
        clock: Callable[[], float] = time.time,
        *,
        timezone: str = "Europe/Berlin",
        rng: Callable[[], float] = random.random,
        tick_interval: float = 15.0,
    ) -> None:
        self.store = store
        self.mail = mail
        self.restaurant = restaurant
        self.clock = clock
        self.tz = ZoneInfo(timezone)
        self.rng = rng
        # How often open incidents are re-examined (escalation, deferred alerts, settled
        # resolves) and the watches run; mails themselves never wait for it.
        self.tick_interval = tick_interval
        self.renderer = Renderer(mail, restaurant, timezone)
        self.hours = parse_hours(mail.service_hours)
        self._lock = asyncio.Lock()  # one incident decision at a time: read-modify-write of a track
        self._printer_lock = asyncio.Lock()  # keeps monitor transitions in the order they happened
        self._send_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._monitor: _Monitor | None = None
        self._catchup: _Catchup | None = None
        self._watch_state: dict[Kind, bool] = {}
        self.last_error: str | None = None
        self.last_sent_at: float | None = None
        self.sent = 0

    @property
    def enabled(self) -> bool:
        return self.mail.enabled

    def wake(self) -> None:
        self._wake.set()

    # --- incidents ----------------------------------------------------------------------
    async def raise_incident(self, kind: Kind | str, detail: dict[str, Any] | None = None,
                             key: str | None = None) -> str | None:
        """Record that a human must act; returns the outbox key when a mail was queued now."""
        k = kind_of(kind)
        if not self.enabled:
            return None
        detail = dict(detail or {})
        async with self._lock, self.store.transaction() as tx:
            now = self.clock()
            subkey = key or "main"
            tr = await outbox.get_track(tx, k, subkey) or Track(kind=k, subkey=subkey)
            queued = None
            if k in ONE_SHOT:
                # Nothing to resolve: each event is its own incident, but a crash loop must
                # still not mail every few seconds, so the same throttle applies.
                tr.incident, tr.started_at, tr.detail = _incident(k, subkey, now), now, detail
                if self._throttled(tr, now):
                    self._count_repeat(tr, now)
                else:
                    queued = await self._alert(tx, tr, now, phase="alert", capped=True)
                tr.open = tr.alerted = False
            elif tr.open:
                if tr.resolved_at is not None:
                    # Back before the "resolved" went out: the same incident, one more time.
                    tr.resolved_at = None
                    self._count_repeat(tr, now)
                tr.detail = detail
            else:
                tr.open, tr.incident, tr.started_at, tr.detail = True, _incident(k, subkey, now), now, detail
                tr.resolved_at, tr.alerted, tr.escalated = None, False, False
                if not self._throttled(tr, now):
                    queued = await self._alert(tx, tr, now, phase="alert", capped=True)
            await outbox.put_track(tx, tr)
        if queued:
            self.wake()
        return queued

    async def resolve_incident(self, kind: Kind | str, key: str | None = None) -> str | None:
        """The problem is over; returns the outbox key when a "resolved" mail was queued now."""
        k = kind_of(kind)
        if not self.enabled or k in ONE_SHOT:
            return None
        async with self._lock, self.store.transaction() as tx:
            now = self.clock()
            tr = await outbox.get_track(tx, k, key or "main")
            if tr is None or not tr.open:
                return None
            if tr.resolved_at is None:
                tr.resolved_at = now
            queued = await self._close(tx, tr, now) if self.mail.resolve_delay <= 0 else None
            await outbox.put_track(tx, tr)
        if queued:
            self.wake()
        return queued

    async def tick(self) -> list[str]:
        """Re-examine open incidents: settled resolves, deferred alerts, escalations."""
        if not self.enabled:
            return []
        queued: list[str] = []
        async with self._lock:
            for seen in await outbox.all_tracks(self.store):
                if not seen.open:
                    continue
                async with self.store.transaction() as tx:
                    tr = await outbox.get_track(tx, seen.kind, seen.subkey)
                    if tr is None or not tr.open:
                        continue
                    got = await self._tick_one(tx, tr, self.clock())
                    await outbox.put_track(tx, tr)
                if got:
                    queued.append(got)
        if queued:
            self.wake()
        return queued

    async def _tick_one(self, tx: Tx, tr: Track, now: float) -> str | None:
        kind = Kind(tr.kind)
        if tr.resolved_at is not None:
            if now >= tr.resolved_at + self.mail.resolve_delay:
                return await self._close(tx, tr, now)
            return None
        if not tr.alerted:
            return None if self._throttled(tr, now) else await self._alert(tx, tr, now, "alert", capped=True)
        if (SEVERITY[kind] == "critical" and not tr.escalated and self.mail.escalate_after > 0
                and now - tr.started_at >= self.mail.escalate_after and in_service(self.hours, now, self.tz)):
            return await self._alert(tx, tr, now, "escalate", capped=False)
        return None

    def _throttled(self, tr: Track, now: float) -> bool:
        return tr.last_alert_at is not None and now - tr.last_alert_at < self.mail.repeat_interval

    @staticmethod
    def _count_repeat(tr: Track, now: float) -> None:
        tr.repeats += 1
        if tr.repeats_since is None:
            tr.repeats_since = tr.last_alert_at if tr.last_alert_at is not None else now

    async def _close(self, tx: Tx, tr: Track, now: float) -> str | None:
        queued = None
        if tr.alerted:
            queued = await self._alert(tx, tr, now, "resolved", capped=False)
        else:
            # The owner never heard of this one (throttled or over the cap): it becomes a
            # line in the next mail about this kind instead of a mail of its own.
            self._count_repeat(tr, tr.started_at)
        tr.open, tr.resolved_at, tr.alerted, tr.escalated, tr.incident = False, None, False, False, ""
        return queued

    async def _alert(self, tx: Tx, tr: Track, now: float, phase: Phase, *, capped: bool) -> str | None:
        if capped and await outbox.queued_since(tx, now - HOUR) >= self.mail.max_per_hour:
            log.warning("notify: hourly cap reached, %s waits", tr.kind)
            return None
        kind = Kind(tr.kind)
        ctx = self.renderer.context(kind, phase, tr.detail, started_at=tr.started_at, now=now,
                                    repeats=tr.repeats, repeats_since=tr.repeats_since)
        try:
            rendered = self.renderer.render(kind, phase, ctx)
            subject, text, html = rendered.subject, rendered.text, rendered.html
        except Exception as e:  # the built-in templates are broken too: still tell the owner
            log.exception("notify: cannot render %s/%s", kind, phase)
            subject = f"[{self.restaurant}] {kind} ({phase})"
            text = f"{kind} {phase}\n{msgspec.json.encode(tr.detail).decode()}\n(template error: {e})\n"
            html = ""
        key = f"{tr.incident}#{phase}"
        payload = {"v": 1, "kind": str(kind), "phase": phase, "incident": tr.incident, "subject": subject,
                   "text": text, "html": html, "urgent": phase == "escalate" or SEVERITY[kind] == "critical",
                   "escalate": phase == "escalate"}
        if not await outbox.enqueue(tx, key, kind, payload):
            return None
        if phase == "escalate":
            tr.escalated = True
        elif phase == "alert":
            tr.alerted = True
            tr.last_alert_at = now
        tr.repeats, tr.repeats_since = 0, None
        log.info("notify: queued %s", key)
        return key

    # --- sending ------------------------------------------------------------------------
    async def send_due(self) -> int:
        """Send every due outbox mail over one SMTP session; returns how many went out."""
        if not self.enabled:
            return 0
        async with self._send_lock:
            rows = await outbox.claim_due(self.store, self.clock(), lease=self.mail.timeout * 4 + 30)
            if not rows:
                return 0
            sent = 0
            try:
                async with Connection(self.mail) as conn:
                    for i, row in enumerate(rows):
                        if not conn.usable:
                            await self._failed(rows[i:], "connection to the mail server lost")
                            break
                        try:
                            await conn.send(self._message(row), self._recipients(row))
                        except SmtpFailure as e:
                            await self._failed([row], str(e))
                            continue
                        await outbox.mark_sent(self.store, row.id, self.clock())
                        sent += 1
                        self.sent += 1
                        self.last_sent_at = self.clock()
                        self.last_error = None
            except SmtpFailure as e:
                await self._failed(rows[sent:], str(e))
            return sent

    def _recipients(self, row: OutboxRow) -> list[str]:
        payload = msgspec.json.decode(row.payload)
        to = list(self.mail.recipients)
        if payload.get("escalate"):
            to += [r for r in self.mail.escalate_to if r not in to]
        return to

    def _message(self, row: OutboxRow) -> Any:
        from .templates import Rendered

        p = msgspec.json.decode(row.payload)
        rendered = Rendered(subject=p["subject"], text=p["text"], html=p["html"] or f"<pre>{p['text']}</pre>")
        return build_message(self.mail, rendered, key=row.key, to=self._recipients(row), now=self.clock(),
                             urgent=bool(p.get("urgent")))

    async def _failed(self, rows: list[OutboxRow], error: str) -> None:
        self.last_error = error
        now = self.clock()
        for row in rows:
            if now - row.created_at > self.mail.give_up_after:
                log.error("notify: giving up on %s after %d attempts: %s", row.key, row.attempts, error)
                await outbox.mark_failed(self.store, row.id, error)
                continue
            delay = min(self.mail.retry_max, BACKOFF_BASE * 2 ** max(0, row.attempts - 1))
            # Jitter keeps a fleet of boxes behind one provider from retrying in lockstep.
            delay *= 0.5 + self.rng() / 2
            log.warning("notify: %s not sent (attempt %d), retry in %.0f s: %s",
                        row.key, row.attempts, delay, error)
            await outbox.mark_retry(self.store, row.id, error, now + delay)

    # --- watches ------------------------------------------------------------------------
    def attach_printer_monitor(self, monitor: _Monitor) -> None:
        self._monitor = monitor

        def on_change(old: PrinterState, new: PrinterState) -> None:
            try:
                task = asyncio.get_running_loop().create_task(self._printer_changed(new))
            except RuntimeError:
                log.error("notify: printer state change outside the event loop ignored")
                return
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        monitor.listeners.append(on_change)

    async def _printer_changed(self, new: PrinterState) -> None:
        kinds = PRINTER_STATE_KINDS.get(new)
        if kinds is None:
            return
        async with self._printer_lock:
            try:
                for k in PRINTER_KINDS:
                    if k not in kinds:
                        await self.resolve_incident(k, PRINTER_KEY)
                error = self._monitor.last_error if self._monitor else None
                for k in kinds:
                    await self.raise_incident(k, {"state": str(new), "error": error or ""}, PRINTER_KEY)
            except Exception:
                log.exception("notify: cannot record printer state %s", new)

    def attach_catchup(self, catchup: _Catchup) -> None:
        self._catchup = catchup

    async def _set(self, kind: Kind, on: bool, detail: dict[str, Any]) -> None:
        """Raise or resolve on a change of a polled condition only (not on every poll)."""
        if self._watch_state.get(kind) == on:
            return
        self._watch_state[kind] = on
        if on:
            await self.raise_incident(kind, detail)
        else:
            await self.resolve_incident(kind)

    async def watch(self) -> None:
        """The polled conditions: Wix reachability, free disk, orders not printing."""
        if self._catchup is not None and self._catchup.last_run_at is not None:
            err = self._catchup.last_error
            await self._set(Kind.INTERNET_DOWN, bool(err), {"error": err or ""})
        where = str(self.store.path.parent)
        try:
            free_mb = shutil.disk_usage(self.store.path.parent).free // (1024 * 1024)
        except OSError as e:
            await self._set(Kind.STORAGE_PROBLEM, True, {"error": str(e), "path": where})
        else:
            await self._set(Kind.STORAGE_PROBLEM, free_mb < self.mail.disk_min_free_mb,
                            {"free_mb": int(free_mb), "path": where})
        stuck = await self.store.jobs_in_state("held", "failed", limit=500)
        held = sum(1 for j in stuck if j.state == "held")
        counts = await self.store.counts()
        oldest = counts.get("oldest_queued_at")
        now = self.clock()
        printer_fine = self._monitor is None or self._monitor.state in (PrinterState.ONLINE,
                                                                         PrinterState.PAPER_LOW)
        # A queue that waits because the printer is out of paper is already reported as such.
        slow = printer_fine and oldest is not None and now - float(oldest) > self.mail.stuck_after
        await self._set(Kind.ORDERS_STUCK, bool(stuck) or slow, {
            "held": held, "failed": len(stuck) - held,
            "oldest_minutes": round((now - float(oldest)) / 60) if slow and oldest is not None else 0,
        })

    # --- loop ---------------------------------------------------------------------------
    async def process_once(self) -> int:
        """One round: watches, incident timers, then sending."""
        try:
            await self.watch()
        except Exception:
            log.exception("notify: watch failed")
        await self.tick()
        return await self.send_due()

    async def run(self) -> None:
        """Send forever; woken at once by a new mail, otherwise every tick_interval."""
        if not self.enabled:
            return
        await self._check_restart()
        last_tick = -1e18
        try:
            while True:
                self._wake.clear()
                try:
                    if time.monotonic() - last_tick >= self.tick_interval:
                        last_tick = time.monotonic()
                        await self.process_once()
                    else:
                        await self.send_due()
                except Exception as e:  # a broken round must not end notifications for good
                    self.last_error = f"{type(e).__name__}: {e}"
                    log.exception("notify: round failed")
                # aiosmtplib awaits replies through asyncio.wait_for, which on Python 3.11 can
                # swallow a cancel that lands together with the reply; honour it here so
                # the service still stops.
                me = asyncio.current_task()
                if me is not None and me.cancelling():
                    raise asyncio.CancelledError
                delay = self.tick_interval
                due = await outbox.next_due(self.store)
                if due is not None:
                    delay = min(delay, max(0.05, due - self.clock()))
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
                # arrives together with a wake-up, and shutdown would then hang.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
        finally:
            with contextlib.suppress(Exception):
                async with self.store.transaction() as tx:
                    await outbox.delete_sync(tx, outbox.RUNNING_KEY)

    async def _check_restart(self) -> None:
        """A marker left by a run that never reached its `finally` means a crash or power loss."""
        async with self.store.transaction() as tx:
            previous = await outbox.get_sync(tx, outbox.RUNNING_KEY)
            await tx.set_sync(outbox.RUNNING_KEY, str(self.clock()))
        if previous is not None:
            await self.raise_incident(Kind.SERVICE_RESTARTED, {"previous_start": previous})

    async def status(self) -> dict[str, Any]:
        tracks = [t for t in await outbox.all_tracks(self.store) if t.open]
        return {
            "enabled": self.enabled,
            "outbox": await outbox.counts(self.store),
            "last_error": self.last_error,
            "last_sent_at": self.last_sent_at,
            "open_incidents": [{"kind": t.kind, "key": t.subkey, "since": t.started_at, "mailed": t.alerted}
                               for t in tracks],
        }


def _incident(kind: Kind, subkey: str, started_at: float) -> str:
    return f"{kind}:{subkey}@{int(started_at * 1000)}"
