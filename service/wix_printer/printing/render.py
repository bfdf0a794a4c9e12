"""Glue between the queue and the pure receipt functions: a job row -> ESC/POS bytes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

from ..config import Config
from ..receipts import Document, Feed, Rule, Text, build_receipt, diff_orders, to_escpos
from ..receipts.context import RenderContext
from ..receipts.i18n import BANNER_REPRINT_UNCERTAIN, lang_of
from ..store import Job, OrderRow
from ..wix.model import Order, order_from_raw


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


def make_renderer(config: Config, clock: Callable[[], float] = time.time) -> Callable[[Job, OrderRow | None], bytes]:
    def render(job: Job, row: OrderRow | None) -> bytes:
        if row is None:
            raise ValueError(f"order {job.order_id} is missing from the store")
        order = filtered(order_from_raw(json.loads(row.raw)), config.wix.app_id_filter)
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
