"""Deterministic, realistic test orders derived from the reference order.

Amounts are computed with Decimal so every generated order adds up (line totals,
tax included, shipping, total), like a real Wix order; receipts tests can then check
sums instead of trusting fixtures.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from wix_printer.fakewix._sample import sample_order
from wix_printer.wix.model import RESTAURANTS_APP_ID

_CENT = Decimal("0.01")

# (name, gross price, tax rate, modifier groups)
_MENU: list[tuple[str, str, str, list[tuple[str, list[tuple[str, str]]]]]] = [
    ("Döner Teller", "14.00", "0.07", [("Sauce", [("Knoblauchsauce", "0.00"), ("Scharf", "0.00")]),
                                       ("Extras", [("ohne Zwiebeln", "0.00"), ("Extra Feta", "1.50")])]),
    ("Pizza Margherita", "9.50", "0.07", [("Größe", [("Ø 32 cm", "0.00"), ("Ø 40 cm", "3.00")])]),
    ("Pizza Salami", "10.90", "0.07", [("Extras", [("Extra Käse", "1.20"), ("ohne Oliven", "0.00")])]),
    ("Lahmacun mit Salat", "6.50", "0.07", []),
    ("Falafel-Dürüm", "7.80", "0.07", [("Sauce", [("Tahin", "0.00"), ("Scharf 🌶️", "0.00")])]),
    ("Gemischter Salat", "8.20", "0.07", [("Dressing", [("Joghurt", "0.00"), ("Essig & Öl", "0.00")])]),
    ("Tiramisu", "4.90", "0.07", []),
    ("Baklava (3 Stück)", "4.50", "0.07", []),
    ("Club-Mate 0,5 l (inkl. 0,15 € Pfand)", "2.80", "0.19", []),
    ("Ayran 0,25 l", "2.20", "0.19", []),
    ("Chiliöl (gratis)", "0.00", "0.07", []),
]

_PEOPLE = [
    ("Jörg", "Müller-Lüdenscheidt", "+49 30 12345678"),
    ("Ayşe", "Yılmaz", "+49 176 5550123"),
    ("François", "Dubois", "+49 151 2223344"),
    ("Grüße", "Straßmann", None),
    ("Zoë", "Nguyễn", "+49 30 9876543"),
    ("Søren", "Ødegård", "+49 160 1112223"),
]

_STREETS = [
    ("Simon-Dach-Straße", "10245", "Friedrichshain"),
    ("Boxhagener Straße", "10245", "Friedrichshain"),
    ("Warschauer Straße", "10243", "Friedrichshain"),
    ("Kastanienallee", "10435", "Prenzlauer Berg"),
    ("Sonnenallee", "12045", "Neukölln"),
    ("Oranienstraße", "10999", "Kreuzberg"),
]

_NOTES = [
    None,
    "Bitte Besteck beilegen 🍴",
    "Allergie: keine Nüsse!",
    "Bitte klingeln bei „Schröder“ – 3. OG",
    "Schnell bitte, großer Hunger 😋",
]


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    text = f"{amount:.2f}"
    if currency == "EUR":
        return {"amount": text, "formattedAmount": text.replace(".", ",") + " €"}
    return {"amount": text, "formattedAmount": f"{currency} {text}"}


def _iso(when: datetime) -> str:
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _line_items(
    rng: random.Random, currency: str, paid_online: bool
) -> tuple[list[dict[str, Any]], Decimal, dict[str, Decimal]]:
    items: list[dict[str, Any]] = []
    subtotal = Decimal(0)
    tax_by_rate: dict[str, Decimal] = {}
    for idx, (name, price, rate, groups) in enumerate(rng.sample(_MENU, rng.randint(1, 5)), start=1):
        qty = rng.choice((1, 1, 1, 2, 3))
        unit = Decimal(price)
        mod_groups = []
        for gname, mods in groups:
            chosen = rng.sample(mods, rng.randint(1, len(mods)))
            unit += sum((Decimal(p) for _, p in chosen), Decimal(0))
            mod_groups.append({
                "id": f"mg-{idx}-{gname.lower()}",
                "name": {"original": gname},
                "modifiers": [
                    {"id": f"mod-{idx}-{j}", "quantity": 1, "label": {"original": label},
                     "price": _money(Decimal(p), currency)}
                    for j, (label, p) in enumerate(chosen)
                ],
            })
        gross = (unit * qty).quantize(_CENT)
        r = Decimal(rate)
        tax = (gross * r / (1 + r)).quantize(_CENT, ROUND_HALF_UP)
        subtotal += gross
        tax_by_rate[rate] = tax_by_rate.get(rate, Decimal(0)) + tax
        item: dict[str, Any] = {
            "id": f"00000000-0000-0000-0000-{idx:012d}",
            "productName": {"original": name, "translated": name},
            "catalogReference": {"catalogItemId": _uuid(rng), "appId": RESTAURANTS_APP_ID},
            "quantity": qty,
            "price": _money(unit, currency),
            "totalDiscount": _money(Decimal(0), currency),
            "totalPriceAfterTax": _money(gross, currency),
            "taxInfo": {"taxAmount": {"amount": f"{tax:.2f}"}, "taxRate": rate, "taxIncludedInPrice": True},
            "itemType": {"preset": "PHYSICAL"},
            "paymentOption": "FULL_PAYMENT_ONLINE" if paid_online else "FULL_PAYMENT_OFFLINE",
        }
        if mod_groups:
            item["modifierGroups"] = mod_groups
        items.append(item)
    return items, subtotal, tax_by_rate


def generate_orders(
    n: int,
    start: datetime,
    seed: int = 0,
    *,
    spread_seconds: float = 240.0,
    canceled_share: float = 0.1,
    not_paid_share: float = 0.25,
    pickup_share: float = 0.4,
    initialized_share: float = 0.0,
) -> list[dict[str, Any]]:
    """`n` distinct orders from `start` on, in creation order; same seed, same orders.

    `updatedDate` values are strictly increasing in list order; a cancelled order's
    `updatedDate` lies minutes after its creation (as a late cancel does), which can
    interleave it with newer orders. INITIALIZED orders (unpaid online checkouts, which
    the search never returns) only appear when `initialized_share` > 0.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    rng = random.Random(seed)  # noqa: S311 - test data, not security
    orders: list[dict[str, Any]] = []
    created = start
    last_updated = start
    for i in range(n):
        created += timedelta(seconds=rng.uniform(1.0, max(spread_seconds, 1.0)))
        roll = rng.random()
        if roll < canceled_share:
            status = "CANCELED"
        elif roll < canceled_share + initialized_share:
            status = "INITIALIZED"
        else:
            status = "APPROVED"
        currency = "CHF" if rng.random() < 0.1 else "EUR"
        not_paid = status != "INITIALIZED" and rng.random() < not_paid_share
        pickup = rng.random() < pickup_share
        items, subtotal, tax_by_rate = _line_items(rng, currency, paid_online=not not_paid)
        shipping = Decimal(0) if pickup else Decimal("2.50")
        total = subtotal + shipping
        tax_total = sum(tax_by_rate.values(), Decimal(0))

        order = sample_order()
        first, last, phone = rng.choice(_PEOPLE)
        street, postal, region = rng.choice(_STREETS)
        house = str(rng.randint(1, 120))
        contact: dict[str, Any] = {"firstName": first, "lastName": last}
        if phone:
            contact["phone"] = phone
        address = {
            "country": "DE", "subdivision": "DE-BE", "city": "Berlin", "postalCode": postal,
            "streetAddress": {"number": house, "name": street}, "addressLine": f"{street} {house}",
            "geocode": {"latitude": round(52.5 + rng.uniform(-0.03, 0.03), 5),
                        "longitude": round(13.42 + rng.uniform(-0.05, 0.05), 5)},
        }
        wanted = created + timedelta(minutes=rng.choice((30, 35, 45)))
        if rng.random() < 0.05:
            wanted += timedelta(days=1)  # a pre-order for tomorrow
        slot = {"from": _iso(wanted), "to": _iso(wanted + timedelta(minutes=15))}
        if pickup:
            logistics: dict[str, Any] = {
                "pickupDetails": {
                    "address": {"country": "DE", "city": "Berlin", "postalCode": "10245",
                                "addressLine": "Boxhagener Platz 1"},
                    "pickupMethod": "STORE_PICKUP",
                },
                "deliveryTimeSlot": slot,
            }
            order["shippingInfo"] = {"title": "Abholung", "logistics": logistics,
                                     "cost": {"price": {"amount": "0.00"}}}
        else:
            logistics = {"shippingDestination": {"address": address, "contactDetails": contact},
                         "deliveryTimeSlot": slot}
            if rng.random() < 0.5:
                logistics["instructions"] = rng.choice(("Bitte 2× klingeln", "Hinterhaus, 4. OG",
                                                        "Nicht klingeln, Baby schläft 👶"))
            order["shippingInfo"] = {"title": "Lieferung", "region": {"name": region},
                                     "logistics": logistics, "cost": {"price": {"amount": f"{shipping:.2f}"}}}

        updated = created + timedelta(seconds=rng.uniform(1.0, 3.0))
        if status == "CANCELED":
            updated = created + timedelta(minutes=rng.uniform(2.0, 20.0))
        # Keep updatedDate unique and increasing among non-cancelled orders so callers
        # can assert the search's sort order without tie-breaking rules.
        if status != "CANCELED" and updated <= last_updated:
            updated = last_updated + timedelta(milliseconds=1)
        if status != "CANCELED":
            last_updated = updated

        note = rng.choice(_NOTES)
        order.update({
            "id": _uuid(rng),
            "number": str(10000 + i),
            "createdDate": _iso(created),
            "updatedDate": _iso(updated),
            "status": status,
            "paymentStatus": "NOT_PAID" if not_paid or status == "INITIALIZED" else "PAID",
            "currency": currency,
            "lineItems": items,
            "priceSummary": {
                "subtotal": _money(subtotal, currency), "shipping": _money(shipping, currency),
                "tax": _money(tax_total, currency), "discount": _money(Decimal(0), currency),
                "total": _money(total, currency),
            },
            "taxInfo": {"totalTax": {"amount": f"{tax_total:.2f}"}, "taxBreakdown": [
                {"taxName": f"USt. {int(Decimal(r) * 100)} %", "rate": r,
                 "aggregatedTaxAmount": {"amount": f"{t:.2f}"}}
                for r, t in sorted(tax_by_rate.items())]},
            "billingInfo": {"address": address, "contactDetails": contact},
            "recipientInfo": {"contactDetails": contact},
            "balanceSummary": {
                "balance": {"amount": f"{total if not_paid else Decimal(0):.2f}"},
                "paid": {"amount": f"{Decimal(0) if not_paid else total:.2f}"},
            },
        })
        order.pop("appliedDiscounts", None)
        order["buyerInfo"]["email"] = f"kunde{i}@example.de"
        if note is None:
            order.pop("buyerNote", None)
        else:
            order["buyerNote"] = note
        orders.append(order)
    return orders
