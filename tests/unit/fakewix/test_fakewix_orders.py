"""generate_orders: varied, deterministic, internally consistent orders."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from wix_printer.fakewix import generate_orders
from wix_printer.wix.model import order_from_raw

START = datetime(2026, 3, 14, 11, 0, tzinfo=UTC)


def test_same_seed_same_orders_other_seed_other_orders() -> None:
    assert generate_orders(20, START, seed=1) == generate_orders(20, START, seed=1)
    assert generate_orders(20, START, seed=1) != generate_orders(20, START, seed=2)


def test_orders_are_distinct_and_varied() -> None:
    orders = generate_orders(200, START, seed=42)
    assert len({o["id"] for o in orders}) == 200
    assert len({o["number"] for o in orders}) == 200
    statuses = {o["status"] for o in orders}
    assert statuses == {"APPROVED", "CANCELED"}
    assert {o["paymentStatus"] for o in orders} == {"PAID", "NOT_PAID"}
    kinds = {"pickup" if "pickupDetails" in o["shippingInfo"]["logistics"] else "delivery" for o in orders}
    assert kinds == {"pickup", "delivery"}
    assert {o["currency"] for o in orders} >= {"EUR"}
    assert any("buyerNote" not in o for o in orders)


def test_updated_dates_spread_and_increase_for_live_orders() -> None:
    orders = generate_orders(100, START, seed=5)
    created = [datetime.fromisoformat(o["createdDate"]) for o in orders]
    assert created == sorted(created)
    assert created[0] > START
    live = [datetime.fromisoformat(o["updatedDate"]) for o in orders if o["status"] != "CANCELED"]
    assert all(a < b for a, b in itertools.pairwise(live))
    for o in orders:
        assert datetime.fromisoformat(o["updatedDate"]) >= datetime.fromisoformat(o["createdDate"])
        assert o["updatedDate"].endswith("Z")


def test_amounts_add_up_and_decode() -> None:
    for raw in generate_orders(60, START, seed=8):
        order = order_from_raw(raw)
        lines = sum((Decimal(li["totalPriceAfterTax"]["amount"]) for li in raw["lineItems"]), Decimal(0))
        ps = raw["priceSummary"]
        assert Decimal(ps["subtotal"]["amount"]) == lines
        assert Decimal(ps["total"]["amount"]) == lines + Decimal(ps["shipping"]["amount"])
        tax = sum((Decimal(t["aggregatedTaxAmount"]["amount"]) for t in raw["taxInfo"]["taxBreakdown"]),
                  Decimal(0))
        assert Decimal(ps["tax"]["amount"]) == tax
        if raw["paymentStatus"] == "NOT_PAID":
            assert raw["balanceSummary"]["balance"]["amount"] == ps["total"]["amount"]
        assert order.id == raw["id"]
        assert 1 <= len(raw["lineItems"]) <= 5


def test_initialized_only_on_request() -> None:
    orders = generate_orders(100, START, seed=3, initialized_share=0.3)
    assert any(o["status"] == "INITIALIZED" for o in orders)


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_orders(1, datetime(2026, 1, 1), seed=0)
