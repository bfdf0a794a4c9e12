"""Outages end without a human: a real service, the virtual printer, the fake Wix."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Service, http, kind_of, sample
from wix_printer.devprinter import VirtualPrinter
from wix_printer.fakewix import FakeWix
from wix_printer.fakewix.signing import WebhookSigner
from wix_printer.printing.worker import DrainLimiter
from wix_printer.store import Store

PRINTER = ('kind = "network"\nhost = "127.0.0.1"\nport = {port}\nconnect_timeout = 0.5\n'
           "status_timeout = 0.5\nconfirm_timeout = 5.0\nlate_confirm_wait = 0.2\n")


def order(i: int, wanted: datetime, created: datetime | None = None) -> dict[str, Any]:
    o = sample()
    o["id"] = f"rec-{i:04d}"
    o["number"] = str(60000 + i)
    o["createdDate"] = o["updatedDate"] = (created or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    slot = o["shippingInfo"]["logistics"]["deliveryTimeSlot"]
    slot["from"] = wanted.isoformat().replace("+00:00", "Z")
    slot["to"] = (wanted + timedelta(minutes=15)).isoformat().replace("+00:00", "Z")
    return o



def number_of(text: str) -> str:
    import re

    found = set(re.findall(r"#(6\d{4})", text))
    assert len(found) == 1, text[:200]
    return found.pop()


def api(svc: Service, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    code, raw = http(method, f"{svc.url}{path}", data, headers={
        "Authorization": "Bearer test-token-0123456789abcdef", "Content-Type": "application/json"})
    return code, (json.loads(raw) if raw else None)


API = '[api]\ntoken = "test-token-0123456789abcdef"\n'


async def test_printer_outage_drains_in_priority_order_at_the_configured_pace(
    tmp_path: Path, signer: WebhookSigner
) -> None:
    port_holder = VirtualPrinter(tmp_path / "paper1", render_png=False)
    await port_holder.start()
    port = port_holder.port
    per_minute = 600  # ten a second: measurable pacing, still a short test
    svc = Service(tmp_path, signer=signer, printer=PRINTER.format(port=port), extra=API + f"""
[recovery]
tickets_per_minute = {per_minute}
min_outage_seconds = 1
""")
    await asyncio.to_thread(svc.start)
    try:
        await port_holder.stop()  # the printer is switched off
        now = datetime.now(UTC)
        wanted = [now + timedelta(minutes=m) for m in range(50)]
        random.Random(4).shuffle(wanted)
        orders = [order(i, wanted[i]) for i in range(50)]
        for o in orders:
            code, _ = await asyncio.to_thread(svc.post, signer.sign_webhook(o, "approved", "object", "site-1", 1,
                                                                             None, 600, "RS256"))
            assert code == 200
        await asyncio.sleep(8)  # off for a while: long past every backoff step
        st = await asyncio.to_thread(svc.status)
        assert st["printer"]["state"] == "unreachable" and st["jobs"]["queued"] == 150

        async with VirtualPrinter(tmp_path / "paper2", port=port, render_png=False) as vp:
            back = time.monotonic()
            await vp.wait_for_received(1, timeout=5)
            first_byte = time.monotonic() - back
            jobs = await vp.wait_for_jobs(150, timeout=60)
            drained = time.monotonic() - back
        assert first_byte < 1.0, f"first ticket started {first_byte:.2f} s after the printer came back"
        # Pace: 150 tickets at 10/s take at least ~14.9 s.
        assert drained >= 149 * 60 / per_minute * 0.95, drained
        seen = [(number_of(j.text), kind_of(j.text)) for j in jobs]
        assert len(set(seen)) == 150, "a receipt came out twice"
        kinds = [k for _, k in seen]
        assert kinds == ["kitchen"] * 50 + ["driver"] * 50 + ["customer"] * 50
        by_due = [o["number"] for o in sorted(orders, key=lambda o: o["shippingInfo"]["logistics"][
            "deliveryTimeSlot"]["from"])]
        assert [n for n, k in seen if k == "kitchen"] == by_due  # nearest wanted time first
        deadline = time.monotonic() + 10
        while True:
            code, run = await asyncio.to_thread(api, svc, "GET", "/api/v1/recovery")
            if (code == 200 and run["state"] == "completed") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert code == 200 and run["trigger"] == "printer_back" and run["state"] == "completed", run
        assert run["report"]["printed"] == 150 and run["report"]["held"] == []
    finally:
        await asyncio.to_thread(svc.stop)


async def test_internet_outage_catches_up_prints_fresh_holds_stale(tmp_path: Path, signer: WebhookSigner) -> None:
    now = datetime.now(UTC)
    fresh = [order(i, now + timedelta(minutes=20 + i), created=now - timedelta(minutes=30)) for i in range(5)]
    # Placed during the outage for dinner two hours ago: too late to cook unasked.
    stale = [order(100 + i, now - timedelta(hours=2), created=now - timedelta(hours=2, minutes=30)) for i in range(3)]
    async with FakeWix(signer=signer, orders=fresh + stale) as wix, \
            VirtualPrinter(tmp_path / "paper", render_png=False) as vp:
        # The box last talked to Wix 3 h ago; Wix is still unreachable when it starts.
        store = Store(tmp_path / "queue.db")
        await store.open()
        await store.write(lambda tx: tx.set_sync("wix_last_sync", (now - timedelta(hours=3, minutes=10)).isoformat()))
        await store.close()
        wix.fail(status=503, times=4)
        svc = Service(tmp_path, signer=signer, printer=PRINTER.format(port=vp.port),
                      extra=API + "[recovery]\nstale_after_minutes = 60\n", wix=(
            f'api_key = "test-key"\nsite_id = "site-1"\nbase_url = "{wix.base_url}"\npoll_interval = 2.0\n'
            "request_attempts = 2\ncatchup_margin = 600\n"))
        await asyncio.to_thread(svc.start)
        try:
            jobs = await vp.wait_for_jobs(15, timeout=60)  # 5 fresh delivery orders x 3 receipts
            await asyncio.sleep(1.0)
            printed = {number_of(j.text) for j in jobs}
            assert printed == {o["number"] for o in fresh}
            assert len(vp.jobs) == 15, "something printed twice or a stale order printed"
            st = await asyncio.to_thread(svc.status)
            assert st["jobs"]["held"] == 9 and st["orders"]["total"] == 8
            assert wix.pending_failures == 0
            deadline = time.monotonic() + 15
            runs: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                code, runs = await asyncio.to_thread(api, svc, "GET", "/api/v1/recovery/history")
                if any(r["trigger"] == "wix_back" and r["state"] == "completed" for r in runs):
                    break
                await asyncio.sleep(0.3)
            run = next(r for r in runs if r["trigger"] == "wix_back")
            assert run["state"] == "completed"
            assert {h["number"] for h in run["report"]["held"]} == {o["number"] for o in stale}
            assert all("min ago" in h["reason"] for h in run["report"]["held"])
            # A human prints one held order and dismisses the rest.
            held_ids = [h["job_id"] for h in run["report"]["held"]]
            code, body = await asyncio.to_thread(api, svc, "POST", "/api/v1/recovery/retry-failed",
                                                 {"job_ids": held_ids[:1]})
            assert code == 200 and body["job_ids"] == held_ids[:1]
            await vp.wait_for_jobs(16, timeout=10)
            code, body = await asyncio.to_thread(api, svc, "POST", "/api/v1/recovery/dismiss-stale", {})
            assert code == 200 and sorted(body["job_ids"]) == sorted(held_ids[1:])
            with sqlite3.connect(svc.db) as c:
                assert c.execute("SELECT COUNT(*) FROM jobs WHERE state = 'held'").fetchone()[0] == 0
        finally:
            await asyncio.to_thread(svc.stop)


async def test_recovery_endpoints_refuse_bad_input(tmp_path: Path, signer: WebhookSigner) -> None:
    async with VirtualPrinter(tmp_path / "paper", render_png=False) as vp:
        svc = Service(tmp_path, signer=signer, printer=PRINTER.format(port=vp.port), extra=API)
        await asyncio.to_thread(svc.start)
        try:
            assert (await asyncio.to_thread(api, svc, "GET", "/api/v1/recovery"))[0] == 404
            code, body = await asyncio.to_thread(api, svc, "POST", "/api/v1/recovery/start", {"trigger": "moon"})
            assert code == 400 and "moon" in json.dumps(body)
            code, body = await asyncio.to_thread(api, svc, "POST", "/api/v1/recovery/start", {"trigger": 5})
            assert code == 400
            code, body = await asyncio.to_thread(api, svc, "POST", "/api/v1/recovery/start", {})
            assert code == 202 and body["run_id"] >= 1
            code, run = await asyncio.to_thread(api, svc, "GET", "/api/v1/recovery")
            assert code == 200 and run["id"] == body["run_id"] and run["trigger"] == "operator"
            code, _ = await asyncio.to_thread(api, svc, "GET", "/api/v1/recovery/history?limit=0")
            assert code == 400
            code, hist = await asyncio.to_thread(api, svc, "GET", "/api/v1/recovery/history?limit=5")
            assert code == 200 and len(hist) >= 1
            code, body = await asyncio.to_thread(api, svc, "POST", "/api/v1/recovery/retry-failed",
                                                 {"job_ids": [424242]})
            assert code == 404 and "424242" in json.dumps(body)
            await asyncio.to_thread(svc.post, signer.sign_webhook(sample(), "approved", "object", "site-1", 1, None,
                                                                  600, "RS256"))
            await vp.wait_for_jobs(3, timeout=20)
            await asyncio.sleep(0.5)
            code, body = await asyncio.to_thread(api, svc, "POST", "/api/v1/recovery/retry-failed", {"job_ids": [1]})
            assert code == 409 and "printed" in json.dumps(body)
            code, body = await asyncio.to_thread(api, svc, "POST", "/api/v1/recovery/dismiss-stale", {"job_ids": [1]})
            assert code == 409
            code, body = await asyncio.to_thread(api, svc, "POST", "/api/v1/recovery/retry-failed", {})
            assert code == 200 and body["job_ids"] == []
            # Without the token: no access (the status page's default-deny).
            code, _ = http("POST", f"{svc.url}/api/v1/recovery/start", b"{}",
                           headers={"Content-Type": "application/json"})
            assert code in (401, 403)
        finally:
            await asyncio.to_thread(svc.stop)


async def test_drain_limiter_paces_and_pauses() -> None:
    t = [0.0]
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:  # records instead of waiting: the arithmetic is the point
        slept.append(s)
        t[0] += s

    lim = DrainLimiter(per_minute=120, batch_size=3, batch_pause=5.0, clock=lambda: t[0])
    import wix_printer.printing.worker as w

    real = w.asyncio.sleep
    w.asyncio.sleep = fake_sleep  # type: ignore[assignment]
    try:
        for _ in range(7):
            await lim.acquire()
    finally:
        w.asyncio.sleep = real  # type: ignore[assignment]
    # Seven tickets 0.5 s apart (six gaps), and a 5 s pause after the 3rd and the 6th.
    # A pause also spends the next gap, so only 4 gaps remain to wait for.
    assert slept.count(5.0) == 2
    assert t[0] == pytest.approx(2 * 5.0 + 4 * 0.5, abs=0.01)
