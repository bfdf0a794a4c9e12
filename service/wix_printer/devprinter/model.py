"""What lands on the virtual paper: styled lines, QR codes, images, gaps.

``JobBuilder`` applies parsed events in stream order and hands out a finished
``Receipt`` at every cut. It knows nothing about sockets or faults.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from . import parser as p

log = logging.getLogger(__name__)

#: ESC t n -> Python codec. 0/16/19 are what the reference asks for; the rest are cheap extras.
CODE_PAGES: dict[int, str] = {
    0: "cp437",
    2: "cp850",
    3: "cp860",
    4: "cp863",
    5: "cp865",
    16: "cp1252",
    17: "cp866",
    18: "cp852",
    19: "cp858",
}

DEFAULT_CODE_PAGE = 0
TAB_COLUMNS = 8


@dataclass(frozen=True, slots=True)
class Style:
    bold: bool = False
    underline: int = 0
    width: int = 1
    height: int = 1
    inverted: bool = False
    font: int = 0


@dataclass(frozen=True, slots=True)
class Span:
    text: str
    style: Style


@dataclass(frozen=True, slots=True)
class TextLine:
    spans: tuple[Span, ...]
    align: int = 0

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.spans)


@dataclass(frozen=True, slots=True)
class QrBlock:
    data: bytes
    module: int = 3
    ec: int = 48  # 48 L, 49 M, 50 Q, 51 H
    align: int = 0

    @property
    def text(self) -> str:
        # The printer encodes the bytes as-is; phones read QR payloads as UTF-8.
        return f"[QR: {self.data.decode('utf-8', errors='replace')}]"


@dataclass(frozen=True, slots=True)
class ImageBlock:
    width_bytes: int
    height: int
    data: bytes = field(repr=False)
    align: int = 0
    scale_x: int = 1
    scale_y: int = 1

    @property
    def text(self) -> str:
        return f"[IMAGE {self.width_bytes * 8 * self.scale_x}x{self.height * self.scale_y}]"


@dataclass(frozen=True, slots=True)
class Gap:
    dots: int


Block = TextLine | QrBlock | ImageBlock | Gap


@dataclass(frozen=True, slots=True)
class Receipt:
    """Everything between two cuts, as printed, plus the stream bytes that produced it."""

    blocks: tuple[Block, ...]
    raw: bytes = field(repr=False)

    @property
    def text(self) -> str:
        lines = [b.text for b in self.blocks if not isinstance(b, Gap)]
        return "\n".join(lines) + "\n" if lines else ""


class JobBuilder:
    def __init__(self) -> None:
        self.code_page = DEFAULT_CODE_PAGE
        self._reset_modes()
        self._blocks: list[Block] = []
        self._raw = bytearray()
        self._spans: list[Span] = []
        self._line_align: int | None = None

    def _reset_modes(self) -> None:
        self.code_page = DEFAULT_CODE_PAGE
        self.style = Style()
        self.align = 0
        self.qr_module = 3
        self.qr_ec = 48
        self.qr_data = b""

    @property
    def empty(self) -> bool:
        """True when nothing has been printed since the last cut."""
        return not self._blocks and not self._spans

    @property
    def pending_raw(self) -> int:
        return len(self._raw)

    def discard_line(self) -> None:
        """Drop the unprinted line buffer (DLE DC4 fn8 clears it with the print buffer)."""
        self._spans.clear()
        self._line_align = None

    def apply(self, ev: p.Event) -> Receipt | None:
        self._raw += ev.raw
        match ev:
            case p.Text(data=data):
                self._add_text(self._decode(data))
            case p.LineFeed():
                self._end_line(force=True)
            case p.Tab():
                col = sum(len(s.text) * s.style.width for s in self._spans)
                self._add_text(" " * (TAB_COLUMNS - col % TAB_COLUMNS))
            case p.Init():
                # ESC @ clears the line buffer and modes; lines already printed stay on the paper.
                self._reset_modes()
                self.discard_line()
            case p.SetCodePage(page=page):
                if page not in CODE_PAGES:
                    log.warning("devprinter: code page %d not emulated, decoding as PC437", page)
                self.code_page = page
            case p.SetPrintMode(mode=m):
                self.style = replace(
                    self.style,
                    font=m & 1,
                    bold=bool(m & 0x08),
                    height=2 if m & 0x10 else 1,
                    width=2 if m & 0x20 else 1,
                    underline=1 if m & 0x80 else 0,
                )
            case p.SetBold(on=on):
                self.style = replace(self.style, bold=on)
            case p.SetUnderline(thickness=t):
                self.style = replace(self.style, underline=t)
            case p.SetAlign(align=a):
                self.align = a
            case p.SetSize(width=w, height=h):
                self.style = replace(self.style, width=w, height=h)
            case p.SetInverted(on=on):
                self.style = replace(self.style, inverted=on)
            case p.SetFont(font=f):
                self.style = replace(self.style, font=f)
            case p.FeedLines(lines=n):
                had_text = bool(self._spans)
                self._end_line(force=False)
                for _ in range(n - 1 if had_text else n):
                    self._blocks.append(TextLine((), self.align))
            case p.FeedDots(dots=n):
                self._end_line(force=False)
                self._blocks.append(Gap(n))
            case p.QrSetting(fn=fn, value=v):
                if fn == 67:
                    self.qr_module = min(max(v, 1), 16)
                elif fn == 69:
                    self.qr_ec = v if 48 <= v <= 51 else 48
            case p.QrStore(data=data):
                self.qr_data = data
            case p.QrPrint():
                self._end_line(force=False)
                if self.qr_data:
                    self._blocks.append(QrBlock(self.qr_data, self.qr_module, self.qr_ec, self.align))
            case p.RasterImage(width_bytes=wb, height=h, data=data, scale_x=sx, scale_y=sy):
                self._end_line(force=False)
                self._blocks.append(ImageBlock(wb, h, data, self.align, sx, sy))
            case p.Cut():
                self._end_line(force=False)
                receipt = Receipt(tuple(self._blocks), bytes(self._raw))
                self._blocks.clear()
                self._raw.clear()
                return receipt
            case _:
                pass
        return None

    def _decode(self, data: bytes) -> str:
        return data.decode(CODE_PAGES.get(self.code_page, "cp437"), errors="replace")

    def _add_text(self, text: str) -> None:
        if self._line_align is None:
            # Alignment counts only at the start of a line, as on the real printer.
            self._line_align = self.align
        if self._spans and self._spans[-1].style == self.style:
            self._spans[-1] = Span(self._spans[-1].text + text, self.style)
        else:
            self._spans.append(Span(text, self.style))

    def _end_line(self, *, force: bool) -> None:
        if not self._spans and not force:
            return
        align = self._line_align if self._line_align is not None else self.align
        self._blocks.append(TextLine(tuple(self._spans), align))
        self.discard_line()
