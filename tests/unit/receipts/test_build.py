"""Receipt content: what each kind must (and must not) show, for real-world edge cases."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from wix_printer.config import ReceiptsConfig, RestaurantConfig
from wix_printer.receipts import (
    BANNER_COPY,
    BANNER_REPRINT_UNCERTAIN,
    QRCode,
    RenderContext,
    Text,
    build_receipt,
    render,
    to_text,
)
from wix_printer.wix.model import Order

from .conftest import make_ctx

Edit = Callable[[Callable[[dict[str, Any]], None]], Order]

MONEY_RE = re.compile(r"\d+,\d\d")


def text(kind: str, order: Order, ctx: RenderContext, **kw: Any) -> str:
    return to_text(build_receipt(kind, order, ctx, **kw), ctx.columns)  # type: ignore[arg-type]


def _slot(data: dict[str, Any], start: str, end: str) -> None:
    data["shippingInfo"]["logistics"]["deliveryTimeSlot"] = {"from": start, "to": end}


# ---- kitchen -------------------------------------------------------------------------


def test_kitchen_has_no_prices_but_every_modifier(order: Order, ctx: RenderContext) -> None:
    out = text("kitchen", order, ctx)
    assert out.count("€") == 1  # only the Club-Mate name
    assert MONEY_RE.findall(out) == ["0,15"]  # ditto
    for must in (
        "ohne Zwiebeln",
        "Knoblauchsauce",
        "Extra Feta",
        "Größe: Ø 32 cm",
        "Extra scharf bitte",
        "Bitte Besteck beilegen",
    ):
        assert must in out


def test_kitchen_order_number_huge_and_items_large(order: Order, ctx: RenderContext) -> None:
    doc = build_receipt("kitchen", order, ctx)
    number = next(b for b in doc.blocks if isinstance(b, Text) and b.text == "#10234")
    assert (number.width, number.height) == (4, 4)
    item = next(b for b in doc.blocks if isinstance(b, Text) and b.text == "2x Pizza Margherita")
    assert (item.width, item.height, item.bold) == (2, 2, True)
    normal = make_ctx(receipts=ReceiptsConfig(kitchen_item_size="normal"))
    item = next(
        b
        for b in build_receipt("kitchen", order, normal).blocks
        if isinstance(b, Text) and b.text == "2x Pizza Margherita"
    )
    assert (item.width, item.height) == (1, 1)


def test_special_requests_and_note_highlighted(order: Order, ctx: RenderContext) -> None:
    doc = build_receipt("kitchen", order, ctx)
    inverted = [b.text for b in doc.blocks if isinstance(b, Text) and b.invert]
    assert any("Extra scharf bitte" in t for t in inverted)
    assert any("Bitte Besteck beilegen" in t for t in inverted)


def test_delivery_vs_pickup_banner(order: Order, pickup_order: Order, ctx: RenderContext) -> None:
    delivery = text("kitchen", order, ctx)
    pickup = text("kitchen", pickup_order, ctx)
    assert "LIEFERUNG" in delivery
    assert "ABHOLUNG" not in delivery
    assert "ABHOLUNG" in pickup
    assert "LIEFERUNG" not in pickup
    en = make_ctx(receipts=ReceiptsConfig(language="en"))
    assert "PICKUP" in text("kitchen", pickup_order, en)
    assert "DELIVERY" in text("kitchen", order, en)


def test_preorder_threshold(edit: Edit) -> None:
    # Slot starts 18:25Z; now 16:54Z is 91 minutes before: pre-order. 16:56Z (89 min): not.
    order = edit(lambda d: None)
    far = make_ctx(now=datetime(2026, 3, 14, 16, 54, tzinfo=UTC))
    near = make_ctx(now=datetime(2026, 3, 14, 16, 56, tzinfo=UTC))
    assert "VORBESTELLUNG" in text("kitchen", order, far)
    assert "VORBESTELLUNG" not in text("kitchen", order, near)
    custom = make_ctx(
        now=datetime(2026, 3, 14, 18, 0, tzinfo=UTC),
        receipts=ReceiptsConfig(preorder_after_minutes=10, language="en"),
    )
    assert "PRE-ORDER" in text("kitchen", order, custom)


def test_preorder_from_delivery_time_without_slot(edit: Edit) -> None:
    def fn(d: dict[str, Any]) -> None:
        lg = d["shippingInfo"]["logistics"]
        del lg["deliveryTimeSlot"]
        lg["deliveryTime"] = "2026-03-15T11:00:00Z"

    out = text("kitchen", edit(fn), make_ctx())
    assert "VORBESTELLUNG" in out
    assert "So 15.03.2026 12:00" in out  # CET in March before the switch


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # Last Sunday of March 2026: 02:00 CET -> 03:00 CEST.
        ("2026-03-29T00:45:00Z", "2026-03-29T01:15:00Z", "So 29.03.2026 01:45–03:15"),
        ("2026-03-28T17:00:00Z", "2026-03-28T17:30:00Z", "Sa 28.03.2026 18:00–18:30"),
        ("2026-03-29T17:00:00Z", "2026-03-29T17:30:00Z", "So 29.03.2026 19:00–19:30"),
        # Last Sunday of October 2026: 03:00 CEST -> 02:00 CET; 02:30 happens twice.
        ("2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "So 25.10.2026 02:30–02:30"),
        ("2026-10-25T17:00:00Z", "2026-10-25T17:30:00Z", "So 25.10.2026 18:00–18:30"),
    ],
)
def test_dst_local_times(edit: Edit, start: str, end: str, expected: str) -> None:
    order = edit(lambda d: _slot(d, start, end))
    out = text("kitchen", order, make_ctx(now=datetime(2026, 3, 1, tzinfo=UTC)))
    assert expected in out


def test_slot_crossing_midnight_shows_both_dates(edit: Edit) -> None:
    order = edit(lambda d: _slot(d, "2026-07-01T21:45:00Z", "2026-07-01T22:15:00Z"))
    assert "Mi 01.07.2026 23:45 – Do 02.07.2026 00:15" in text("driver", order, make_ctx(columns=64))


def test_time_zone_from_config(order: Order) -> None:
    ny = make_ctx(restaurant=RestaurantConfig(timezone="America/New_York"))
    assert "14:25–14:40" in text("kitchen", order, ny)  # EDT since 8 March 2026


# ---- driver --------------------------------------------------------------------------


def test_driver_paid(order: Order, ctx: RenderContext) -> None:
    out = text("driver", order, ctx)
    assert "bezahlt" in out
    assert "NICHT BEZAHLT" not in out
    assert "kassieren" not in out
    for must in (
        "Jörg Müller-Lüdenscheidt",
        "+49 30 12345678",
        "Simon-Dach-Straße 12",
        "Hinterhaus, 3. OG, bei Schröder",
        "10245 Berlin",
        "Bitte 2× klingeln",
    ):
        assert must in out


@pytest.mark.parametrize(
    ("lang", "expected"), [("de", "NICHT BEZAHLT – 41,65 € kassieren"), ("en", "NOT PAID – collect €41.65")]
)
def test_driver_not_paid_uses_total_without_balance(edit: Edit, lang: str, expected: str) -> None:
    def fn(d: dict[str, Any]) -> None:
        d["paymentStatus"] = "NOT_PAID"
        del d["balanceSummary"]

    ctx = make_ctx(receipts=ReceiptsConfig(language=lang))  # type: ignore[arg-type]
    assert expected in text("driver", edit(fn), ctx)


def test_driver_partially_paid_collects_balance(edit: Edit, ctx: RenderContext) -> None:
    def fn(d: dict[str, Any]) -> None:
        d["paymentStatus"] = "PARTIALLY_PAID"
        d["balanceSummary"] = {"balance": {"amount": "11.65"}, "paid": {"amount": "30.00"}}

    assert "NICHT BEZAHLT – 11,65 € kassieren" in text("driver", edit(fn), ctx)


def test_driver_qr_uses_geocode(order: Order, ctx: RenderContext) -> None:
    qr = next(b for b in build_receipt("driver", order, ctx).blocks if isinstance(b, QRCode))
    assert qr.data == "https://www.google.com/maps/dir/?api=1&destination=52.510600,13.456700"


def test_driver_qr_falls_back_to_encoded_address(edit: Edit, ctx: RenderContext) -> None:
    def fn(d: dict[str, Any]) -> None:
        del d["shippingInfo"]["logistics"]["shippingDestination"]["address"]["geocode"]

    qr = next(b for b in build_receipt("driver", edit(fn), ctx).blocks if isinstance(b, QRCode))
    assert qr.data.isascii()
    assert " " not in qr.data
    query = parse_qs(urlsplit(qr.data).query)
    assert query == {"api": ["1"], "destination": ["Simon-Dach-Straße 12, 10245 Berlin, DE"]}


def test_driver_contact_falls_back_per_field(edit: Edit, ctx: RenderContext) -> None:
    def fn(d: dict[str, Any]) -> None:
        d["shippingInfo"]["logistics"]["shippingDestination"]["contactDetails"] = {"firstName": "Kim"}
        d["recipientInfo"] = {"contactDetails": {"lastName": "X"}}
        d["billingInfo"]["contactDetails"]["phone"] = "+49 171 0000000"

    out = text("driver", edit(fn), ctx)
    assert "Kim\n" in out
    assert "Tel. +49 171 0000000" in out


def test_driver_for_pickup_says_so(pickup_order: Order, ctx: RenderContext) -> None:
    out = text("driver", pickup_order, ctx)
    assert "ABHOLUNG" in out
    assert "Keine Lieferadresse" in out
    assert "[QR:" not in out
    assert "NICHT BEZAHLT – 33,00 CHF kassieren" in out


# ---- customer ------------------------------------------------------------------------


def test_customer_prices_and_totals(order: Order, ctx: RenderContext) -> None:
    lines = text("customer", order, ctx).splitlines()

    def line(start: str) -> str:
        return next(x for x in lines if x.startswith(start))

    assert line("2x Pizza Margherita").split()[-4:] == ["9,50", "€", "19,00", "€"]
    assert line("Zwischensumme").endswith("43,50 €")
    assert line("Lieferkosten").endswith("2,50 €")
    assert line("Rabatt ").endswith("-4,35 €")
    assert line("GESAMT").endswith("41,65 €")
    assert line("enth. USt. 7 %").endswith("2,39 €")
    assert line("enth. USt. 19 %").endswith("0,80 €")
    assert line("Gutschein:") == "Gutschein: WILLKOMMEN10 (10 % Willkommensrabatt)"
    assert "Extras: Extra Feta (+1,50 €)" in lines[lines.index(line("1x Döner")) + 3]
    assert "   Extras: ohne Zwiebeln" in lines  # zero price: listed, no "+0,00"
    assert "   Rabatt -1,40 €" in lines
    # Every price ends in the same column.
    priced = [x for x in lines if x.endswith(" €") and x.startswith(("1x", "2x", "GESAMT", "Zwischen"))]
    assert len(priced) >= 6
    assert {len(x) for x in priced} == {48}
    assert "Imbiss am Boxi" in lines[0]
    assert "Danke für Ihre Bestellung!" in "\n".join(lines[:6])
    assert lines[-1].strip() == "www.imbiss.example"


def test_customer_show_prices_false(order: Order) -> None:
    ctx = make_ctx(receipts=ReceiptsConfig(show_prices=False))
    out = text("customer", order, ctx)
    assert out.count("€") == 1  # only the Club-Mate name
    assert "Zwischensumme" not in out
    assert "GESAMT" not in out
    assert "2x Pizza Margherita" in out
    assert "ohne Zwiebeln" in out


@pytest.mark.parametrize(
    ("locale", "lang", "total"),
    [
        ("de_CH", "de", "CHF 83.00"),
        ("", "en", "CHF83.00"),
        ("", "de", "83,00 CHF"),
        ("en_CH", "en", "CHF 83.00"),
    ],
)
def test_chf_formatting(edit: Edit, locale: str, lang: str, total: str) -> None:
    def fn(d: dict[str, Any]) -> None:
        d["currency"] = "CHF"
        d["priceSummary"]["total"] = {"amount": "83", "formattedAmount": "83,00 €"}

    ctx = make_ctx(receipts=ReceiptsConfig(money_locale=locale, language=lang))  # type: ignore[arg-type]
    out = text("customer", edit(fn), ctx)
    total_line = next(x for x in out.splitlines() if x.startswith(("GESAMT", "TOTAL")))
    assert total_line.endswith(total)
    assert out.count("€") == 1  # only the Club-Mate name; formattedAmount is never used


def test_any_currency(edit: Edit, ctx: RenderContext) -> None:
    def fn(d: dict[str, Any]) -> None:
        d["currency"] = "JPY"
        d["priceSummary"]["total"] = {"amount": "1200"}

    assert next(x for x in text("customer", edit(fn), ctx).splitlines() if x.startswith("GESAMT")).endswith(
        "1.200 ¥"
    )


def test_customer_unpaid(pickup_order: Order, ctx: RenderContext) -> None:
    assert "Offen: 33,00 CHF" in text("customer", pickup_order, ctx)


# ---- layout edge cases ---------------------------------------------------------------


LONG_WORDS = [f"Wort{i:03d}" for i in range(57)]
LONG_NAME = " ".join(LONG_WORDS)


@pytest.mark.parametrize("columns", [32, 42, 48])
@pytest.mark.parametrize("kind", ["kitchen", "customer", "cancel"])
def test_400_char_name_wraps_without_loss(edit: Edit, kind: str, columns: int) -> None:
    assert len(LONG_NAME) >= 400

    def fn(d: dict[str, Any]) -> None:
        d["lineItems"][0]["productName"] = {"original": LONG_NAME}

    out = text(kind, edit(fn), make_ctx(columns=columns))
    assert max(len(x) for x in out.splitlines()) <= columns
    words = out.split()
    for w in LONG_WORDS:
        assert w in words


def test_unbreakable_token_is_split_not_dropped(edit: Edit) -> None:
    token = "X" * 100

    def fn(d: dict[str, Any]) -> None:
        d["buyerNote"] = f"a {token} b"

    out = text("kitchen", edit(fn), make_ctx(columns=32))
    assert max(len(x) for x in out.splitlines()) <= 32
    assert out.count("X") == 100


def test_phone_and_money_never_broken(edit: Edit) -> None:
    def fn(d: dict[str, Any]) -> None:
        contact = d["shippingInfo"]["logistics"]["shippingDestination"]["contactDetails"]
        contact["phone"] = "+49 30 123 456 789 0"
        d["paymentStatus"] = "NOT_PAID"
        d["balanceSummary"]["balance"] = {"amount": "123456.78"}

    out = text("driver", edit(fn), make_ctx(columns=32))
    assert any("+49 30 123 456 789 0" in x for x in out.splitlines())
    assert any("123.456,78 €" in x for x in out.splitlines())


def test_300_lines_and_huge_quantity(edit: Edit, ctx: RenderContext) -> None:
    def fn(d: dict[str, Any]) -> None:
        base = d["lineItems"][2]
        d["lineItems"] = [
            dict(base, id=f"id-{i}", productName={"original": f"Gericht {i}"}) for i in range(300)
        ]
        d["lineItems"][0]["quantity"] = 100000

    order = edit(fn)
    for kind in ("kitchen", "customer", "cancel"):
        out = text(kind, order, ctx)
        assert all(f"Gericht {i}" in out for i in range(300))
        assert "100000x Gericht 0" in out
    customer = text("customer", order, ctx)
    assert "100000x Gericht 0" in customer
    assert "490.000,00 €" in customer
    assert "100299 Artikel" in text("kitchen", order, ctx)


def test_emoji_and_combining_characters(edit: Edit, ctx: RenderContext) -> None:
    def fn(d: dict[str, Any]) -> None:
        # Decomposed "Müller" (u + U+0308), ZWJ family, flag, skin tone, keycap, zero-width space.
        d["buyerNote"] = "Mu\u0308ller 👨\u200d👩\u200d👧 🇩🇪 👍🏽 1\ufe0f\u20e3 a\u200bb Café"

    out = text("kitchen", edit(fn), ctx)
    note = out[out.index("Kundennotiz") :]
    assert "Müller" in note
    assert "Café" in note
    assert "[man][woman][girl]" in note
    assert "[thumbs up sign]" in note
    assert " 1 " in note
    assert "ab" in note
    assert "\u200d" not in out
    assert "\ufe0f" not in out
    assert "\u0308" not in out


def test_zero_price_modifiers_everywhere(order: Order, ctx: RenderContext) -> None:
    for kind in ("kitchen", "customer", "cancel"):
        assert "ohne Zwiebeln" in text(kind, order, ctx)


def test_missing_optional_fields(edit: Edit, ctx: RenderContext) -> None:
    def fn(d: dict[str, Any]) -> None:
        for key in (
            "shippingInfo",
            "buyerNote",
            "billingInfo",
            "recipientInfo",
            "taxInfo",
            "balanceSummary",
            "appliedDiscounts",
            "createdDate",
        ):
            d.pop(key, None)
        for li in d["lineItems"]:
            li.pop("catalogReference", None)
            li.pop("modifierGroups", None)
            for k in ("price", "totalDiscount"):
                if k in li:
                    li[k].pop("formattedAmount", None)
        d["paymentStatus"] = "NOT_PAID"

    order = edit(fn)
    kitchen = text("kitchen", order, ctx)
    assert "ABHOLUNG" in kitchen
    assert "so schnell wie möglich" in kitchen
    assert "Kundennotiz" not in kitchen
    driver = text("driver", order, ctx)
    assert "keine Telefonnummer" in driver
    assert "Keine Lieferadresse" in driver
    assert "NICHT BEZAHLT – 41,65 € kassieren" in driver
    assert "14,00 €" in text("customer", order, ctx)


def test_minimal_order(ctx: RenderContext) -> None:
    order = Order(id="abcdef12-0000")
    for kind in ("kitchen", "driver", "customer", "cancel", "change"):
        out = text(kind, order, ctx)
        assert "#abcdef12" in out


def test_banners_on_top(order: Order) -> None:
    for lang in ("de", "en"):
        ctx = make_ctx(receipts=ReceiptsConfig(language=lang))  # type: ignore[arg-type]
        for banner in (BANNER_REPRINT_UNCERTAIN[lang], BANNER_COPY[lang]):  # type: ignore[index]
            for kind in ("kitchen", "driver", "customer"):
                doc = build_receipt(kind, order, ctx, banner=banner)  # type: ignore[arg-type]
                first = doc.blocks[0]
                assert isinstance(first, Text)
                assert first.text == banner
                assert first.invert
    assert BANNER_REPRINT_UNCERTAIN["de"] == "NACHDRUCK – evtl. doppelt"


def test_cancel_and_change_slips(order: Order, ctx: RenderContext) -> None:
    cancel = text("cancel", order, ctx)
    assert cancel.count("STORNO") == 2
    assert "#10234" in cancel
    assert "Storniert: Sa 14.03.2026 18:44" in cancel
    assert "2x Pizza Margherita" in cancel
    change = text("change", order, ctx, changes=["MENGE: Pizza Margherita: 2 -> 3"])
    assert "ÄNDERUNG" in change
    assert "- MENGE: Pizza Margherita: 2 -> 3" in change
    en = make_ctx(receipts=ReceiptsConfig(language="en"))
    assert "CANCELLED" in text("cancel", order, en)
    assert "CHANGED" in text("change", order, en)


def test_language_precedence(order: Order) -> None:
    restaurant_en = RestaurantConfig(language="en")
    assert make_ctx(restaurant=restaurant_en).language == "en"
    assert make_ctx(restaurant=restaurant_en, receipts=ReceiptsConfig(language="de")).language == "de"
    assert make_ctx().language == "de"


def test_render_formats(order: Order, ctx: RenderContext) -> None:
    assert isinstance(render(order, "kitchen", ctx, "text"), str)
    assert bytes(render(order, "kitchen", ctx, "escpos")).startswith(b"\x1b@\x1bt\x10")  # type: ignore[arg-type]
    assert bytes(render(order, "kitchen", ctx, "png"))[:8] == b"\x89PNG\r\n\x1a\n"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown receipt kind"):
        build_receipt("invoice", order, ctx)  # type: ignore[arg-type]
