"""Signed webhook -> running service -> virtual printer, and the fault matrix.

The service is a real `wix-printer serve` process; the printer is the in-process
VirtualPrinter on a loopback port, so faults can be switched at exact moments.
"""

from __future__ import annotations

import asyncio
import copy
import random
import re
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Service, kind_of, sample
from wix_printer.devprinter import VirtualPrinter
from wix_printer.fakewix.signing import WebhookSigner

WANT = ["10234", "Döner Teller", "ohne Zwiebeln", "Extra Feta", "Pizza Margherita", "Größe", "Club-Mate",
        "Chiliöl", "Simon-Dach-Straße", "Hinterhaus", "Müller-Lüdenscheidt", "+49 30 12345678", "Besteck",
        "41,65", "€"]
REPRINT = "NACHDRUCK"



def order_numbers(text: str) -> set[str]:
    return set(re.findall(r"#(\d{5})", text))


async def post(svc: Service, token: str) -> int:
    code, _ = await asyncio.to_thread(svc.post, token)
    return code


async def queue_settled(svc: Service, timeout: float) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        st = await asyncio.to_thread(svc.status)
        busy = st["jobs"]["queued"] + st["jobs"]["sending"] + st["jobs"]["uncertain"]
        if busy == 0 or asyncio.get_running_loop().time() > deadline:
            return st
        await asyncio.sleep(0.1)


async def test_sample_order_prints_three_receipts(tmp_path: Path, service_factory: Any, signer: WebhookSigner) -> None:
    async with VirtualPrinter(tmp_path / "paper") as vp:
        svc: Service = await asyncio.to_thread(service_factory, printer_port=vp.port)
        assert await post(svc, signer.sign_webhook(sample(), "approved", "object", "site-1", 1, None, 600,
                                                   "RS256")) == 200
        jobs = await vp.wait_for_jobs(3, timeout=20)
        text = "\n".join(j.text for j in jobs)
        assert [w for w in WANT if w not in text] == []
        assert "\ufffd" not in text
        assert sorted(kind_of(j.text) for j in jobs) == ["customer", "driver", "kitchen"]
        st = await queue_settled(svc, 10)
        assert st["jobs"]["printed"] == 3
        # Each receipt's file set is there for a person to look at.
        for j in jobs:
            assert j.bin_path and j.bin_path.exists() and j.png_path and j.png_path.exists()
        # ESC @ and ESC t 16 (WPC1252) open every job: the code page is never left to chance.
        for j in jobs:
            assert j.raw.count(b"\x1b@\x1bt\x10") == 1
            assert j.raw.index(b"\x1b@\x1bt\x10") < j.raw.index(b"#")


async def test_cancel_after_print_gives_storno_and_change_gives_change_slip(
    tmp_path: Path, service_factory: Any, signer: WebhookSigner
) -> None:
    async with VirtualPrinter(tmp_path / "paper") as vp:
        svc: Service = await asyncio.to_thread(service_factory, printer_port=vp.port)
        order = sample()
        await post(svc, signer.sign_webhook(order, "approved", "object", "site-1", 1, None, 600, "RS256"))
        await vp.wait_for_jobs(3, timeout=20)
        await queue_settled(svc, 10)
        changed = copy.deepcopy(order)
        changed["buyerNote"] = "Bitte KEIN Besteck"
        changed["updatedDate"] = "2026-03-14T17:50:00.000Z"
        await post(svc, signer.sign_webhook(changed, "updated", "updated", "site-1", 2, None, 600, "RS256"))
        jobs = await vp.wait_for_jobs(4, timeout=20)
        assert "KEIN Besteck" in jobs[3].text and "ÄNDERUNG" in jobs[3].text
        paid = copy.deepcopy(changed)
        paid["paymentStatus"] = "PARTIALLY_REFUNDED"
        paid["updatedDate"] = "2026-03-14T17:51:00.000Z"
        await post(svc, signer.sign_webhook(paid, "payment_status_updated", "updated", "site-1", 3, None, 600,
                                            "RS256"))
        cancelled = copy.deepcopy(paid)
        cancelled["status"] = "CANCELED"
        cancelled["updatedDate"] = "2026-03-14T17:55:00.000Z"
        await post(svc, signer.sign_webhook(cancelled, "canceled", "action", "site-1", 4, None, 600, "RS256"))
        jobs = await vp.wait_for_jobs(5, timeout=20)
        assert "STORNO" in jobs[4].text and "10234" in jobs[4].text
        await asyncio.sleep(0.5)
        assert len(vp.jobs) == 5  # the payment-only update printed nothing


async def test_what_arrives_while_a_ticket_prints_is_printed_by_priority_and_as_updated(
    tmp_path: Path, service_factory: Any, signer: WebhookSigner
) -> None:
    """The worker reads the next job while a ticket prints. A new order's kitchen ticket
    must still come before the queued driver slip, and an order updated meanwhile must
    print as updated, not as it was read."""
    async with VirtualPrinter(tmp_path / "paper", render_png=False) as vp:
        svc: Service = await asyncio.to_thread(service_factory, printer_port=vp.port)
        vp.set_fault("slow", 2.0)  # seconds per KiB: the first kitchen ticket takes seconds
        first = sample()
        assert await post(svc, signer.sign_webhook(first, "approved", "object", "site-1", 1, None, 600,
                                                   "RS256")) == 200
        await vp.wait_for_received(600, timeout=20)
        assert vp.jobs == []  # the kitchen ticket of the first order is on its way out
        second = numbered(1)
        assert await post(svc, signer.sign_webhook(second, "approved", "object", "site-1", 1, None, 600,
                                                   "RS256")) == 200
        updated = copy.deepcopy(first)
        updated["buyerNote"] = "Bitte KEIN Besteck"
        updated["updatedDate"] = "2026-03-14T17:50:00.000Z"
        assert await post(svc, signer.sign_webhook(updated, "updated", "updated", "site-1", 2, None, 600,
                                                   "RS256")) == 200
        vp.clear_fault("slow")
        jobs = await vp.wait_for_jobs(7, timeout=30)
        got = [(kind_of(j.text), order_numbers(j.text)) for j in jobs]
        assert got == [
            ("kitchen", {"10234"}),
            ("kitchen", {"10234"}),  # the change slip (priority 0) for what the kitchen has
            ("kitchen", {"50001"}),
            ("driver", {"10234"}),
            ("driver", {"50001"}),
            ("customer", {"10234"}),
            ("customer", {"50001"}),
        ], got
        assert "ÄNDERUNG" in jobs[1].text and "KEIN Besteck" in jobs[1].text
        assert "KEIN Besteck" in jobs[3].text and "8 Stücke" not in jobs[3].text
        assert "8 Stücke" in jobs[0].text


async def test_an_update_that_needs_no_change_slip_still_reaches_the_next_ticket(
    tmp_path: Path, service_factory: Any, signer: WebhookSigner
) -> None:
    """Payment only changed while the kitchen ticket printed: no change slip, but the
    driver, who collects the money, gets a slip from the order as it is now."""
    async with VirtualPrinter(tmp_path / "paper", render_png=False) as vp:
        svc: Service = await asyncio.to_thread(service_factory, printer_port=vp.port)
        vp.set_fault("slow", 2.0)
        order = sample()
        assert await post(svc, signer.sign_webhook(order, "approved", "object", "site-1", 1, None, 600,
                                                   "RS256")) == 200
        await vp.wait_for_received(600, timeout=20)
        assert vp.jobs == []
        unpaid = copy.deepcopy(order)
        unpaid["paymentStatus"] = "NOT_PAID"
        unpaid["updatedDate"] = "2026-03-14T17:50:00.000Z"
        assert await post(svc, signer.sign_webhook(unpaid, "payment_status_updated", "updated", "site-1", 2,
                                                   None, 600, "RS256")) == 200
        vp.clear_fault("slow")
        jobs = await vp.wait_for_jobs(3, timeout=30)
        assert [kind_of(j.text) for j in jobs] == ["kitchen", "driver", "customer"]
        assert "NICHT BEZAHLT" in jobs[1].text, jobs[1].text
        await asyncio.sleep(0.5)
        assert len(vp.jobs) == 3


def numbered(i: int) -> dict[str, Any]:
    o = sample()
    o["id"] = f"fm-{i:05d}"
    o["number"] = str(50000 + i)
    return o


FAULTS = ["offline", "paper-end", "cover-open", "cut-after", "silent"]


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS)
async def test_fault_matrix(tmp_path: Path, service_factory: Any, signer: WebhookSigner, fault: str) -> None:
    """20 faults at random moments in a stream of orders: every receipt comes out, a
    receipt that comes out twice is marked as a possible duplicate, nothing is stuck."""
    rng = random.Random(f"{fault}-2026")
    n_orders = 15
    tokens = [signer.sign_webhook(numbered(i), "approved", "object", "site-1", 1, None, 600, "RS256")
              for i in range(n_orders)]
    async with VirtualPrinter(tmp_path / "paper", render_png=False) as vp:
        svc: Service = await asyncio.to_thread(
            service_factory,
            printer=(f'kind = "network"\nhost = "127.0.0.1"\nport = {vp.port}\nconnect_timeout = 0.5\n'
                     "status_timeout = 0.5\nconfirm_timeout = 3.0\nlate_confirm_wait = 0.2\n"),
        )

        async def sender() -> None:
            for t in tokens:
                assert await post(svc, t) == 200
                await asyncio.sleep(rng.uniform(0.05, 0.3))

        async def injector() -> None:
            for _ in range(20):
                await asyncio.sleep(rng.uniform(0.05, 0.4))
                if fault == "cut-after":
                    vp.set_fault("cut-after", rng.randint(1, 1500))
                    await asyncio.sleep(rng.uniform(0.1, 0.4))
                    vp.clear_fault("cut-after")
                else:
                    vp.set_fault(fault)
                    await asyncio.sleep(rng.uniform(0.1, 0.8))
                    vp.clear_fault(fault)

        await asyncio.gather(sender(), injector())
        st = await queue_settled(svc, 60)
        await asyncio.sleep(0.5)
        assert st["jobs"]["queued"] == st["jobs"]["sending"] == st["jobs"]["uncertain"] == 0, st
        assert st["jobs"]["failed"] == 0, st
        assert st["jobs"]["printed"] == 3 * n_orders
        seen: Counter[tuple[str, str]] = Counter()
        marked: Counter[tuple[str, str]] = Counter()
        fragments = 0
        for job in vp.jobs:
            numbers = order_numbers(job.text)
            if "Druck unterbrochen" in job.text:
                # The cut-off remainder of an interrupted job, at most one order's worth.
                assert len(numbers) <= 1, job.text
                fragments += 1
                continue
            assert len(numbers) == 1, f"a receipt mixes orders or is a fragment: {job.text[:300]!r}"
            key = (numbers.pop(), kind_of(job.text))
            seen[key] += 1
            marked[key] += REPRINT in job.text
        expected = {(str(50000 + i), k) for i in range(n_orders) for k in ("kitchen", "driver", "customer")}
        assert set(seen) == expected
        if fault in ("offline", "paper-end", "cover-open"):
            # The link stayed up: the printer held the data, nothing was resent or cut off.
            assert fragments == 0 and sum(seen.values()) == len(expected)
        for key, count in seen.items():
            # Every copy beyond the first is marked; an unmarked pair would be a silent duplicate.
            assert count - marked[key] <= 1, (key, count, marked[key])
        with sqlite3.connect(svc.db) as c:
            states = dict(c.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
        assert states == {"printed": 3 * n_orders}
