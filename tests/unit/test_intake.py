"""Intake decisions on a real SQLite file: dedupe, newest state wins, which receipts queue."""

from __future__ import annotations

import copy
import itertools
import json
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.helpers import sample
from wix_printer.config import Config, ReceiptsConfig, WixConfig
from wix_printer.intake import Intake
from wix_printer.printing.render import diff_for_intake
from wix_printer.store import Store, SyncTx
from wix_printer.wix.model import RESTAURANTS_APP_ID


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        self.t += 0.001
        return self.t


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "q.db", clock=Clock())
    await s.open()
    yield s
    await s.close()


def make_intake(store: Store, **cfg: Any) -> Intake:
    config = Config(**cfg)
    return Intake(store, config, diff_for_intake(config))


async def feed(intake: Intake, order: dict[str, Any], *, seq: int | None, event_id: str | None = None,
               slug: str = "approved") -> str:
    res = await intake.ingest(order, event_id=event_id or f"ev-{order['id']}-{seq}-{slug}",
                              event_type=f"wix.ecom.v1.order_{slug}", order_id=order["id"], sequence=seq,
                              source="webhook")
    return res.outcome


def states(order: dict[str, Any], **changes: Any) -> dict[str, Any]:
    o = copy.deepcopy(order)
    o.update(changes)
    return o


async def job_kinds(store: Store, order_id: str) -> list[tuple[str, str]]:
    rows = await store.fetchall("SELECT kind, state FROM jobs WHERE order_id = ? ORDER BY id", (order_id,))
    return [(r[0], r[1]) for r in rows]


async def test_approved_delivery_queues_three_receipts_once(store: Store) -> None:
    intake = make_intake(store)
    order = sample()
    for _ in range(5):
        await feed(intake, order, seq=2, event_id="same-event")
    assert await job_kinds(store, order["id"]) == [("kitchen", "queued"), ("driver", "queued"), ("customer", "queued")]
    counts = await store.counts()
    assert counts["orders"]["total"] == 1
    # The same order state under a different event id (a catch-up search hit) adds nothing.
    await feed(intake, order, seq=None, event_id="search:x")
    assert len(await job_kinds(store, order["id"])) == 3


async def test_pickup_layout_and_copies(store: Store) -> None:
    intake = make_intake(store, receipts=ReceiptsConfig(copies={"kitchen": 2}))
    order = sample("pickup-zurich-cash")
    await feed(intake, order, seq=1)
    assert await job_kinds(store, order["id"]) == [("kitchen", "queued"), ("kitchen", "queued"), ("customer", "queued")]


async def test_initialized_never_prints(store: Store) -> None:
    intake = make_intake(store)
    order = states(sample(), status="INITIALIZED")
    assert await feed(intake, order, seq=1, slug="created") == "stored"
    assert await job_kinds(store, order["id"]) == []
    row = await store.get_order(order["id"])
    assert row is not None and not row.printable


LIFECYCLE = [
    ("created", 1, {"status": "INITIALIZED"}),
    ("approved", 2, {"status": "APPROVED"}),
    ("payment_status_updated", 3, {"status": "APPROVED", "paymentStatus": "PAID"}),
    ("canceled", 4, {"status": "CANCELED"}),
]


@pytest.mark.parametrize("perm", list(itertools.permutations(range(4))))
async def test_shuffled_lifecycle_ends_cancelled_without_printing(store: Store, perm: tuple[int, ...]) -> None:
    """Whatever order the four events arrive in, the order ends CANCELED and nothing
    printable is left in the queue (nothing was printed, so no STORNO slip either)."""
    intake = make_intake(store)
    base = sample()
    for i in perm:
        slug, seq, changes = LIFECYCLE[i]
        await feed(intake, states(base, updatedDate=f"2026-03-14T17:42:1{seq}.000Z", **changes), seq=seq, slug=slug)
    row = await store.get_order(base["id"])
    assert row is not None and row.status == "CANCELED"
    assert all(state == "cancelled" for _, state in await job_kinds(store, base["id"]))


async def test_stale_update_after_newer_state_is_dropped(store: Store) -> None:
    intake = make_intake(store)
    base = sample()
    await feed(intake, states(base, buyerNote="neu"), seq=5)
    assert await feed(intake, states(base, buyerNote="alt"), seq=3) == "stale"
    row = await store.get_order(base["id"])
    assert row is not None and json.loads(row.raw)["buyerNote"] == "neu"


async def _mark_printed(store: Store, order_id: str) -> None:
    """What the worker does: record the printed state, then confirm every job."""
    row = await store.get_order(order_id)
    assert row is not None

    def go(tx: SyncTx) -> None:
        tx.set_printed_raw(order_id, row.raw)
        for job in tx.jobs_for_order(order_id):
            tx.set_state(job.id, "printed", printed_at=tx.now)

    await store.write(go)


async def test_cancel_after_printing_queues_storno(store: Store) -> None:
    intake = make_intake(store)
    base = sample()
    await feed(intake, base, seq=1)
    await _mark_printed(store, base["id"])
    assert await feed(intake, states(base, status="CANCELED"), seq=2, slug="canceled") == "cancelled"
    kinds = await job_kinds(store, base["id"])
    assert kinds[-1] == ("cancel", "queued")
    # CANCELED is final: a late re-approval changes nothing.
    assert await feed(intake, states(base, status="APPROVED"), seq=3) == "stale"


async def test_change_after_printing_queues_change_slip_payment_only_does_not(store: Store) -> None:
    intake = make_intake(store)
    base = sample()
    await feed(intake, base, seq=1)
    await _mark_printed(store, base["id"])
    assert await feed(intake, states(base, paymentStatus="NOT_PAID"), seq=2, slug="updated") == "updated"
    assert [k for k, _ in await job_kinds(store, base["id"])].count("change") == 0
    moved = states(base, buyerNote="Bitte OHNE Besteck")
    assert await feed(intake, moved, seq=3, slug="updated") == "changed"
    change = await store.fetchone("SELECT revision, detail FROM jobs WHERE kind = 'change'")
    assert change[0] == 2
    assert any("OHNE Besteck" in line for line in json.loads(change[1])["changes"])


async def test_app_filter_keeps_filtered_orders_visible(store: Store) -> None:
    intake = make_intake(store, wix=WixConfig(app_id_filter=[RESTAURANTS_APP_ID]))
    shop = sample()
    for li in shop["lineItems"]:
        li.pop("catalogReference", None)
    assert await feed(intake, shop, seq=1) == "filtered"
    assert await job_kinds(store, shop["id"]) == []
    counts = await store.counts()
    assert counts["orders"]["filtered_out"] == 1 and counts["orders"]["total"] == 1


async def test_default_prints_orders_without_catalog_reference(store: Store) -> None:
    intake = make_intake(store)
    shop = sample()
    for li in shop["lineItems"]:
        li.pop("catalogReference", None)
    assert await feed(intake, shop, seq=1) == "queued"


async def test_sdk_style_names_are_understood(store: Store) -> None:
    intake = make_intake(store)
    sdk = sample()
    sdk["_id"] = sdk.pop("id")
    sdk["_createdDate"] = sdk.pop("createdDate")
    addr = sdk["shippingInfo"]["logistics"]["shippingDestination"]["address"]
    addr["addressLine1"] = addr.pop("addressLine")
    await intake.ingest(sdk, event_id="e1", event_type="wix.ecom.v1.order_approved", order_id=sdk["_id"],
                        sequence=1, source="webhook")
    row = await store.get_order(sdk["_id"])
    assert row is not None and row.printable
    stored = json.loads(row.raw)
    assert stored["id"] == sdk["_id"]
    address = stored["shippingInfo"]["logistics"]["shippingDestination"]["address"]
    assert address["addressLine"] == "Simon-Dach-Straße 12"


async def test_random_event_storm_converges(store: Store) -> None:
    """Duplicates and reordering of a 6-step history: the final state is the newest one."""
    intake = make_intake(store)
    base = sample()
    history = [states(base, updatedDate=f"2026-03-14T18:00:0{i}.000Z", buyerNote=f"v{i}") for i in range(6)]
    rng = random.Random(7)
    events = [(i, h) for i, h in enumerate(history)] * 3
    rng.shuffle(events)
    for i, h in events:
        await feed(intake, h, seq=i + 1, event_id=f"ev{i}")
    row = await store.get_order(base["id"])
    assert row is not None and json.loads(row.raw)["buyerNote"] == "v5"
    assert len(await job_kinds(store, base["id"])) == 3
    assert (await store.fetchone("SELECT COUNT(*) FROM events"))[0] == 6


def test_order_struct_round_trips_sample() -> None:
    from wix_printer.wix.model import order_from_raw

    o = order_from_raw(sample())
    assert o.number == "10234" and o.is_delivery
    assert msgspec.json.decode(msgspec.json.encode(o))["lineItems"][0]["productName"]["original"] == "Döner Teller"
