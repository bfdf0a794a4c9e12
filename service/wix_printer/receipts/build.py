"""Order -> receipt Document for each receipt kind.

Builders only choose what to print and how prominent it is; wrapping, code-page mapping
and control stripping happen in the layout step, so no builder can forget them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import quote, urlencode

from ..wix.model import Address, LineItem, Logistics, Money, Order
from .context import RenderContext
from .document import AnyBlock, DocKind, Document, Feed, QRCode, Row, Rule, Text
from .fmt import datetime_text, dec, decimal_of, finite, money, parse_time, percent, slot_text
from .i18n import STRINGS, Lang
from .text import glue

_INDENT = 3

_MoneyFn = Callable[[Money | Decimal | None], str]


# ---- order facts -----------------------------------------------------------------------


def logistics(order: Order) -> Logistics | None:
    return order.shipping_info.logistics if order.shipping_info else None


def wanted_time(order: Order) -> tuple[datetime | None, datetime | None]:
    """The time the customer wants the food: time slot start (and end), else deliveryTime."""
    lg = logistics(order)
    if lg is None:
        return None, None
    slot = lg.delivery_time_slot
    start = parse_time(slot.from_) if slot else None
    end = parse_time(slot.to) if slot else None
    if start is None:
        start = parse_time(lg.delivery_time)
    return start, end


def is_preorder(order: Order, ctx: RenderContext) -> bool:
    start, _ = wanted_time(order)
    if start is None:
        return False
    now = ctx.now if ctx.now.tzinfo else ctx.now.replace(tzinfo=start.tzinfo)
    return start - now > timedelta(minutes=ctx.receipts.preorder_after_minutes)


def delivery_address(order: Order) -> Address | None:
    lg = logistics(order)
    dest = lg.shipping_destination if lg else None
    return dest.address if dest else None


def recipient(order: Order) -> tuple[str, str]:
    """Name and phone, each from the first source that has it (shipping, recipient, billing)."""
    lg = logistics(order)
    sources = [
        lg.shipping_destination.contact_details if lg and lg.shipping_destination else None,
        order.recipient_info.contact_details if order.recipient_info else None,
        order.billing_info.contact_details if order.billing_info else None,
    ]
    name = next((c.full_name for c in sources if c and c.full_name.strip()), "")
    if not name:
        name = next((c.company for c in sources if c and c.company and c.company.strip()), "") or ""
    phone = next((c.phone for c in sources if c and c.phone and c.phone.strip()), "") or ""
    return name.strip(), phone.strip()


def address_lines(addr: Address) -> list[str]:
    lines = [addr.street_line]
    if addr.street_address and addr.street_address.apt:
        lines.append(addr.street_address.apt)
    lines.append(addr.address_line2 or "")
    lines.append(" ".join(p for p in (addr.postal_code, addr.city) if p))
    return [line.strip() for line in lines if line and line.strip()]


def navigation_url(addr: Address) -> str | None:
    geo = addr.geocode
    lat = finite(geo.latitude) if geo else None
    lng = finite(geo.longitude) if geo else None
    if lat is not None and lng is not None and (lat, lng) != (0.0, 0.0):
        dest = f"{lat:.6f},{lng:.6f}"
        return f"https://www.google.com/maps/dir/?api=1&destination={dest}"
    parts = [addr.street_line, " ".join(p for p in (addr.postal_code, addr.city) if p), addr.country or ""]
    text = ", ".join(p.strip() for p in parts if p and p.strip())
    if not text:
        return None
    return "https://www.google.com/maps/dir/?" + urlencode({"api": "1", "destination": text}, quote_via=quote)


def amount_due(order: Order) -> Money | None:
    if order.balance_summary and order.balance_summary.balance is not None:
        return order.balance_summary.balance
    return order.price_summary.total if order.price_summary else None


def modifier_lines(item: LineItem) -> list[str]:
    """Every modifier, zero-price ones too: "ohne Zwiebeln" is the whole point."""
    out: list[str] = []
    for group in item.modifier_groups:
        gname = group.name.best().strip()
        for mod in group.modifiers:
            label = mod.label.best().strip()
            if not label:
                continue
            qty = f"{mod.quantity}x " if mod.quantity != 1 else ""
            out.append(f"{gname}: {qty}{label}" if gname else f"{qty}{label}")
    return out


def description_lines(item: LineItem) -> list[str]:
    out: list[str] = []
    for d in item.description_lines:
        name = d.name.best().strip()
        value = d.plain_text.best().strip() if d.plain_text else ""
        if name and value:
            out.append(f"{name}: {value}")
        elif name or value:
            out.append(name or value)
    return out


def item_count(order: Order) -> int:
    return sum(max(0, li.quantity) for li in order.line_items)


# ---- shared blocks ---------------------------------------------------------------------


def _fit(text: str, columns: int, biggest: int) -> int:
    """Largest size multiplier (<= biggest) at which `text` still fits on one line."""
    for m in range(biggest, 1, -1):
        if len(text) <= columns // m:
            return m
    return 1


def _banner(text: str, ctx: RenderContext, biggest: int = 2) -> list[AnyBlock]:
    m = _fit(text, ctx.columns, biggest)
    return [Text(text=text, align="center", bold=True, width=m, height=max(m, 2), invert=True)]


def _order_number(order: Order, ctx: RenderContext, biggest: int = 4) -> Text:
    num = f"#{order.number or order.id[:8]}"
    m = _fit(num, ctx.columns, biggest)
    return Text(text=num, align="center", bold=True, width=m, height=max(m, 2))


def _head(kind_banner: str | None, banner: str | None, ctx: RenderContext) -> list[AnyBlock]:
    blocks: list[AnyBlock] = []
    if banner:
        blocks += [*_banner(banner, ctx), Feed()]
    if kind_banner:
        blocks += _banner(kind_banner, ctx, 3)
    return blocks


def _mode_and_time(order: Order, ctx: RenderContext, s: dict[str, str]) -> list[AnyBlock]:
    start, end = wanted_time(order)
    label = s["wanted_delivery"] if order.is_delivery else s["wanted_pickup"]
    when = slot_text(start, end, ctx.tz, ctx.language) if start else s["asap"]
    return [Text(text=f"{label}: {when}", align="center", bold=True, height=2)]


def _mode_banners(order: Order, ctx: RenderContext, s: dict[str, str]) -> list[AnyBlock]:
    blocks = _banner(s["delivery"] if order.is_delivery else s["pickup"], ctx, 3)
    if is_preorder(order, ctx):
        blocks += [Feed(), *_banner(s["preorder"], ctx, 3)]
    return blocks


def _items_plain(items: Sequence[LineItem], large: bool, s: dict[str, str]) -> list[AnyBlock]:
    """Items for the kitchen and cancel slips: quantities big, every detail, no prices."""
    size = 2 if large else 1
    blocks: list[AnyBlock] = []
    for i, li in enumerate(items):
        if i:
            blocks.append(Feed())
        lead = f"{li.quantity}x "
        blocks.append(
            Text(
                text=lead + (li.product_name.best(False) or "?"),
                bold=True,
                width=size,
                height=size,
                hang=len(lead),
            )
        )
        for line in description_lines(li) + modifier_lines(li):
            blocks.append(Text(text=line, height=size, indent=_INDENT, hang=2))
        req = li.special_requests
        if req:
            blocks.append(
                Text(
                    text=f"{s['special']}: {req.strip()}",
                    bold=True,
                    height=size,
                    invert=True,
                    indent=_INDENT,
                    hang=2,
                )
            )
    return blocks


def _note(order: Order, large: bool, s: dict[str, str]) -> list[AnyBlock]:
    note = (order.buyer_note or "").strip()
    if not note:
        return []
    return [Rule(), Text(text=f"{s['note']}: {note}", bold=True, invert=True, height=2 if large else 1)]


def _lang(ctx: RenderContext) -> tuple[Lang, dict[str, str]]:
    return ctx.language, STRINGS[ctx.language]


# ---- kinds -----------------------------------------------------------------------------


def _kitchen(order: Order, ctx: RenderContext, banner: str | None) -> list[AnyBlock]:
    lang, s = _lang(ctx)
    large = ctx.receipts.kitchen_item_size == "large"
    blocks = _head(None, banner, ctx)
    blocks += _mode_banners(order, ctx, s)
    blocks += [_order_number(order, ctx), *_mode_and_time(order, ctx, s)]
    name, _ = recipient(order)
    if name:
        blocks.append(Text(text=name, align="center", bold=True))
    created = parse_time(order.created_date)
    if created:
        blocks.append(Text(text=f"{s['ordered']}: {datetime_text(created, ctx.tz, lang)}", align="center"))
    blocks.append(Rule(char="="))
    blocks += _items_plain(order.line_items, large, s)
    blocks += _note(order, large, s)
    blocks += [Rule(char="="), Text(text=s["items_count"].format(n=item_count(order)), align="right")]
    return blocks


def _driver(order: Order, ctx: RenderContext, banner: str | None) -> list[AnyBlock]:
    _, s = _lang(ctx)
    blocks = _head(None, banner, ctx)
    blocks += _banner(s["delivery"] if order.is_delivery else s["pickup"], ctx, 3)
    blocks += [_order_number(order, ctx, 3), *_mode_and_time(order, ctx, s), Rule()]
    name, phone = recipient(order)
    if name:
        blocks.append(Text(text=name, bold=True, height=2))
    blocks.append(Text(text=f"{s['phone']} {glue(phone)}" if phone else s["no_phone"], bold=True, height=2))
    addr = delivery_address(order)
    lines = address_lines(addr) if addr else []
    if lines:
        for i, line in enumerate(lines):
            # Street and town big; the middle line (floor, backyard) normal but present.
            big = i in (0, len(lines) - 1)
            blocks.append(Text(text=line, bold=big, height=2 if big else 1))
    else:
        blocks.append(Text(text=s["no_address"], bold=True))
    lg = logistics(order)
    if lg and lg.instructions and lg.instructions.strip():
        blocks.append(Text(text=f"{s['instructions']}: {lg.instructions.strip()}", bold=True, invert=True))
    note = (order.buyer_note or "").strip()
    if note:
        blocks.append(Text(text=f"{s['note']}: {note}"))
    blocks.append(Rule())
    due = amount_due(order)
    amount = money(due, order.currency, ctx.money_locale)
    status = (order.payment_status or "").upper()
    if status == "PAID":
        blocks.append(Text(text=s["paid"], align="center", bold=True, height=2))
    else:
        key = "not_paid" if status else "payment_unknown"
        blocks.append(
            Text(text=s[key].format(amount=amount), align="center", bold=True, height=2, invert=True)
        )
    url = navigation_url(addr) if addr else None
    if url:
        blocks.append(Feed())
        if len(url) <= _QR_MAX:
            blocks += [QRCode(data=url), Text(text=s["navigation"], align="center")]
        else:
            blocks.append(Text(text=s["qr_too_long"], align="center"))
    blocks += [Rule(), Text(text=s["items_count"].format(n=item_count(order)), align="right")]
    return blocks


# Byte capacity of a version-25 QR code at level M; bigger codes get too dense for 80 mm.
_QR_MAX = 1000


def _customer(order: Order, ctx: RenderContext, banner: str | None) -> list[AnyBlock]:
    lang, s = _lang(ctx)
    rc = ctx.restaurant
    prices = ctx.receipts.show_prices
    cur = order.currency
    loc = ctx.money_locale

    def m(x: Money | Decimal | None) -> str:
        return money(x, cur, loc)

    blocks = _head(None, banner, ctx)
    if rc.name.strip():
        blocks.append(
            Text(
                text=rc.name.strip(),
                align="center",
                bold=True,
                width=_fit(rc.name.strip(), ctx.columns, 2),
                height=2,
            )
        )
    for line in rc.address.splitlines():
        blocks.append(Text(text=line, align="center"))
    if rc.phone.strip():
        blocks.append(Text(text=f"{s['phone']} {glue(rc.phone.strip())}", align="center"))
    if ctx.receipts.header.strip():
        blocks += [Feed(), Text(text=ctx.receipts.header.strip(), align="center")]
    blocks += [Rule(), Text(text=f"{s['order']} #{order.number or order.id[:8]}", bold=True, height=2)]
    created = parse_time(order.created_date)
    if created:
        blocks.append(Text(text=datetime_text(created, ctx.tz, lang)))
    mode = s["delivery"] if order.is_delivery else s["pickup"]
    start, end = wanted_time(order)
    when = slot_text(start, end, ctx.tz, lang) if start else s["asap"]
    blocks += [Text(text=f"{mode}: {when}"), Rule()]

    rows: list[tuple[LineItem, str, str]] = []
    for li in order.line_items:
        unit = decimal_of(li.price)
        if unit is not None:
            rows.append((li, m(unit), m(unit * li.quantity)))
        elif li.total_price_after_tax is not None:
            rows.append((li, "", m(li.total_price_after_tax)))
        else:
            rows.append((li, "", ""))
    uw = max([len(s["unit"])] + [len(r[1]) for r in rows])
    sw = max([len(s["sum"])] + [len(r[2]) for r in rows])
    if order.price_summary:
        ps = order.price_summary
        sw = max([sw] + [len(m(x)) for x in (ps.subtotal, ps.shipping, ps.total) if x is not None])
        if ps.discount is not None:
            sw = max(sw, len(m(-abs(dec(ps.discount)))))
    widths = (uw, sw)
    if prices:
        blocks.append(Row(left=s["item"], cells=(s["unit"], s["sum"]), widths=widths, bold=True))
    for li, unit_text, line_text in rows:
        lead = f"{li.quantity}x "
        left = lead + (li.product_name.best() or "?")
        cells = (unit_text, line_text) if prices else ()
        blocks.append(Row(left=left, cells=cells, widths=widths if prices else (), bold=True, hang=len(lead)))
        for line in description_lines(li):
            blocks.append(Text(text=line, indent=_INDENT, hang=2))
        for group in li.modifier_groups:
            for mod in group.modifiers:
                label = mod.label.best().strip()
                if not label:
                    continue
                qty = f"{mod.quantity}x " if mod.quantity != 1 else ""
                extra = ""
                if prices and dec(mod.price) > 0:
                    extra = f" (+{m(mod.price)})"
                gname = group.name.best().strip()
                text = f"{gname}: {qty}{label}{extra}" if gname else f"{qty}{label}{extra}"
                blocks.append(Text(text=text, indent=_INDENT, hang=2))
        if li.special_requests:
            blocks.append(Text(text=f"{s['special']}: {li.special_requests.strip()}", indent=_INDENT, hang=2))
        disc = decimal_of(li.total_discount)
        if prices and disc:
            blocks.append(Text(text=s["line_discount"].format(amount=m(-abs(disc))), indent=_INDENT, hang=2))

    for ad in order.applied_discounts:
        c = ad.coupon
        if c and (c.code or c.name):
            label = " ".join(p for p in (c.code, f"({c.name})" if c.name else None) if p)
            blocks.append(Text(text=f"{s['coupon']}: {label}"))

    if prices and order.price_summary:
        ps = order.price_summary
        blocks.append(Rule())
        summary: list[tuple[str, Money | Decimal | None]] = [
            (s["subtotal"], ps.subtotal),
            (s["shipping"], ps.shipping if dec(ps.shipping) else None),
            (s["discount"], -abs(dec(ps.discount)) if dec(ps.discount) else None),
        ]
        if order.tax_included_in_prices is False and dec(ps.tax):
            summary.append((f"{s['tax_added']} {s['vat']}", ps.tax))
        for label, amount in summary:
            if amount is not None:
                blocks.append(Row(left=label, cells=(m(amount),), widths=(sw,)))
        if ps.total is not None:
            blocks += [
                Rule(char="="),
                Row(left=s["total"], cells=(m(ps.total),), widths=(sw,), bold=True, height=2),
            ]
        blocks += _tax_lines(order, s, m, sw)
    blocks.append(Rule())
    blocks.append(Text(text=_payment_state(order, s, m, prices), bold=True))
    if ctx.receipts.footer.strip():
        blocks += [Feed(), Text(text=ctx.receipts.footer.strip(), align="center")]
    return blocks


def _tax_lines(order: Order, s: dict[str, str], m: _MoneyFn, sw: int) -> list[AnyBlock]:
    if not order.tax_info:
        return []
    included = order.tax_included_in_prices
    prefix = "" if included is None else s["tax_included"] if included else s["tax_added"]
    out: list[AnyBlock] = []
    for tb in order.tax_info.tax_breakdown:
        name = (tb.tax_name or "").strip() or " ".join(p for p in (s["vat"], percent(tb.rate)) if p)
        label = f"{prefix} {name}".strip()
        out.append(Row(left=label, cells=(m(tb.aggregated_tax_amount),), widths=(sw,)))
    return out


def _payment_state(order: Order, s: dict[str, str], m: _MoneyFn, prices: bool) -> str:
    status = (order.payment_status or "").upper()
    if status == "PAID":
        return s["state_paid"]
    due = amount_due(order)
    if status == "NOT_PAID" or (status and dec(due) > 0):
        return s["state_open"].format(amount=m(due)) if prices else s["not_paid"].split(" – ")[0]
    return s["state_unknown"].format(status=status or "?")


def _cancel(order: Order, ctx: RenderContext, banner: str | None) -> list[AnyBlock]:
    lang, s = _lang(ctx)
    blocks = _head(s["cancel"], banner, ctx)
    blocks += [
        _order_number(order, ctx),
        Text(text=s["delivery"] if order.is_delivery else s["pickup"], align="center", bold=True),
    ]
    name, _ = recipient(order)
    if name:
        blocks.append(Text(text=name, align="center"))
    blocks += [
        Text(text=f"{s['canceled_at']}: {datetime_text(ctx.now, ctx.tz, lang)}", align="center"),
        Rule(char="="),
    ]
    blocks += _items_plain(order.line_items, ctx.receipts.kitchen_item_size == "large", s)
    blocks += [Rule(char="="), *_banner(s["cancel"], ctx, 3)]
    return blocks


def _change(order: Order, ctx: RenderContext, banner: str | None, changes: Sequence[str]) -> list[AnyBlock]:
    lang, s = _lang(ctx)
    large = ctx.receipts.kitchen_item_size == "large"
    blocks = _head(s["change"], banner, ctx)
    blocks += [_order_number(order, ctx), *_mode_and_time(order, ctx, s)]
    blocks += [
        Text(text=f"{s['changed_at']}: {datetime_text(ctx.now, ctx.tz, lang)}", align="center"),
        Rule(char="="),
    ]
    if not changes:
        blocks.append(Text(text=s["no_changes"]))
    for change in changes:
        blocks.append(Text(text=f"- {change}", bold=True, height=2 if large else 1, hang=2))
    blocks += [Rule(char="=")]
    return blocks


def build_receipt(
    kind: DocKind,
    order: Order,
    ctx: RenderContext,
    *,
    banner: str | None = None,
    changes: Iterable[str] | None = None,
) -> Document:
    """Build the receipt `kind` for `order`; `banner` goes on top (NACHDRUCK/KOPIE)."""
    match kind:
        case "kitchen":
            blocks = _kitchen(order, ctx, banner)
        case "driver":
            blocks = _driver(order, ctx, banner)
        case "customer":
            blocks = _customer(order, ctx, banner)
        case "cancel":
            blocks = _cancel(order, ctx, banner)
        case "change":
            blocks = _change(order, ctx, banner, list(changes or ()))
        case _:
            raise ValueError(f"unknown receipt kind {kind!r}")
    return Document(kind=kind, blocks=tuple(blocks), codepage=ctx.codepage, language=ctx.language)
