"""From what a box answered to one row of the fleet table: parsing, the rules for what
needs attention, and the two renderings (a coloured table for people, JSON for scripts).

Pure functions on plain data, so they are tested without any box.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from typing import Any


class Level(IntEnum):
    OK = 0
    INFO = 1  # not a problem, but not the normal state either (e.g. no data yet)
    WARN = 2
    BAD = 3


# Thresholds say what an integrator should look at today. Why these numbers:
QUEUE_WARN_S = 30  # an order normally prints within a second; 30 s queued means it is stuck
QUEUE_BAD_S = 120  # two minutes: the kitchen is missing tickets
BACKUP_WARN_S = 26 * 3600  # the backup timer runs daily; one missed run plus slack
BACKUP_BAD_S = 50 * 3600  # two missed runs
DISK_WARN = 0.15
DISK_BAD = 0.05  # SQLite needs room for its WAL and for the pre-migration backup
TEMP_WARN_C = 70.0  # a Pi 4/5 starts to throttle at 80-85 °C
TEMP_BAD_C = 80.0
CATCHUP_WARN_S = 600  # polling boxes search Wix every few seconds; 10 min silent is broken
TUNNEL_UP_S = 15  # the tunnel's ssh gives up within its ConnectTimeout (10 s) if it cannot connect
PRINTER_BAD = {"paper_out", "cover_open", "offline", "error", "unreachable"}
PRINTER_WARN = {"paper_low", "unknown", "not_configured"}


@dataclass
class BoxStatus:
    name: str
    reachable: bool
    error: str | None = None
    seconds: float = 0.0
    release: str | None = None
    version: str | None = None
    uptime_s: float | None = None
    service: str | None = None
    status_error: str | None = None
    queue_depth: int | None = None
    oldest_queued_age_s: float | None = None
    jobs: dict[str, int] = field(default_factory=dict)
    printer_state: str | None = None
    printer_error: str | None = None
    paper_low: bool | None = None
    last_print_age_s: float | None = None
    last_wix_event_age_s: float | None = None
    intake: str | None = None
    last_catchup_age_s: float | None = None
    last_catchup_error: str | None = None
    backup_age_s: float | None = None
    disk_free_bytes: int | None = None
    disk_total_bytes: int | None = None
    model: str | None = None
    temp_c: float | None = None
    # up | connecting | down; None: this box has no tunnel to a relay
    tunnel: str | None = None
    tunnel_age_s: float | None = None
    attention: list[str] = field(default_factory=list)
    level: Level = Level.OK
    cells: dict[str, Level] = field(default_factory=dict)

    @property
    def disk_free_ratio(self) -> float | None:
        if self.disk_free_bytes is None or not self.disk_total_bytes:
            return None
        return self.disk_free_bytes / self.disk_total_bytes

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["level"] = self.level.name.lower()
        d["cells"] = {k: v.name.lower() for k, v in self.cells.items()}
        d["disk_free_ratio"] = None if self.disk_free_ratio is None else round(self.disk_free_ratio, 3)
        return d


def _age(now: float, ts: Any) -> float | None:
    if not isinstance(ts, int | float) or isinstance(ts, bool) or ts <= 0:
        return None
    return round(max(0.0, now - float(ts)), 1)


def parse_probe(name: str, probe: Mapping[str, Any], seconds: float = 0.0) -> BoxStatus:
    """A reachable box's probe JSON (remote.STATUS_PROBE) as a BoxStatus, ages computed
    against the box's own clock so a controller with a wrong clock does not skew them."""
    now = float(probe.get("now") or 0)
    st = probe.get("status") if isinstance(probe.get("status"), dict) else None
    b = BoxStatus(name=name, reachable=True, seconds=seconds, release=probe.get("release"),
                  uptime_s=probe.get("uptime_s"), service=probe.get("service"),
                  status_error=probe.get("status_error") if st is None else None,
                  backup_age_s=_age(now, probe.get("last_backup_at")),
                  disk_free_bytes=probe.get("disk_free_bytes"), disk_total_bytes=probe.get("disk_total_bytes"),
                  model=probe.get("model"), temp_c=probe.get("temp_c"))
    tun = probe.get("tunnel")
    if isinstance(tun, dict):
        age = tun.get("ssh_age_s")
        age = float(age) if isinstance(age, int | float) and not isinstance(age, bool) else None
        if tun.get("active") != "active":
            b.tunnel = "down"
        elif age is not None and age >= TUNNEL_UP_S:
            b.tunnel, b.tunnel_age_s = "up", age
        else:
            b.tunnel = "connecting"
    if probe.get("config_error") and b.status_error is None and st is None:
        b.status_error = probe["config_error"]
    if st is not None:
        b.version = st.get("version")
        jobs = st.get("jobs") or {}
        b.jobs = {k: int(v) for k, v in jobs.items() if isinstance(v, int)}
        b.queue_depth = st.get("queue_depth")
        b.oldest_queued_age_s = st.get("oldest_queued_age_seconds")
        pr = st.get("printer") or {}
        b.printer_state = pr.get("state")
        b.printer_error = pr.get("last_error")
        b.paper_low = bool(pr.get("paper_near_end")) or b.printer_state == "paper_low"
        b.last_print_age_s = _age(now, st.get("last_printed_at"))
        wix = st.get("wix") or {}
        b.intake = wix.get("intake")
        last_wix = max((t for t in (st.get("last_event_at"), wix.get("last_webhook_at"))
                        if isinstance(t, int | float)), default=None)
        b.last_wix_event_age_s = _age(now, last_wix)
        if wix.get("polling"):
            b.last_catchup_age_s = _age(now, wix.get("last_catchup_at"))
            b.last_catchup_error = wix.get("last_catchup_error")
    return assess(b)


def unreachable(name: str, error: str | None, seconds: float = 0.0) -> BoxStatus:
    return assess(BoxStatus(name=name, reachable=False, error=error or "unreachable", seconds=seconds))


def assess(b: BoxStatus) -> BoxStatus:
    """Fill `cells` (a level per table column) and `attention` (why, in words)."""
    cells: dict[str, Level] = {}
    why: list[str] = []

    def flag(cell: str, level: Level, reason: str | None = None) -> None:
        cells[cell] = max(cells.get(cell, Level.OK), level)
        if reason and level >= Level.WARN:
            why.append(reason)

    if not b.reachable:
        flag("reach", Level.BAD, f"unreachable: {b.error}")
    else:
        if b.service != "active":
            flag("service", Level.BAD, f"service {b.service or 'unknown'}")
        if b.status_error:
            flag("service", Level.BAD, f"/status not answering ({b.status_error})")
        if b.printer_state in PRINTER_BAD:
            flag("printer", Level.BAD, f"printer {b.printer_state.replace('_', ' ')}")
        elif b.printer_state in PRINTER_WARN:
            flag("printer", Level.WARN, f"printer {b.printer_state.replace('_', ' ')}")
        if b.printer_state == "paper_out":
            flag("paper", Level.BAD)  # said once, by the printer cell; "low" would be noise
        elif b.paper_low:
            flag("paper", Level.WARN, None if b.printer_state == "paper_low" else "paper low")
        if b.queue_depth:
            age = b.oldest_queued_age_s or 0
            lvl = Level.BAD if age >= QUEUE_BAD_S else Level.WARN if age >= QUEUE_WARN_S else Level.INFO
            flag("queue", lvl, f"{b.queue_depth} queued, oldest {fmt_age(age)}")
        if b.jobs.get("failed") or b.jobs.get("uncertain"):
            flag("queue", Level.WARN, f"{b.jobs.get('failed', 0)} failed, {b.jobs.get('uncertain', 0)} uncertain jobs")
        if b.backup_age_s is None:
            # A box younger than one backup interval has simply not had its first run yet.
            young = b.uptime_s is not None and b.uptime_s < BACKUP_WARN_S
            flag("backup", Level.INFO if young else Level.WARN, "no backup yet")
        elif b.backup_age_s >= BACKUP_BAD_S:
            flag("backup", Level.BAD, f"last backup {fmt_age(b.backup_age_s)} ago")
        elif b.backup_age_s >= BACKUP_WARN_S:
            flag("backup", Level.WARN, f"last backup {fmt_age(b.backup_age_s)} ago")
        ratio = b.disk_free_ratio
        if ratio is not None and ratio < DISK_BAD:
            flag("disk", Level.BAD, f"disk {ratio:.0%} free")
        elif ratio is not None and ratio < DISK_WARN:
            flag("disk", Level.WARN, f"disk {ratio:.0%} free")
        if b.temp_c is not None and b.temp_c >= TEMP_BAD_C:
            flag("temp", Level.BAD, f"{b.temp_c:.0f} °C")
        elif b.temp_c is not None and b.temp_c >= TEMP_WARN_C:
            flag("temp", Level.WARN, f"{b.temp_c:.0f} °C")
        if b.tunnel == "down":
            flag("tunnel", Level.WARN, "relay tunnel down: webhooks and the relay's SSH cannot reach the box")
        elif b.tunnel == "connecting":
            flag("tunnel", Level.INFO)
        if b.last_catchup_error or (b.last_catchup_age_s is not None and b.last_catchup_age_s >= CATCHUP_WARN_S):
            what = b.last_catchup_error or f"no search for {fmt_age(b.last_catchup_age_s or 0)}"
            flag("wix", Level.WARN, f"Wix search failing: {what}")
    b.cells = cells
    b.attention = why
    b.level = max(cells.values(), default=Level.OK)
    return b


def mark_version_drift(boxes: Sequence[BoxStatus]) -> None:
    """A box on another release than most of the fleet is worth a look (a failed canary,
    a box that was off during the last deploy)."""
    versions = Counter(b.release for b in boxes if b.reachable and b.release)
    if len(versions) < 2:
        return
    common = versions.most_common(1)[0][0]
    for b in boxes:
        if b.reachable and b.release and b.release != common:
            b.cells["release"] = max(b.cells.get("release", Level.OK), Level.WARN)
            b.attention.append(f"release {b.release}, most boxes run {common}")
            b.level = max(b.level, Level.WARN)


# --- formatting ----------------------------------------------------------------------------
def fmt_age(s: float | None) -> str:
    if s is None:
        return "-"
    s = max(0.0, s)
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{s // 60:.0f}m"
    if s < 86400:
        return f"{s // 3600:.0f}h{(s % 3600) // 60:02.0f}m"
    return f"{s // 86400:.0f}d{(s % 86400) // 3600:.0f}h"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if size < 1024 or unit == "T":
            return f"{size:.0f}{unit}" if unit in ("B", "K") else f"{size:.1f}{unit}"
        size /= 1024
    raise AssertionError("unreachable")


COLUMNS = ("box", "reach", "release", "uptime", "service", "queue", "printer", "paper", "last print",
           "last wix", "tunnel", "backup", "disk", "temp")
CELL_OF = {"reach": "reach", "release": "release", "service": "service", "queue": "queue", "printer": "printer",
           "paper": "paper", "last wix": "wix", "tunnel": "tunnel", "backup": "backup", "disk": "disk",
           "temp": "temp"}


def row(b: BoxStatus) -> dict[str, str]:
    if not b.reachable:
        return {c: "-" for c in COLUMNS} | {"box": b.name, "reach": "UNREACHABLE"}
    ratio = b.disk_free_ratio
    if b.queue_depth is None:
        queue = "-"
    elif b.queue_depth == 0:
        queue = "0"
    else:
        queue = f"{b.queue_depth} ({fmt_age(b.oldest_queued_age_s)})"
    return {
        "box": b.name,
        "reach": f"ok {b.seconds:.1f}s",
        "release": b.release or "-",
        "uptime": fmt_age(b.uptime_s),
        "service": (b.service or "?") + ("" if not b.status_error else " (no /status)"),
        "queue": queue,
        "printer": (b.printer_state or "-").replace("_", " "),
        "paper": ("-" if b.paper_low is None else "OUT" if b.printer_state == "paper_out"
                  else "LOW" if b.paper_low else "ok"),
        "last print": fmt_age(b.last_print_age_s) + (" ago" if b.last_print_age_s is not None else ""),
        "last wix": fmt_age(b.last_wix_event_age_s) + (" ago" if b.last_wix_event_age_s is not None else ""),
        "tunnel": "-" if b.tunnel is None else f"up {fmt_age(b.tunnel_age_s)}" if b.tunnel == "up" else b.tunnel,
        "backup": fmt_age(b.backup_age_s) + (" ago" if b.backup_age_s is not None else " none"),
        "disk": "-" if ratio is None else f"{fmt_bytes(b.disk_free_bytes)} {ratio:.0%}",
        "temp": "-" if b.temp_c is None else f"{b.temp_c:.0f}°C",
    }


COLOURS = {Level.OK: "", Level.INFO: "\033[36m", Level.WARN: "\033[33m", Level.BAD: "\033[1;31m"}
RESET = "\033[0m"
_ANSI = re.compile(r"\033\[[0-9;]*m")


def visible_len(s: str) -> int:
    return len(_ANSI.sub("", s))


def table(boxes: Sequence[BoxStatus], colour: bool = True) -> str:
    rows = [row(b) for b in boxes]
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in COLUMNS}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in COLUMNS).rstrip()]
    for b, r in zip(boxes, rows, strict=True):
        cells = []
        for c in COLUMNS:
            text = r[c].ljust(widths[c])
            lvl = b.level if c == "box" else b.cells.get(CELL_OF.get(c, ""), Level.OK)
            if colour and lvl > Level.OK:
                text = f"{COLOURS[lvl]}{text}{RESET}"
            cells.append(text)
        lines.append("  ".join(cells).rstrip())
    attention = [(b.name, w, b.level) for b in boxes for w in b.attention]
    if attention:
        lines.append("")
        lines.append("needs attention:")
        for name, what, lvl in attention:
            line = f"  {name}: {what}"
            lines.append(f"{COLOURS[lvl]}{line}{RESET}" if colour else line)
    ok = sum(1 for b in boxes if b.level < Level.WARN)
    lines.append("")
    lines.append(f"{len(boxes)} boxes: {ok} ok, {sum(1 for b in boxes if not b.reachable)} unreachable, "
                 f"{sum(1 for b in boxes if b.reachable and b.level >= Level.WARN)} need attention")
    return "\n".join(lines)


def as_json(boxes: Sequence[BoxStatus], **meta: Any) -> str:
    return json.dumps({**meta, "boxes": [b.as_json() for b in boxes]}, indent=2, ensure_ascii=False)
