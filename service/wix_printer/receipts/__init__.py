"""Receipts: pure functions from an order to printable documents and printer bytes.

doc = build_receipt("kitchen", order, RenderContext.from_config(cfg, now=now))
job = to_escpos(doc, cfg.printer.codepage, cfg.printer.columns)
"""

from __future__ import annotations

from ..wix.model import Order
from .build import build_receipt, is_preorder, navigation_url
from .context import RenderContext
from .diff import diff_orders
from .document import DOC_KINDS, Align, AnyBlock, DocKind, Document, Feed, QRCode, Row, Rule, Text
from .encode import CODEPAGE_TABLE, Format, layout, to_escpos, to_png, to_text
from .i18n import BANNER_COPY, BANNER_REPRINT_UNCERTAIN, Lang
from .text import Codepage, sanitize, wrap
from .validate import validate_layout


def render(
    order: Order, kind: DocKind, ctx: RenderContext, fmt: Format = "escpos", banner: str | None = None
) -> bytes | str:
    """Build and encode in one go: str for "text", bytes for "png" and "escpos"."""
    doc = build_receipt(kind, order, ctx, banner=banner)
    match fmt:
        case "text":
            return to_text(doc, ctx.columns)
        case "png":
            return to_png(doc, ctx.columns)
        case "escpos":
            return to_escpos(doc, ctx.codepage, ctx.columns)
        case _:
            raise ValueError(f"unknown format {fmt!r}")


__all__ = [
    "BANNER_COPY",
    "BANNER_REPRINT_UNCERTAIN",
    "CODEPAGE_TABLE",
    "DOC_KINDS",
    "Align",
    "AnyBlock",
    "Codepage",
    "DocKind",
    "Document",
    "Feed",
    "Format",
    "Lang",
    "QRCode",
    "RenderContext",
    "Row",
    "Rule",
    "Text",
    "build_receipt",
    "diff_orders",
    "is_preorder",
    "layout",
    "navigation_url",
    "render",
    "sanitize",
    "to_escpos",
    "to_png",
    "to_text",
    "validate_layout",
    "wrap",
]
