"""Service hours ("11:00-14:30", "17:00-01:00") in the restaurant's time zone."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_hours(ranges: list[str]) -> list[tuple[int, int]]:
    """Minutes after midnight; an end before the start runs past midnight."""
    out = []
    for r in ranges:
        m = _RANGE.match(r)
        if not m:
            raise ValueError(f"{r!r} is not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if not (h1 <= 24 and h2 <= 24 and m1 < 60 and m2 < 60):
            raise ValueError(f"{r!r}: no such time")
        out.append((h1 * 60 + m1, h2 * 60 + m2))
    return out


def in_service(ranges: list[tuple[int, int]], at: float, tz: ZoneInfo) -> bool:
    if not ranges:
        return True
    t = dt.datetime.fromtimestamp(at, tz)
    minute = t.hour * 60 + t.minute
    for start, end in ranges:
        if start <= end:
            if start <= minute < end:
                return True
        elif minute >= start or minute < end:
            return True
    return False
