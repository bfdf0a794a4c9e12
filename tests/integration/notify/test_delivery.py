"""Notifications through a real SMTP server (aiosmtpd) on loopback: TLS modes, AUTH,
outages, wrong passwords, restarts, the printer monitor, latency."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.integration.notify.smtpserver import USER, Server, free_port
from wix_printer.config import MailConfig
from wix_printer.notify import Kind, Notifier
from wix_printer.printing.status import PrinterState
from wix_printer.printing.worker import PrinterMonitor
from wix_printer.store import Store
from wix_printer.store.outbox import counts, list_rows

RESTAURANT = "Imbiss am Boxi"


async def wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(notifier: Notifier) -> Any:
    task = asyncio.create_task(notifier.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize(("mode", "mechanisms"), [
    ("starttls", ("PLAIN",)), ("starttls", ("LOGIN",)), ("tls", ("PLAIN", "LOGIN")), ("plain", ()),
])
async def test_incident_mail_reaches_the_server_in_every_tls_mode(
    store: Store, smtp_server: Callable[..., Server], mail_for: Callable[..., MailConfig],
    mode: str, mechanisms: tuple[str, ...],
) -> None:
    server = smtp_server(mode, mechanisms=mechanisms or ("PLAIN", "LOGIN"))
    n = Notifier(store, mail_for(server), RESTAURANT)
    async with running(n):
        t0 = time.perf_counter()
        key = await n.raise_incident(Kind.PAPER_OUT, {"state": "paper_out"}, key="printer")
        msgs = await asyncio.to_thread(server.sink.wait, 1, 10.0)
        await wait_for(lambda: n.sent == 1)
    assert key is not None
    assert len(msgs) == 1
    m = msgs[0]
    assert m.at - t0 < 5.0, "detected error -> accepted by SMTP must stay under 5 s"
    assert m.subject == "[Imbiss am Boxi] Drucker: Papier leer"
    assert "Was tun:" in m.text() and "Papierrolle" in m.text()
    assert "<ul>" in m.html()
    assert m.rcpt_tos == ["inhaber@example.org"]
    assert m.message["Auto-Submitted"] == "auto-generated"
    assert m.login == (USER if mode != "plain" else None)
    rows = await list_rows(store)
    assert [(r.state, r.attempts) for r in rows] == [("sent", 1)]


async def test_untrusted_certificate_is_refused_and_retried(
    store: Store, smtp_server: Callable[..., Server], mail_for: Callable[..., MailConfig],
) -> None:
    server = smtp_server("starttls")
    clock = FakeClock()
    n = Notifier(store, mail_for(server, ca_file=""), RESTAURANT, clock, rng=lambda: 1.0)
    await n.raise_incident(Kind.PRINTER_OFFLINE)
    assert await n.send_due() == 0
    [row] = await list_rows(store)
    assert row.state == "pending" and row.attempts == 1
    assert row.last_error is not None and "TLS" in row.last_error
    assert row.next_attempt_at == pytest.approx(clock.t + 5.0)
    assert server.messages == []


class FakeClock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


async def test_wrong_password_is_recorded_retried_with_backoff_and_not_lost(
    store: Store, smtp_server: Callable[..., Server], mail_for: Callable[..., MailConfig],
) -> None:
    server = smtp_server("starttls")
    clock = FakeClock()
    bad = Notifier(store, mail_for(server, password="wrong"), RESTAURANT, clock, rng=lambda: 0.5)
    await bad.raise_incident(Kind.COVER_OPEN, key="printer")
    delays = []
    for _ in range(4):
        assert await bad.send_due() == 0
        [row] = await list_rows(store)
        delays.append(row.next_attempt_at - clock.t)
        assert await bad.send_due() == 0, "not due yet: no retry before the backoff is over"
        clock.t = row.next_attempt_at
    assert row.state == "pending" and row.attempts == 4
    assert row.last_error is not None and "login refused" in row.last_error and "535" in row.last_error
    assert bad.last_error == row.last_error
    # Exponential, with jitter factor 0.75 from rng=0.5.
    assert delays == pytest.approx([3.75, 7.5, 15.0, 30.0])
    assert server.messages == []
    # The owner fixes the password and the service restarts: the mail still goes, once.
    good = Notifier(store, mail_for(server), RESTAURANT, clock)
    assert await good.send_due() == 1
    assert await good.send_due() == 0
    assert len(server.messages) == 1
    assert server.messages[0].subject == "[Imbiss am Boxi] Drucker: Klappe offen"


async def test_smtp_down_outbox_survives_restart_and_sends_once(
    tmp_path: Path, cert: tuple[Path, Path], smtp_server: Callable[..., Server],
    mail_for: Callable[..., MailConfig],
) -> None:
    port = free_port()
    mail = mail_for(port=port, mode="starttls")
    db = tmp_path / "q.db"
    clock = FakeClock()
    store = Store(db, clock=clock)
    await store.open()
    n = Notifier(store, mail, RESTAURANT, clock)
    await n.raise_incident(Kind.INTERNET_DOWN, {"error": "connect timeout"})
    assert await n.send_due() == 0
    [row] = await list_rows(store)
    assert row.state == "pending" and "cannot connect" in (row.last_error or "")
    await store.close()  # the service stops (or the power goes) with the mail unsent

    server = smtp_server("starttls", port=port)
    clock.t += 3600
    store2 = Store(db, clock=clock)
    await store2.open()
    try:
        n2 = Notifier(store2, mail, RESTAURANT, clock)
        # A second raise of the still-open incident must not queue a second mail.
        assert await n2.raise_incident(Kind.INTERNET_DOWN, {"error": "still"}) is None
        assert await n2.send_due() == 1
        assert await n2.send_due() == 0
        assert await counts(store2) == {"pending": 0, "sent": 1, "failed": 0}
    finally:
        await store2.close()
    assert [m.subject for m in server.messages] == ["[Imbiss am Boxi] Internet: Wix nicht erreichbar"]
    assert "connect timeout" in server.messages[0].text()


async def test_give_up_after_marks_failed(
    store: Store, mail_for: Callable[..., MailConfig],
) -> None:
    clock = FakeClock()
    n = Notifier(store, mail_for(port=free_port(), give_up_after=60.0), RESTAURANT, clock)
    await n.raise_incident(Kind.BACKUP_FAILING, {"error": "disk"})
    await n.send_due()
    clock.t += 3600
    await n.send_due()
    [row] = await list_rows(store)
    assert row.state == "failed" and row.attempts == 2


async def test_printer_monitor_transitions_mail_and_resolve(
    store: Store, smtp_server: Callable[..., Server], mail_for: Callable[..., MailConfig],
) -> None:
    server = smtp_server("starttls")
    n = Notifier(store, mail_for(server, language="en"), RESTAURANT)
    monitor = PrinterMonitor()
    n.attach_printer_monitor(monitor)
    async with running(n):
        monitor.set(PrinterState.ONLINE)
        monitor.set(PrinterState.PAPER_OUT)
        await asyncio.to_thread(server.sink.wait, 1, 10.0)
        monitor.set(PrinterState.ONLINE)
        msgs = await asyncio.to_thread(server.sink.wait, 2, 10.0)
    assert [m.subject for m in msgs] == ["[Imbiss am Boxi] Printer: out of paper",
                                         "[Imbiss am Boxi] Printer: paper back"]
    assert "What to do:" in msgs[0].text()
    assert msgs[0].message["Importance"] == "high"


async def test_crash_restart_is_reported_clean_stop_is_not(
    tmp_path: Path, smtp_server: Callable[..., Server], mail_for: Callable[..., MailConfig],
) -> None:
    server = smtp_server("plain")
    mail = mail_for(server)
    db = tmp_path / "q.db"
    for _ in range(2):  # clean runs: started and cancelled
        async with Store(db) as store:
            n = Notifier(store, mail, RESTAURANT)
            async with running(n):
                await asyncio.sleep(0.05)
    assert server.messages == []
    async with Store(db) as store:
        # A run that never reached its finally (kill -9, power loss) leaves its marker.
        async with store.transaction() as tx:
            await tx.set_sync("notify:running", "1700000000")
        n = Notifier(store, mail, RESTAURANT)
        async with running(n):
            await asyncio.to_thread(server.sink.wait, 1, 10.0)
    assert [m.subject for m in server.messages] == ["[Imbiss am Boxi] Drucker-Dienst neu gestartet"]


async def test_escalation_goes_to_extra_recipients(
    store: Store, smtp_server: Callable[..., Server], mail_for: Callable[..., MailConfig],
) -> None:
    server = smtp_server("plain")
    clock = FakeClock()
    n = Notifier(store, mail_for(server, escalate_after=600.0, escalate_to=["chef@example.org"]),
                 RESTAURANT, clock)
    await n.raise_incident(Kind.PAPER_OUT, key="printer")
    clock.t += 601
    assert len(await n.tick()) == 1
    assert await n.send_due() == 2
    first, urgent = server.messages
    assert first.rcpt_tos == ["inhaber@example.org"]
    assert urgent.rcpt_tos == ["inhaber@example.org", "chef@example.org"]
    assert urgent.subject == "[Imbiss am Boxi] DRINGEND: Drucker: Papier leer"
    assert msgspec.json.decode((await list_rows(store))[1].payload)["phase"] == "escalate"
