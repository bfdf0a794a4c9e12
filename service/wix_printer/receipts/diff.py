"""What changed between two revisions of an order, in words the kitchen acts on.

Only what changes the food or where/when it goes counts; payment and fulfilment
updates return nothing, so the worker prints nothing for them.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, tzinfo

from ..wix.model import LineItem, Order
from .build import address_lines, delivery_address, description_lines, logistics, modifier_lines, wanted_time
from .context import zone
from .fmt import slot_text
from .i18n import STRINGS, Lang, lang_of


def _key(li: LineItem, index: int) -> str:
    if li.id:
        return f"id:{li.id}"
    ref = li.catalog_reference.catalog_item_id if li.catalog_reference else None
    return f"ref:{ref or li.product_name.best(False)}:{index}"


def _details(li: LineItem) -> Counter[str]:
    return Counter(description_lines(li) + modifier_lines(li))


def _name(li: LineItem) -> str:
    return li.product_name.best(False) or "?"


def diff_orders(old: Order, new: Order, lang: str = "de", *, tz: str | tzinfo = "Europe/Berlin") -> list[str]:
    """Human-readable changes from `old` to `new`; [] when nothing printable changed."""
    language: Lang = lang_of(lang)
    s = STRINGS[language]
    zone_ = zone(tz) if isinstance(tz, str) else tz
    out: list[str] = []
    out += _items(old, new, s)
    out += _where(old, new, s)
    out += _when(old, new, s, zone_, language)
    out += _notes(old, new, s)
    return out


def _items(old: Order, new: Order, s: dict[str, str]) -> list[str]:
    out: list[str] = []
    before = {_key(li, i): li for i, li in enumerate(old.line_items)}
    after = {_key(li, i): li for i, li in enumerate(new.line_items)}
    for key, li in after.items():
        prev = before.get(key)
        if prev is None:
            extras = ", ".join(list(_details(li).elements()))
            item = f"{li.quantity}x {_name(li)}" + (f" ({extras})" if extras else "")
            out.append(s["added"].format(item=item))
            continue
        if prev.quantity != li.quantity:
            out.append(s["quantity"].format(name=_name(li), old=prev.quantity, new=li.quantity))
        was, now = _details(prev), _details(li)
        for mod in (now - was).elements():
            out.append(s["mod_added"].format(name=_name(li), mod=mod))
        for mod in (was - now).elements():
            out.append(s["mod_removed"].format(name=_name(li), mod=mod))
        if (prev.special_requests or "").strip() != (li.special_requests or "").strip():
            if li.special_requests:
                out.append(s["special_changed"].format(name=_name(li), value=li.special_requests.strip()))
            else:
                out.append(s["special_removed"].format(name=_name(li)))
    for key, li in before.items():
        if key not in after:
            out.append(s["removed"].format(item=f"{li.quantity}x {_name(li)}"))
    return out


def _where(old: Order, new: Order, s: dict[str, str]) -> list[str]:
    out: list[str] = []
    if old.is_delivery != new.is_delivery:
        out.append(s["to_delivery"] if new.is_delivery else s["to_pickup"])
    a, b = delivery_address(old), delivery_address(new)
    old_lines = address_lines(a) if a else []
    new_lines = address_lines(b) if b else []
    if new.is_delivery and old_lines != new_lines:
        out.append(s["address"].format(value=", ".join(new_lines) or s["none"]))
    la, lb = logistics(old), logistics(new)
    ia = ((la.instructions if la else None) or "").strip()
    ib = ((lb.instructions if lb else None) or "").strip()
    if ia != ib:
        out.append(s["instructions_changed"].format(value=ib or s["none"]))
    return out


def _when(old: Order, new: Order, s: dict[str, str], tz: tzinfo, lang: Lang) -> list[str]:
    (a0, a1), (b0, b1) = wanted_time(old), wanted_time(new)
    if (a0, a1) == (b0, b1):
        return []

    def text(start: datetime | None, end: datetime | None) -> str:
        return slot_text(start, end, tz, lang) if start else s["asap"]

    return [s["time"].format(old=text(a0, a1), new=text(b0, b1))]


def _notes(old: Order, new: Order, s: dict[str, str]) -> list[str]:
    a, b = (old.buyer_note or "").strip(), (new.buyer_note or "").strip()
    if a == b:
        return []
    return [s["note_changed"].format(value=b) if b else s["note_removed"]]
