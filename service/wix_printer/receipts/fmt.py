"""Money and time formatting for receipts (Decimal only; local time with DST)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..wix.model import Money
from .i18n import WEEKDAYS, Lang
from .text import glue

if TYPE_CHECKING:
    from babel import Locale
    from babel.numbers import NumberPattern


@lru_cache(maxsize=64)
def _pattern(locale: str) -> tuple[Locale, NumberPattern] | None:
    # Babel loads with the first amount printed, not at start-up: about 0.4 MiB of an
    # idle box's memory budget (bench/BENCHMARKS.md), and a box may idle for hours.
    from babel import Locale, UnknownLocaleError
    from babel.numbers import NumberPattern

    try:
        loc = Locale.parse(locale)
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    pattern = loc.currency_formats["standard"]
    return (loc, pattern) if isinstance(pattern, NumberPattern) else None


# A currency format as plain data: decimal sign, group sign, (primary, secondary)
# grouping, (positive, negative) prefix and suffix, fraction digits.
Spec = tuple[str, str, tuple[int, int], tuple[str, str], tuple[str, str], int]


class _Fast:
    """Babel's currency format for one (locale, currency), precomputed.

    Babel's general formatter costs ~20 µs a call and a customer receipt has ~25
    amounts; this does the same for plain patterns in ~2 µs. It is only used after it
    reproduced Babel exactly on probe values, so an exotic locale falls back to Babel.
    """

    __slots__ = ("decimal", "digits", "group", "grouping", "prefix", "suffix")

    def __init__(self, spec: Spec) -> None:
        self.decimal, self.group, self.grouping, self.prefix, self.suffix, self.digits = spec

    @classmethod
    def from_babel(cls, loc: Locale, pattern: NumberPattern, code: str) -> _Fast:
        from babel.numbers import get_currency_precision, get_currency_symbol, get_decimal_symbol, get_group_symbol

        symbol = get_currency_symbol(code, loc)
        prefix = (pattern.prefix[0].replace("¤", symbol), pattern.prefix[1].replace("¤", symbol))
        suffix = (pattern.suffix[0].replace("¤", symbol), pattern.suffix[1].replace("¤", symbol))
        return cls((get_decimal_symbol(loc), get_group_symbol(loc), pattern.grouping, prefix, suffix,
                    get_currency_precision(code)))

    def spec(self) -> Spec:
        return (self.decimal, self.group, self.grouping, self.prefix, self.suffix, self.digits)

    def __call__(self, value: Decimal) -> str:
        q = value.quantize(Decimal(1).scaleb(-self.digits), ROUND_HALF_EVEN)
        neg = q < 0
        whole, _, frac = f"{abs(q):f}".partition(".")
        primary, secondary = self.grouping
        parts: list[str] = []
        if len(whole) > primary:
            parts.append(whole[-primary:])
            whole = whole[:-primary]
            while len(whole) > secondary:
                parts.append(whole[-secondary:])
                whole = whole[:-secondary]
        parts.append(whole)
        number = self.group.join(reversed(parts))
        if self.digits:
            number += self.decimal + frac
        return f"{self.prefix[neg]}{number}{self.suffix[neg]}"


# Babel 2.19 drops grouping above a million in some locales (de_CH "CHF 1234567.89") and
# keeps "-0,00" for tiny negatives; there we group consistently and drop the sign, so the
# probes stay in the range where both must agree.
_PROBES = tuple(Decimal(x) for x in ("0", "0.5", "7", "12.345", "-4.35", "1234.5", "98765.432"))


# Formats a helper process computed (printing/render.load_money_formats), by (locale,
# currency): the process that prints then never loads Babel and its locale data.
_installed: dict[tuple[str, str], _Fast] = {}


def install(locale: str, specs: dict[str, Spec]) -> int:
    for code, spec in specs.items():
        _installed[(locale, code)] = _Fast(spec)
    return len(specs)


def export(locale: str) -> dict[str, Spec]:
    """Every currency's format in `locale` that the fast path reproduces exactly (loads Babel)."""
    from babel.numbers import list_currencies

    out: dict[str, Spec] = {}
    for code in sorted(list_currencies()):
        fast = _formatter(locale, code)
        if fast is not None:
            out[code] = fast.spec()
    return out


def _formatter(locale: str, code: str) -> _Fast | None:
    return _installed.get((locale, code)) or _babel_formatter(locale, code)


@lru_cache(maxsize=256)
def _babel_formatter(locale: str, code: str) -> _Fast | None:
    found = _pattern(locale) or _pattern("de_DE")
    if found is None:
        return None
    loc, pattern = found
    try:
        fast = _Fast.from_babel(loc, pattern, code)
        for p in _PROBES:
            if fast(p) != pattern.apply(p, loc, currency=code, currency_digits=True):
                return None
    except (ValueError, KeyError, ArithmeticError, TypeError):
        return None
    return fast


def money(amount: Money | Decimal | None, currency: str | None, locale: str) -> str:
    """Amount as the locale writes it, glued into one token so it never wraps apart."""
    value = dec(amount)
    code = (currency or "").strip().upper()
    text: str | None = None
    if code.isascii() and code.isalpha() and len(code) == 3:
        fast = _formatter(locale, code)
        if fast is not None:
            text = fast(value)
        else:
            found = _pattern(locale) or _pattern("de_DE")
            if found is not None:
                try:
                    text = found[1].apply(value, found[0], currency=code, currency_digits=True)
                except (ValueError, KeyError, ArithmeticError):
                    text = None
    if text is None:
        # No (valid) currency on the order: the number alone beats a wrong symbol.
        text = f"{value:.2f} {code}".strip()
    return glue(text)


def dec(amount: Money | Decimal | None) -> Decimal:
    """A finite, sane Decimal (0 for missing, NaN, or absurd magnitudes), safe to compare."""
    if amount is None:
        return Decimal(0)
    value = amount if isinstance(amount, Decimal) else amount.value
    # Wix amounts have a few digits; 1e30 or NaN is a broken payload, and formatting
    # (or multiplying) it must not blow up a receipt that has to come out.
    if not value.is_finite() or abs(value.adjusted()) > 15:
        return Decimal(0)
    return value


def decimal_of(amount: Money | None) -> Decimal | None:
    return None if amount is None else dec(amount)


def parse_time(value: str | None) -> datetime | None:
    """Wix ISO timestamp as an aware UTC datetime; None when missing or malformed."""
    if not value or not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def local(dt: datetime, tz: tzinfo) -> datetime:
    return dt.astimezone(tz)


def hm(dt: datetime) -> str:
    return f"{dt.hour:02d}:{dt.minute:02d}"


def date_short(dt: datetime, lang: Lang) -> str:
    wd = WEEKDAYS[lang][dt.weekday()]
    if lang == "en":
        return f"{wd} {dt.day:02d}/{dt.month:02d}/{dt.year}"
    return f"{wd} {dt.day:02d}.{dt.month:02d}.{dt.year}"


def datetime_text(dt: datetime, tz: tzinfo, lang: Lang) -> str:
    loc = local(dt, tz)
    return f"{date_short(loc, lang)} {hm(loc)}"


def slot_text(start: datetime, end: datetime | None, tz: tzinfo, lang: Lang) -> str:
    """ "Sa 14.03.2026 19:25–19:40"; both dates when the slot crosses midnight."""
    a = local(start, tz)
    if end is None or end <= start:
        return f"{date_short(a, lang)} {hm(a)}"
    b = local(end, tz)
    if a.date() == b.date():
        return f"{date_short(a, lang)} {hm(a)}–{hm(b)}"
    return f"{date_short(a, lang)} {hm(a)} – {date_short(b, lang)} {hm(b)}"


def percent(rate: str | None) -> str | None:
    """ "0.07" -> "7 %"; None for missing or malformed rates."""
    if not rate:
        return None
    try:
        value = Decimal(rate) * 100
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite():
        return None
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}\u00a0%"


def finite(x: Any) -> float | None:
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None
