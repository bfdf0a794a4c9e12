"""No order that decodes may make rendering raise, whatever is missing or odd in it."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wix_printer.config import ReceiptsConfig
from wix_printer.receipts import DOC_KINDS, build_receipt, diff_orders, to_escpos, to_text
from wix_printer.wix.model import order_from_raw

from .conftest import make_ctx

text = st.text(max_size=60)
nasty = st.one_of(text, st.sampled_from(["", " ", "\x1b@", "🌶️", "Mu\u0308ller", "X" * 500, "\n\n"]))
money = st.fixed_dictionaries(
    {
        "amount": st.one_of(
            st.sampled_from(["0", "1.5", "-3", "abc", "", "1e30", "NaN", "99999999.99"]),
            st.decimals(allow_nan=False, places=2).map(str),
        )
    },
    optional={"formattedAmount": text},
)
when = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "2026-03-29T00:45:00Z",
            "bogus",
            "2026-10-25T01:30:00+00:00",
            "2026-03-14T18:25:00.000Z",
            "2026-01-01",
        ]
    ),
)


def opt(d: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=d)


name = opt({"original": nasty, "translated": st.one_of(st.none(), nasty)})
contact = opt({"firstName": nasty, "lastName": nasty, "phone": nasty, "company": nasty})
address = opt(
    {
        "addressLine": nasty,
        "addressLine2": nasty,
        "postalCode": nasty,
        "city": nasty,
        "country": nasty,
        "streetAddress": opt({"name": nasty, "number": nasty, "apt": nasty}),
        "geocode": opt({"latitude": st.floats(), "longitude": st.floats()}),
    }
)
modifier = opt({"label": name, "quantity": st.integers(-2, 100000), "price": money})
line_item = opt(
    {
        "id": st.sampled_from(["a", "b", "c"]),
        "productName": name,
        "quantity": st.integers(-1, 100000),
        "catalogReference": opt({"options": opt({"specialRequests": nasty})}),
        "modifierGroups": st.lists(
            opt({"name": name, "modifiers": st.lists(modifier, max_size=3)}), max_size=3
        ),
        "descriptionLines": st.lists(opt({"name": name, "plainText": name}), max_size=2),
        "price": money,
        "totalDiscount": money,
        "totalPriceAfterTax": money,
    }
)
logistics = opt(
    {
        "shippingDestination": opt({"address": address, "contactDetails": contact}),
        "pickupDetails": opt({"address": address}),
        "instructions": nasty,
        "deliveryTime": when,
        "deliveryTimeSlot": opt({"from": when, "to": when}),
    }
)
orders = st.fixed_dictionaries(
    {"id": st.text(max_size=40)},
    optional={
        "number": nasty,
        "createdDate": when,
        "paymentStatus": st.sampled_from(["PAID", "NOT_PAID", "PARTIALLY_PAID", "FULLY_REFUNDED", "", "X"]),
        "currency": st.sampled_from(["EUR", "CHF", "JPY", "BHD", "XYZ", "", "eur", "€€€"]),
        "taxIncludedInPrices": st.booleans(),
        "buyerNote": nasty,
        "lineItems": st.lists(line_item, max_size=6),
        "priceSummary": opt({k: money for k in ("subtotal", "shipping", "tax", "discount", "total")}),
        "taxInfo": opt(
            {
                "taxBreakdown": st.lists(
                    opt({"taxName": nasty, "rate": nasty, "aggregatedTaxAmount": money}), max_size=3
                )
            }
        ),
        "appliedDiscounts": st.lists(opt({"coupon": opt({"code": nasty, "name": nasty})}), max_size=2),
        "billingInfo": opt({"contactDetails": contact, "address": address}),
        "recipientInfo": opt({"contactDetails": contact}),
        "shippingInfo": opt({"title": nasty, "logistics": logistics}),
        "balanceSummary": opt({"balance": money}),
    },
)


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    orders,
    orders,
    st.sampled_from([32, 42, 48, 64]),
    st.sampled_from(["cp1252", "cp858"]),
    st.sampled_from(["de", "en"]),
    st.booleans(),
)
def test_rendering_never_raises(
    raw: dict[str, Any], other: dict[str, Any], columns: int, codepage: str, lang: str, prices: bool
) -> None:
    try:
        order = order_from_raw(raw)
        old = order_from_raw(other)
    except msgspec.ValidationError:
        return
    ctx = make_ctx(
        columns=columns,
        codepage=codepage,
        now=datetime(2026, 3, 28, tzinfo=UTC),
        receipts=ReceiptsConfig(language=lang, show_prices=prices),
    )  # type: ignore[arg-type]
    changes = diff_orders(old, order, lang)
    for kind in DOC_KINDS:
        doc = build_receipt(kind, order, ctx, banner="KOPIE", changes=changes)
        job = to_escpos(doc, codepage, columns)  # type: ignore[arg-type]
        assert job.startswith(b"\x1b@\x1bt")
        assert all(len(line) <= columns for line in to_text(doc, columns).splitlines())
