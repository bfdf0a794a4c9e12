"""Layout checks for `wix-printer config check`: refuse a layout before anything prints."""

from __future__ import annotations

import unicodedata
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..config import RECEIPT_KINDS, Config
from .encode import CODEPAGE_TABLE

SUPPORTED_COLUMNS = (32, 42, 48, 57, 64)


def _text_problems(key: str, value: str, codepage: str) -> list[str]:
    out: list[str] = []
    bad = sorted({c for c in value if unicodedata.category(c) in ("Cc", "Cf") and c not in "\n\t"})
    if bad:
        names = ", ".join(f"U+{ord(c):04X}" for c in bad)
        out.append(f"`{key}`: contains control characters ({names}); they would be removed")
    if codepage in CODEPAGE_TABLE:
        missing = sorted(
            {c for c in value if c not in bad and c not in "\n\t" and not _encodable(c, codepage)}
        )
        if missing:
            out.append(f"`{key}`: characters not printable in code page {codepage}: {''.join(missing)!r}")
    return out


def _encodable(c: str, codepage: str) -> bool:
    try:
        c.encode(codepage)
    except UnicodeEncodeError:
        return False
    return True


def validate_layout(cfg: Config) -> list[str]:
    """Every reason the receipt layout in `cfg` is broken; [] means it is fine."""
    rc, pc, rest = cfg.receipts, cfg.printer, cfg.restaurant
    out: list[str] = []
    codepage: str = pc.codepage
    if codepage not in CODEPAGE_TABLE:
        out.append(f"`printer.codepage`: must be one of {', '.join(CODEPAGE_TABLE)}, got {codepage!r}")
    if pc.columns not in SUPPORTED_COLUMNS:
        out.append(f"`printer.columns`: must be one of {SUPPORTED_COLUMNS}, got {pc.columns}")
    for mode in ("pickup", "delivery"):
        kinds: list[str] = list(getattr(rc, mode))
        for k in kinds:
            if k not in RECEIPT_KINDS:
                known = ", ".join(RECEIPT_KINDS)
                out.append(f"`receipts.{mode}`: unknown receipt kind {k!r} (known: {known})")
        dupes = sorted({k for k in kinds if kinds.count(k) > 1})
        if dupes:
            out.append(f"`receipts.{mode}`: listed more than once: {', '.join(dupes)} (use receipts.copies)")
        if not kinds:
            out.append(f"`receipts.{mode}`: empty, {mode} orders would print nothing")
        elif "kitchen" not in kinds:
            out.append(f"`receipts.{mode}`: no kitchen ticket, the kitchen would never see {mode} orders")
    for kind, n in rc.copies.items():
        if kind not in RECEIPT_KINDS:
            out.append(f"`receipts.copies.{kind}`: unknown receipt kind")
        if not isinstance(n, int) or not 0 <= n <= 5:
            out.append(f"`receipts.copies.{kind}`: must be 0..5, got {n!r}")
    if rc.preorder_after_minutes < 0:
        out.append(f"`receipts.preorder_after_minutes`: must be >= 0, got {rc.preorder_after_minutes}")
    if rc.kitchen_item_size not in ("normal", "large"):
        out.append(f"`receipts.kitchen_item_size`: must be normal or large, got {rc.kitchen_item_size!r}")
    if rc.language not in ("", "de", "en"):
        out.append(f"`receipts.language`: must be de, en or empty, got {rc.language!r}")
    if rc.money_locale:
        from babel import Locale, UnknownLocaleError  # only when set: see fmt._pattern

        try:
            Locale.parse(rc.money_locale)
        except (UnknownLocaleError, ValueError, TypeError):
            out.append(
                f"`receipts.money_locale`: unknown locale {rc.money_locale!r} (e.g. de_DE, de_CH, en_GB)"
            )
    try:
        ZoneInfo(rest.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        out.append(f"`restaurant.timezone`: unknown time zone {rest.timezone!r}")
    texts = {
        "receipts.header": rc.header,
        "receipts.footer": rc.footer,
        "restaurant.name": rest.name,
        "restaurant.address": rest.address,
        "restaurant.phone": rest.phone,
    }
    for key, value in texts.items():
        out += _text_problems(key, value, codepage)
    return out
