"""Glue between the queue and the pure receipt functions: a job row -> ESC/POS bytes."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from ..config import Config
from ..receipts import Document, Feed, Rule, Text, build_receipt, diff_orders, fmt, to_escpos
from ..receipts.context import RenderContext
from ..receipts.i18n import BANNER_REPRINT_UNCERTAIN, lang_of
from ..store import Job, OrderRow
from ..wix.model import Order, order_from_stored

log = logging.getLogger(__name__)


def _lang(config: Config) -> str:
    return lang_of(config.receipts.language or config.restaurant.language)


def reprint_banner(config: Config) -> str:
    return BANNER_REPRINT_UNCERTAIN[lang_of(config.receipts.language or config.restaurant.language)]


INTERRUPTED = {"de": "Druck unterbrochen – Nachdruck folgt", "en": "Print interrupted – reprint follows"}


def interruption_slip(config: Config) -> bytes:
    """Ends whatever half receipt is on the paper after a link drop, with a cut, so the
    reprint never continues on the fragment's paper."""
    lang = lang_of(config.receipts.language or config.restaurant.language)
    doc = Document(kind="cancel", language=lang, codepage=config.printer.codepage, blocks=(
        Feed(lines=1), Rule(char="~"), Text(text=INTERRUPTED[lang], align="center", bold=True), Rule(char="~"),
    ))
    return to_escpos(doc, config.printer.codepage, config.printer.columns)


def filtered(order: Order, app_ids: list[str]) -> Order:
    """With an app-id filter, a mixed shop + restaurant order prints only the matching lines."""
    if not app_ids:
        return order
    import msgspec

    keep = [li for li in order.line_items if li.catalog_reference and li.catalog_reference.app_id in app_ids]
    return msgspec.structs.replace(order, line_items=keep)


TEST_PAGE = {"de": ("TESTDRUCK", "Drucker", "Zeichen"), "en": ("TEST PRINT", "Printer", "Characters")}


def test_page(config: Config, now: datetime) -> bytes:
    """Proves the path and shows what an integrator checks first: code page, width, cutter."""
    lang = lang_of(config.receipts.language or config.restaurant.language)
    title, printer_word, chars_word = TEST_PAGE[lang]
    p = config.printer
    where = f"{p.host}:{p.port}" if p.kind == "network" else (p.path or p.kind)
    cols = p.columns
    # Kind "kitchen" only selects nothing special in the encoder; the page is its own layout.
    doc = Document(kind="kitchen", language=lang, codepage=p.codepage, blocks=(
        Text(text=title, align="center", bold=True, width=2, height=2, invert=True),
        Text(text=config.restaurant.name, align="center", bold=True),
        Text(text=now.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"), align="center"),
        Rule(),
        Text(text=f"{printer_word}: {p.kind} {where}, {p.codepage}, {cols}"),
        Text(text=f"{chars_word}: ÄÖÜ äöü ß € Ø é ñ"),
        Text(text=("1234567890" * (cols // 10 + 1))[:cols]),
        Rule(),
    ))
    return to_escpos(doc, p.codepage, cols)


async def load_money_formats(config: Config, timeout: float = 20.0) -> int:
    """Have a helper process compute the money formats (receipts/moneyspecs.py) and install
    them, so this process never loads Babel's locale data (about 6 MiB for good, from the
    first amount printed on). On any failure Babel loads here as before, with a warning."""
    locale = RenderContext.from_config(config).money_locale
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wix_printer.receipts.moneyspecs", locale,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            raise RuntimeError(f"exit {proc.returncode}: {err.decode(errors='replace').strip()[-300:]}")
        n = fmt.install(locale, msgspec.json.decode(out, type=dict[str, fmt.Spec]))
    except Exception as e:  # printing must go on; it only costs memory
        log.warning("money formats for %s: helper process failed (%s); Babel loads in the service instead",
                    locale, e or type(e).__name__)
        return 0
    log.info("money formats for %s: %d currencies from a helper process", locale, n)
    return n


def make_renderer(config: Config, clock: Callable[[], float] = time.time) -> Callable[[Job, OrderRow | None], bytes]:
    def render(job: Job, row: OrderRow | None) -> bytes:
        if job.kind == "test":
            return test_page(config, datetime.fromtimestamp(clock(), UTC))
        if row is None:
            raise ValueError(f"order {job.order_id} is missing from the store")
        order = filtered(order_from_stored(row.raw), config.wix.app_id_filter)
        ctx = RenderContext.from_config(config, now=datetime.fromtimestamp(clock(), UTC))
        changes = json.loads(job.detail)["changes"] if job.kind == "change" and job.detail else None
        doc = build_receipt(job.kind, order, ctx, banner=job.banner, changes=changes)  # type: ignore[arg-type]
        return to_escpos(doc, ctx.codepage, ctx.columns)

    return render


def diff_for_intake(config: Config) -> Callable[[Order, Order], list[str]]:
    lang = lang_of(config.receipts.language or config.restaurant.language)

    tz = config.restaurant.timezone

    def diff(old: Order, new: Order) -> list[str]:
        return diff_orders(old, new, lang, tz=tz)

    return diff
