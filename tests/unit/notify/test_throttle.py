"""Incident decisions on a real SQLite file with an injected clock (no SMTP involved)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from wix_printer.config import MailConfig
from wix_printer.notify import Kind, Notifier
from wix_printer.printing.status import PrinterState
from wix_printer.printing.worker import PrinterMonitor
from wix_printer.store import Store
from wix_printer.store.outbox import list_rows

BERLIN = ZoneInfo("Europe/Berlin")
# 2024-06-03 14:05 in Berlin, a Monday lunch service.
T0 = dt.datetime(2024, 6, 3, 14, 5, tzinfo=BERLIN).timestamp()


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t

    def at(self, hhmm: str) -> None:
        h, m = map(int, hhmm.split(":"))
        self.t = dt.datetime(2024, 6, 3, h, m, tzinfo=BERLIN).timestamp()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[Store]:
    s = Store(tmp_path / "q.db", clock=clock)
    await s.open()
    yield s
    await s.close()


def mail(**kw: Any) -> MailConfig:
    base: dict[str, Any] = {"enabled": True, "host": "127.0.0.1", "sender": "a@example.org",
                            "recipients": ["b@example.org"], "resolve_delay": 60.0,
                            "repeat_interval": 900.0, "max_per_hour": 12, "escalate_after": 900.0}
    return MailConfig(**(base | kw))


def notifier(store: Store, clock: Clock, **kw: Any) -> Notifier:
    return Notifier(store, mail(**kw), "Imbiss am Boxi", clock)


async def mails(store: Store) -> list[dict[str, Any]]:
    return [msgspec.json.decode(r.payload) | {"key": r.key} for r in await list_rows(store)]


async def test_first_occurrence_is_queued_at_once_repeats_while_open_are_not(store: Store, clock: Clock) -> None:
    n = notifier(store, clock)
    key = await n.raise_incident(Kind.PAPER_OUT, key="printer")
    assert key is not None and key.startswith("paper_out:printer@") and key.endswith("#alert")
    clock.t += 30
    assert await n.raise_incident(Kind.PAPER_OUT, {"state": "still"}, key="printer") is None
    assert [m["subject"] for m in await mails(store)] == ["[Imbiss am Boxi] Drucker: Papier leer"]


async def test_disabled_mail_records_nothing(store: Store, clock: Clock) -> None:
    n = notifier(store, clock, enabled=False)
    assert await n.raise_incident(Kind.PAPER_OUT) is None
    assert await n.resolve_incident(Kind.PAPER_OUT) is None
    assert await mails(store) == []


async def test_flapping_within_resolve_delay_is_one_incident_with_a_summary(store: Store, clock: Clock) -> None:
    n = notifier(store, clock)
    await n.raise_incident(Kind.PRINTER_OFFLINE)
    for minute in ("14:06", "14:08", "14:10"):
        clock.at(minute)
        await n.resolve_incident(Kind.PRINTER_OFFLINE)
        clock.t += 20
        assert await n.tick() == []  # resolve_delay not over yet
        await n.raise_incident(Kind.PRINTER_OFFLINE)
    clock.at("14:30")
    await n.resolve_incident(Kind.PRINTER_OFFLINE)
    clock.t += 61
    [resolved] = await n.tick()
    assert resolved.endswith("#resolved")
    alert, done = await mails(store)
    assert done["subject"] == "[Imbiss am Boxi] Drucker: wieder erreichbar"
    assert "Das ist seit 14:05 3 weitere Male passiert." in done["text"]
    assert alert["incident"] == done["incident"]


async def test_new_incidents_within_repeat_interval_are_counted_and_summarised(store: Store, clock: Clock) -> None:
    n = notifier(store, clock, resolve_delay=0.0)
    assert await n.raise_incident(Kind.COVER_OPEN) is not None
    clock.at("14:06")
    assert await n.resolve_incident(Kind.COVER_OPEN) is not None
    # Three short openings within the next 15 minutes: no mail each.
    for minute in ("14:08", "14:10", "14:12"):
        clock.at(minute)
        assert await n.raise_incident(Kind.COVER_OPEN) is None
        clock.t += 30
        assert await n.resolve_incident(Kind.COVER_OPEN) is None
    # The next one, after the interval, goes out and tells about the three.
    clock.at("14:25")
    key = await n.raise_incident(Kind.COVER_OPEN)
    assert key is not None
    last = (await mails(store))[-1]
    assert last["subject"] == "[Imbiss am Boxi] Drucker: Klappe offen"
    assert "seit 14:05 3 weitere Male" in last["text"]
    assert "seit 14:05 3 weitere Male" in last["html"]
    assert len(await mails(store)) == 3


async def test_throttled_incident_still_open_after_interval_is_mailed_by_tick(store: Store, clock: Clock) -> None:
    n = notifier(store, clock, resolve_delay=0.0)
    await n.raise_incident(Kind.PAPER_LOW)
    clock.at("14:10")
    await n.resolve_incident(Kind.PAPER_LOW)
    clock.at("14:12")
    assert await n.raise_incident(Kind.PAPER_LOW) is None
    clock.at("14:19")
    assert await n.tick() == []
    clock.at("14:21")
    [key] = await n.tick()
    assert key.endswith("#alert")
    assert len(await mails(store)) == 3


async def test_hourly_cap_defers_alerts_but_lets_resolved_through(store: Store, clock: Clock) -> None:
    n = notifier(store, clock, max_per_hour=3, resolve_delay=0.0)
    keys = [await n.raise_incident(Kind.PRINTER_OFFLINE, key=f"p{i}") for i in range(5)]
    assert [k is not None for k in keys] == [True, True, True, False, False]
    assert await n.resolve_incident(Kind.PRINTER_OFFLINE, key="p0") is not None  # resolved is never capped
    assert await n.tick() == []
    clock.t += 3601
    assert len(await n.tick()) == 2  # the deferred ones, once the hour is over
    assert len(await mails(store)) == 6
    # An incident over the cap that ends before it could be mailed is summarised later.
    n2 = notifier(store, clock, max_per_hour=2, resolve_delay=0.0)
    clock.at("15:10")
    assert await n2.raise_incident(Kind.BACKUP_FAILING) is None
    assert await n2.resolve_incident(Kind.BACKUP_FAILING) is None
    clock.t += 3601
    assert await n2.raise_incident(Kind.BACKUP_FAILING) is not None
    assert "Das ist seit 15:10 1 weiteres Mal passiert." in (await mails(store))[-1]["text"]


async def test_escalation_only_for_critical_and_only_in_service_hours(store: Store, clock: Clock) -> None:
    n = notifier(store, clock, service_hours=["11:00-14:30", "17:00-23:00"])
    await n.raise_incident(Kind.PAPER_OUT, key="printer")
    await n.raise_incident(Kind.PRINTER_OFFLINE, key="other")
    clock.at("14:15")
    assert await n.tick() == []
    clock.at("14:21")
    [esc] = await n.tick()
    assert esc.startswith("paper_out:printer@") and esc.endswith("#escalate")
    clock.at("15:00")
    assert await n.tick() == []  # once only
    rows = await mails(store)
    assert rows[-1]["subject"] == "[Imbiss am Boxi] DRINGEND: Drucker: Papier leer"
    assert "seit 14:05 Uhr (16 Minuten)" in rows[-1]["text"]

    # Outside service hours: waits until the service begins.
    clock.at("15:00")
    await n.raise_incident(Kind.COVER_OPEN, key="printer")
    clock.at("16:30")
    assert await n.tick() == []
    clock.at("17:01")
    assert len(await n.tick()) == 1


async def test_idempotency_key_is_unique_per_incident_and_phase(store: Store, clock: Clock) -> None:
    n = notifier(store, clock, resolve_delay=0.0, repeat_interval=0.0)
    a = await n.raise_incident(Kind.PAPER_OUT)
    await n.resolve_incident(Kind.PAPER_OUT)
    clock.t += 1
    b = await n.raise_incident(Kind.PAPER_OUT)
    assert a != b
    keys = [m["key"] for m in await mails(store)]
    assert len(keys) == len(set(keys)) == 3


async def test_one_shot_kinds_are_throttled_against_crash_loops(store: Store, clock: Clock) -> None:
    n = notifier(store, clock)
    assert await n.raise_incident(Kind.SERVICE_RESTARTED) is not None
    for _ in range(5):
        clock.t += 10
        assert await n.raise_incident(Kind.SERVICE_RESTARTED) is None
    clock.t += 900
    assert await n.raise_incident(Kind.SERVICE_RESTARTED) is not None
    assert "5 weitere Male" in (await mails(store))[-1]["text"]
    assert await n.resolve_incident(Kind.SERVICE_RESTARTED) is None


async def test_incident_state_survives_a_restart(tmp_path: Path, clock: Clock) -> None:
    async with Store(tmp_path / "q.db", clock=clock) as s:
        await notifier(s, clock).raise_incident(Kind.INTERNET_DOWN)
    async with Store(tmp_path / "q.db", clock=clock) as s:
        n = notifier(s, clock, resolve_delay=0.0)
        assert await n.raise_incident(Kind.INTERNET_DOWN) is None  # still the same incident
        assert await n.resolve_incident(Kind.INTERNET_DOWN) is not None
        assert [m["phase"] for m in await mails(s)] == ["alert", "resolved"]


async def test_printer_monitor_mapping(store: Store, clock: Clock) -> None:
    n = notifier(store, clock, resolve_delay=0.0, repeat_interval=0.0)
    mon = PrinterMonitor(clock)
    n.attach_printer_monitor(mon)

    async def settle() -> None:
        for t in list(n._tasks):
            await t

    for state in (PrinterState.ONLINE, PrinterState.PAPER_LOW, PrinterState.PAPER_OUT, PrinterState.COVER_OPEN,
                  PrinterState.UNREACHABLE, PrinterState.UNKNOWN, PrinterState.ONLINE):
        clock.t += 1
        mon.set(state, "connection refused" if state is PrinterState.UNREACHABLE else None)
        await settle()
    got = [(m["kind"], m["phase"]) for m in await mails(store)]
    assert got == [
        ("paper_low", "alert"),
        ("paper_low", "resolved"), ("paper_out", "alert"),
        ("paper_out", "resolved"), ("cover_open", "alert"),
        ("cover_open", "resolved"), ("printer_offline", "alert"),
        ("printer_offline", "resolved"),
    ]
    offline = next(m for m in await mails(store) if m["kind"] == "printer_offline")
    assert "connection refused" in offline["text"]
    assert [m["urgent"] for m in await mails(store) if m["phase"] == "alert"] == [False, True, True, False]


async def test_watches_raise_on_change_only(store: Store, clock: Clock) -> None:
    n = notifier(store, clock, disk_min_free_mb=10**9, resolve_delay=0.0)

    class Catchup:
        last_error: str | None = "Wix not reachable: timeout"
        last_run_at: float | None = T0

    c = Catchup()
    n.attach_catchup(c)
    await n.watch()
    await n.watch()
    kinds = sorted(m["kind"] for m in await mails(store))
    assert kinds == ["internet_down", "storage_problem"]
    c.last_error = None
    await n.watch()
    assert [m["kind"] for m in await mails(store) if m["phase"] == "resolved"] == ["internet_down"]
