"""The receipt document model: what to print, independent of the output format.

Blocks are logical (a paragraph, a price row); the encoders lay them out for a given
paper width, so one document renders on 80 mm and 58 mm paper alike.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from .text import Codepage

Align = Literal["left", "center", "right"]
DocKind = Literal["kitchen", "driver", "customer", "cancel", "change"]
DOC_KINDS: tuple[DocKind, ...] = ("kitchen", "driver", "customer", "cancel", "change")


class Block(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Shared options of every block: immutable, tagged by `type` when serialised."""


class Text(Block, tag="text", frozen=True, kw_only=True):
    """A paragraph, word-wrapped; `width`/`height` are the printer's 1..8 multipliers."""

    text: str
    align: Align = "left"
    bold: bool = False
    width: int = 1
    height: int = 1
    invert: bool = False
    indent: int = 0
    # Extra indent of continuation lines, so "2x Pizza..." wraps under "Pizza".
    hang: int = 0


class Row(Block, tag="row", frozen=True, kw_only=True):
    """Text on the left, right-aligned cells (prices) on the right of its first line."""

    left: str
    cells: tuple[str, ...] = ()
    # Minimum width per cell, so unit and line prices line up across rows.
    widths: tuple[int, ...] = ()
    bold: bool = False
    width: int = 1
    height: int = 1
    indent: int = 0
    hang: int = 0


class Rule(Block, tag="rule", frozen=True, kw_only=True):
    char: str = "-"


class Feed(Block, tag="feed", frozen=True, kw_only=True):
    lines: int = 1


class QRCode(Block, tag="qr", frozen=True, kw_only=True):
    """Printed with the printer's native QR command; `data` must be printable ASCII."""

    data: str
    module_size: int = 6


AnyBlock = Text | Row | Rule | Feed | QRCode


class Document(msgspec.Struct, frozen=True, kw_only=True):
    kind: DocKind
    blocks: tuple[AnyBlock, ...]
    codepage: Codepage = "cp1252"
    language: Literal["de", "en"] = "de"
