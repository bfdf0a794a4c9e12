"""What the page shows, computed once per request from the services and the store."""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec
from litestar.di import NamedDependency

from ..printing.status import PrinterState
from ..services import Services
from ..store import queries
from .auth import Auth
from .i18n import Lang, translator
from .preview import PngCache

if TYPE_CHECKING:
    from jinja2 import Environment

    from .metrics import Metrics

TEMPLATES = __file__.rsplit("/", 1)[0] + "/templates"
STATIC = __file__.rsplit("/", 1)[0] + "/static"

GREEN, YELLOW, RED = "green", "yellow", "red"
LIVE_TTL = 1.0  # s; the page polls every 3 s, so nobody sees older than 4 s
# Random per process, so no order text can contain it and receive a session's token.
CSRF_SLOT = "csrf-" + secrets.token_hex(16)
_PRINTER_COLOUR = {
    PrinterState.ONLINE: GREEN, PrinterState.PAPER_LOW: YELLOW, PrinterState.UNKNOWN: YELLOW,
}
# Older than this, a waiting receipt means the kitchen is not getting its tickets.
QUEUE_STALE_SECONDS = 120.0
ORDER_KINDS = ("kitchen", "driver", "customer")


class JobView(msgspec.Struct):
    id: int
    kind: str
    state: str
    copy: int
    banner: str | None
    last_error: str | None
    printed_at: str
    can_retry: bool
    can_dismiss: bool
    sent: bool  # the payload is what the printer got


class OrderView(msgspec.Struct):
    id: str
    number: str
    time: str
    type: str  # delivery | pickup | test
    cancelled: bool
    jobs: list[JobView]
    reprint_kinds: list[str]


class Web:
    """Everything the page handlers share; built once by web_plugin()."""

    def __init__(self, services: Services, auth: Auth) -> None:
        self.services = services
        self.auth = auth
        self.pngs = PngCache()
        self.tz = ZoneInfo(services.config.restaurant.timezone)
        # Static files are served with a version in their URL so tablets cache them for good.
        self.asset_version = str(int(time.time()))
        # The rendered status block, per language, for LIVE_TTL: every tablet and phone polls
        # it, and rendering a busy day costs ~15 ms of the one event loop. Stored with a
        # placeholder where each session's CSRF token goes; an operator action drops it.
        self._live: dict[str, tuple[float, str]] = {}
        self._live_lock = asyncio.Lock()

    # Jinja2 and prometheus_client are loaded on the first page view / scrape, not at start:
    # together about 4 MB a box that nobody looks at does not need to hold.
    @cached_property
    def jinja(self) -> Environment:
        from jinja2 import Environment, FileSystemLoader, select_autoescape

        return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                           trim_blocks=True, lstrip_blocks=True, auto_reload=False)

    @cached_property
    def metrics(self) -> Metrics:
        from .metrics import Metrics

        return Metrics(self.services)

    async def live_html(self, lang: Lang, csrf: str) -> str:
        hit = self._live.get(lang)
        if hit is None or hit[0] <= time.monotonic():
            async with self._live_lock:  # one render for a burst of pollers, not fifty
                hit = self._live.get(lang)
                if hit is None or hit[0] <= time.monotonic():
                    html = self.jinja.get_template("_live.html").render(
                        t=translator(lang), lang=lang, csrf=CSRF_SLOT,
                        ov=await self.overview(lang), orders=await self.today(lang))
                    hit = (time.monotonic() + LIVE_TTL, html)
                    self._live[lang] = hit
        return hit[1].replace(CSRF_SLOT, csrf)

    def changed(self) -> None:
        """After an operator action: the next page shows its effect at once."""
        self._live.clear()

    # --- time -------------------------------------------------------------------------
    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)

    def today_start(self) -> float:
        return self.local(self.services.clock()).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    def hhmm(self, ts: float | None, t: dict[str, str]) -> str:
        if not ts:
            return t["never"]
        d = self.local(ts)
        if ts < self.today_start():
            return d.strftime("%d.%m. %H:%M")
        return d.strftime("%H:%M")

    def ago(self, ts: float | None, t: dict[str, str], lang: Lang) -> str:
        if not ts:
            return t["never"]
        secs = max(0, int(self.services.clock() - ts))
        if secs < 90:
            span = f"{secs} s"
        elif secs < 5400:
            span = f"{secs // 60} min"
        elif secs < 172800:
            span = f"{secs // 3600} h"
        else:
            span = f"{secs // 86400} d"
        return f"{t['ago']} {span}" if lang == "de" else f"{span} {t['ago']}"

    # --- the status block ----------------------------------------------------------------
    async def overview(self, lang: Lang) -> dict[str, Any]:
        s = self.services
        t = translator(lang)
        now = s.clock()
        counts = await s.store.counts()
        jobs: dict[str, int] = counts["jobs"]
        mon = s.printer_monitor
        p_colour = _PRINTER_COLOUR.get(mon.state, RED)
        if mon.state is PrinterState.ONLINE and mon.paper_near_end:
            p_colour = YELLOW
        p_label = t.get(f"printer_{mon.state}", str(mon.state))
        if mon.state is PrinterState.ONLINE and mon.paper_near_end:
            p_label = t["printer_paper_low"]
        printer = {"colour": p_colour, "state": str(mon.state), "label": p_label,
                   "since": f"{t['since']} {self.hhmm(mon.since, t)}",
                   "error": mon.last_error if p_colour == RED else None}

        wix = s.wix_status()
        w_colour, w_lines = GREEN, []
        if s.verifier is None and not wix.get("polling"):
            w_colour = RED
            w_lines.append(t["wix_not_configured"])
        w_lines.append(f"{t['last_webhook']}: {self.ago(wix.get('last_webhook_at'), t, lang)}")
        if wix.get("polling"):
            w_lines.append(f"{t['last_catchup']}: {self.ago(wix.get('last_catchup_at'), t, lang)}")
        else:
            w_lines.append(t["polling_off"])
        w_error = wix.get("last_catchup_error")
        if w_error:
            w_colour = RED if w_colour == RED else YELLOW

        oldest = counts.get("oldest_queued_at")
        stale = bool(oldest and now - oldest > QUEUE_STALE_SECONDS)
        q_colour = GREEN
        if jobs["uncertain"] or stale:
            q_colour = YELLOW
        if jobs["failed"] or jobs["held"]:
            q_colour = RED
        queue = {"colour": q_colour, "waiting": jobs["queued"], "printing": jobs["sending"],
                 "uncertain": jobs["uncertain"], "failed": jobs["failed"], "held": jobs["held"],
                 "oldest": self.ago(oldest, t, lang) if oldest else None}

        dead = [name for name, alive in s.task_alive.items() if not alive()]
        colours = [printer["colour"], w_colour, q_colour, RED if dead else GREEN]
        overall = RED if RED in colours else YELLOW if YELLOW in colours else GREEN
        headline = {GREEN: t["all_good"], YELLOW: t["attention"], RED: t["problem"]}[overall]
        return {
            "overall": overall, "headline": headline, "printer": printer,
            "wix": {"colour": w_colour, "lines": w_lines, "error": w_error},
            "queue": queue, "dead_tasks": dead,
            "last_print": f"{self.hhmm(counts.get('last_printed_at'), t)}"
                          + (f" ({self.ago(counts['last_printed_at'], t, lang)})"
                             if counts.get("last_printed_at") else ""),
            "now": self.local(now).strftime("%H:%M:%S"),
        }

    # --- today's orders ---------------------------------------------------------------
    async def today(self, lang: Lang, limit: int = 200) -> list[OrderView]:
        s = self.services
        t = translator(lang)
        orders = await queries.orders(s.store, since=self.today_start(), limit=limit)
        jobs = await queries.jobs_of_orders(s.store, [o.id for o in orders])
        out = []
        for o in orders:
            views = [JobView(id=j.id, kind=j.kind, state=j.state, copy=j.copy, banner=j.banner,
                             last_error=j.last_error, printed_at=self.hhmm(j.printed_at, t) if j.printed_at else "",
                             can_retry=j.state in ("failed", "held"),
                             can_dismiss=j.state in ("failed", "held", "queued"),
                             sent=j.state in ("printed", "uncertain") or j.printed_at is not None)
                     for j in jobs.get(o.id, [])]
            kinds = sorted({j.kind for j in views if j.kind in ORDER_KINDS}, key=ORDER_KINDS.index)
            typ = "test" if o.source == "test" or o.status == "TEST" else "delivery" if o.is_delivery else "pickup"
            out.append(OrderView(id=o.id, number=f"#{o.number}" if o.number else t["test_order"] if typ == "test"
                                 else o.id[:8], time=self.hhmm(o.first_seen_at, t), type=typ,
                                 cancelled=o.status == "CANCELED", jobs=views,
                                 reprint_kinds=[] if o.status == "CANCELED" else kinds))
        return out


# Handlers name it `web`; marked explicitly, as Litestar 3 drops inferred dependencies.
WebDep = NamedDependency[Web]
