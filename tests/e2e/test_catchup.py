"""Missed webhooks are found by the catch-up search of a running service."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.helpers import Service
from wix_printer.fakewix import FakeWix, generate_orders
from wix_printer.fakewix.signing import WebhookSigner


async def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await asyncio.to_thread(predicate):
            return True
        await asyncio.sleep(0.2)
    return False


def stored(db: Path) -> dict[str, tuple[str, int]]:
    with sqlite3.connect(db) as c:
        rows = c.execute("SELECT o.id, o.status, (SELECT COUNT(*) FROM jobs j WHERE j.order_id = o.id)"
                         " FROM orders o").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


async def test_catchup_finds_250_missed_orders_and_survives_429_and_500(
    tmp_path: Path, signer: WebhookSigner
) -> None:
    now = datetime.now(UTC)
    orders = generate_orders(250, now - timedelta(minutes=8), seed=3, spread_seconds=1.0)
    async with FakeWix(signer=signer, orders=orders) as wix:
        svc = Service(tmp_path, signer=signer, wix=(
            f'api_key = "test-key"\nsite_id = "site-1"\nbase_url = "{wix.base_url}"\npoll_interval = 2.0'))
        await asyncio.to_thread(svc.start)
        try:
            want = {o["id"] for o in orders}
            assert await wait_for(lambda: set(stored(svc.db)) == want, 30), len(stored(svc.db))
            rows = stored(svc.db)
            for o in orders:
                status, jobs = rows[o["id"]]
                assert status == o["status"]
                # Approved orders get their receipts once; cancelled-before-print ones none.
                assert jobs == (0 if o["status"] == "CANCELED" else (3 if _delivery(o) else 2))
            searches = len(wix.api_requests("/ecom/v1/orders/search"))
            assert searches >= 3  # 250 orders need three pages

            # Wix has a bad minute: a 429 with Retry-After, then a 500. New orders still arrive.
            wix.fail(status=429, times=1, retry_after=1)
            wix.fail(status=500, times=1)
            late = generate_orders(5, datetime.now(UTC), seed=4, spread_seconds=1.0, canceled_share=0.0)
            for o in late:
                o["id"] = "late-" + o["id"]
            wix.add_orders(late)
            assert await wait_for(lambda: all(o["id"] in stored(svc.db) for o in late), 30)
            st = await asyncio.to_thread(svc.status)
            assert st["orders"]["total"] == 255
            assert st["wix"]["polling"] is True
            assert wix.pending_failures == 0
        finally:
            await asyncio.to_thread(svc.stop)


def _delivery(order: dict[str, Any]) -> bool:
    lg = (order.get("shippingInfo") or {}).get("logistics") or {}
    return bool(lg.get("shippingDestination"))


async def test_poll_mode_prints_within_interval_plus_a_second(tmp_path: Path, signer: WebhookSigner) -> None:
    """A box with no inbound route: the search is its intake."""
    from wix_printer.devprinter import VirtualPrinter

    async with FakeWix(signer=signer) as wix, VirtualPrinter(tmp_path / "paper", render_png=False) as vp:
        svc = Service(tmp_path, signer=signer, printer=(
            f'kind = "network"\nhost = "127.0.0.1"\nport = {vp.port}\n'), wix=(
            f'intake = "poll"\napi_key = "test-key"\nsite_id = "site-1"\nbase_url = "{wix.base_url}"\n'
            "poll_interval = 3.0"))
        await asyncio.to_thread(svc.start)
        try:
            st = await asyncio.to_thread(svc.status)
            assert st["wix"]["intake"] == "poll" and st["wix"]["expected_latency_s"] == 4.0
            await asyncio.sleep(1.0)
            latencies = []
            for i in range(3):
                o = generate_orders(1, datetime.now(UTC), seed=10 + i, pickup_share=0.0, canceled_share=0.0,
                                    not_paid_share=0.0)[0]
                o["id"] = f"poll-{i}"
                o["number"] = str(90000 + i)
                placed = asyncio.get_running_loop().time()
                wix.add_order(o)
                before = len(vp.jobs)
                await vp.wait_for_jobs(before + 1, timeout=10)
                latencies.append(asyncio.get_running_loop().time() - placed)
                await vp.wait_for_jobs(before + 3, timeout=10)
            assert max(latencies) < 3.0 + 1.0, latencies
        finally:
            await asyncio.to_thread(svc.stop)
