"""diff_orders: what the kitchen must hear about, and silence for payment/fulfilment updates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wix_printer.receipts import diff_orders
from wix_printer.wix.model import Order

Edit = Callable[[Callable[[dict[str, Any]], None]], Order]


def test_payment_and_fulfilment_only_changes_are_silent(order: Order, edit: Edit) -> None:
    def fn(d: dict[str, Any]) -> None:
        d["paymentStatus"] = "NOT_PAID"
        d["fulfillmentStatus"] = "FULFILLED"
        d["updatedDate"] = "2026-03-14T18:00:00Z"
        d["balanceSummary"] = {"balance": {"amount": "41.65"}}

    assert diff_orders(order, edit(fn), "de") == []
    assert diff_orders(order, order, "en") == []


def test_item_added_removed_quantity(order: Order, edit: Edit) -> None:
    def fn(d: dict[str, Any]) -> None:
        d["lineItems"][1]["quantity"] = 3
        removed = d["lineItems"].pop(2)
        d["lineItems"].append(dict(removed, id="new-1", productName={"original": "Baklava"}, quantity=2))

    changes = diff_orders(order, edit(fn), "de")
    assert changes == [
        "MENGE: Pizza Margherita: 2 -> 3",
        "NEU: 2x Baklava",
        "ENTFERNT: 1x Tiramisu",
    ]


def test_modifiers_and_special_requests(order: Order, edit: Edit) -> None:
    def fn(d: dict[str, Any]) -> None:
        mods = d["lineItems"][0]["modifierGroups"][1]["modifiers"]
        mods.pop(0)  # no longer "ohne Zwiebeln"
        mods.append({"label": {"original": "Extra Halloumi"}, "quantity": 2, "price": {"amount": "2"}})
        d["lineItems"][0]["catalogReference"]["options"]["specialRequests"] = "mild"
        d["lineItems"][1]["descriptionLines"][0]["plainText"] = {"original": "Ø 26 cm"}

    changes = diff_orders(order, edit(fn), "en")
    assert "Döner Teller: + Extras: 2x Extra Halloumi" in changes
    assert "Döner Teller: NO Extras: ohne Zwiebeln" in changes
    assert "Döner Teller: SPECIAL REQUEST: mild" in changes
    assert "Pizza Margherita: + Größe: Ø 26 cm" in changes
    assert "Pizza Margherita: NO Größe: Ø 32 cm" in changes
    assert len(changes) == 5


def test_address_time_note(order: Order, edit: Edit) -> None:
    def fn(d: dict[str, Any]) -> None:
        lg = d["shippingInfo"]["logistics"]
        lg["shippingDestination"]["address"]["addressLine"] = "Wühlischstraße 5"
        lg["deliveryTimeSlot"] = {"from": "2026-03-14T18:45:00Z", "to": "2026-03-14T19:00:00Z"}
        lg["instructions"] = "Hinterhof"
        d["buyerNote"] = ""

    changes = diff_orders(order, edit(fn), "de")
    assert changes == [
        "ADRESSE: Wühlischstraße 5, Hinterhaus, 3. OG, bei Schröder, 10245 Berlin",
        "HINWEIS: Hinterhof",
        "ZEIT: Sa 14.03.2026 19:25–19:40 -> Sa 14.03.2026 19:45–20:00",
        "KUNDENNOTIZ entfernt",
    ]


def test_time_in_given_zone(order: Order, edit: Edit) -> None:
    new = edit(
        lambda d: d["shippingInfo"]["logistics"].update(deliveryTimeSlot={"from": "2026-03-14T19:00:00Z"})
    )
    assert diff_orders(order, new, "en", tz="Europe/London") == [
        "TIME: Sat 14/03/2026 18:25–18:40 -> Sat 14/03/2026 19:00"
    ]


def test_delivery_to_pickup(order: Order, edit: Edit) -> None:
    def fn(d: dict[str, Any]) -> None:
        d["shippingInfo"]["logistics"].pop("shippingDestination")
        d["shippingInfo"]["logistics"]["pickupDetails"] = {"pickupMethod": "STORE_PICKUP"}

    assert diff_orders(order, edit(fn), "de") == ["JETZT ABHOLUNG (statt Lieferung)"]


def test_items_without_ids_match_by_catalog_reference(edit: Edit) -> None:
    def strip(d: dict[str, Any]) -> None:
        for li in d["lineItems"]:
            li.pop("id")

    old = edit(strip)

    def fn(d: dict[str, Any]) -> None:
        strip(d)
        d["lineItems"][0]["quantity"] = 2

    assert diff_orders(old, edit(fn), "de") == ["MENGE: Döner Teller: 1 -> 2"]
