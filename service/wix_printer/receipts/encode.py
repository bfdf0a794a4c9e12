"""Document -> printed lines -> ESC/POS bytes, plain text, or a PNG preview."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    # Pillow is only needed for PNG previews; the running service never makes one and
    # saves its ~7 MB of RSS by not importing it.
    from PIL import Image, ImageFont

    FontT = ImageFont.FreeTypeFont | ImageFont.ImageFont

from .document import Align, Document, Feed, QRCode, Row, Rule, Text
from .text import NBSP, Codepage, sanitize, wrap

# ESC t n: WPC1252 and PC858 (both carry umlauts, ß, € and Ø).
CODEPAGE_TABLE: dict[Codepage, int] = {"cp1252": 16, "cp858": 19}

ESC = b"\x1b"
GS = b"\x1d"


@dataclass(frozen=True, slots=True)
class Line:
    """One printed line, already wrapped to the usable width of its size."""

    text: str
    align: Align = "left"
    bold: bool = False
    width: int = 1
    height: int = 1
    invert: bool = False


Printed = Line | QRCode


def _clamp(n: int) -> int:
    return min(8, max(1, n))


def _clean(text: str, codepage: Codepage) -> str:
    if text.isascii() and text.isprintable():  # one plain line (a line break is not printable)
        return text
    return "\n".join(sanitize(p, codepage) for p in text.splitlines())


def layout(doc: Document, columns: int, codepage: Codepage) -> Iterator[Printed]:
    """Wrap every block to `columns`; the only place text meets the paper width."""
    columns = max(8, columns)
    for block in doc.blocks:
        match block:
            case Text():
                w, h = _clamp(block.width), _clamp(block.height)
                usable = max(1, columns // w)
                for line in wrap(_clean(block.text, codepage), usable, block.indent, block.hang):
                    yield Line(line, block.align, block.bold, w, h, block.invert)
            case Row():
                w, h = _clamp(block.width), _clamp(block.height)
                for line in _row(block, max(1, columns // w), codepage):
                    yield Line(line, "left", block.bold, w, h, False)
            case Rule():
                ch = sanitize(block.char, codepage)[:1] or "-"
                yield Line(ch * columns)
            case Feed():
                for _ in range(min(max(block.lines, 0), 20)):
                    yield Line("")
            case QRCode():
                yield block


def _row(row: Row, usable: int, codepage: Codepage) -> list[str]:
    cells = [sanitize(c, codepage) for c in row.cells]
    widths = [max(len(c), row.widths[i] if i < len(row.widths) else 0) for i, c in enumerate(cells)]
    right = " ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))
    left = _clean(row.left, codepage)
    if not right.strip():
        return wrap(left, usable, row.indent, row.hang)
    room = usable - len(right) - 1
    if room >= max(8, usable // 3):
        lines = wrap(left, room, row.indent, row.hang)
        lines[0] = lines[0].ljust(room) + " " + right
        return lines
    # Too narrow for side-by-side (58 mm, big amounts): amounts go on their own line.
    lines = wrap(left, usable, row.indent, row.hang)
    tail = wrap(" ".join(c for c in cells if c), usable)
    return lines + [t.rjust(usable) for t in tail]


# ---- ESC/POS -----------------------------------------------------------------------------

_ALIGN = {"left": 0, "center": 1, "right": 2}


def _font_for(columns: int) -> int:
    # 42 columns on 58 mm and 57 on 80 mm are Font B; 64 on 80 mm is Font C.
    return {42: 1, 57: 1, 64: 2}.get(columns, 0)


def _qr_bytes(data: str, module: int) -> bytes:
    def fn(payload: bytes) -> bytes:
        n = len(payload)
        return GS + b"(k" + bytes([n & 0xFF, n >> 8]) + payload

    # Only printable ASCII reaches the printer; builders URL-encode, this is the backstop.
    raw = "".join(c for c in data if " " <= c <= "~").encode("ascii")
    return (
        fn(b"1A2\x00")  # model 2
        + fn(b"1C" + bytes([min(16, max(1, module))]))
        + fn(b"1E1")  # error correction M
        + fn(b"1P0" + raw)
        + fn(b"1Q0")
    )


def _qr_module(data: str, dots: int, wanted: int) -> int:
    # Modules per side for level-M byte capacity; keep the code inside the paper.
    for cap, version in (
        (14, 1),
        (26, 2),
        (42, 3),
        (62, 4),
        (84, 5),
        (122, 7),
        (213, 10),
        (412, 15),
        (666, 20),
        (1000, 25),
        (2331, 40),
    ):
        if len(data) <= cap:
            side = 17 + 4 * version + 8
            return max(1, min(wanted, dots // side))
    return 1


def to_escpos(doc: Document, codepage: Codepage = "cp1252", columns: int = 48) -> bytes:
    """Complete job: reset, code page, content, feed, partial cut (no GS ( H: the worker adds it)."""
    out = bytearray(ESC + b"@" + ESC + b"t" + bytes([CODEPAGE_TABLE[codepage]]))
    font = _font_for(columns)
    if font:
        out += ESC + b"M" + bytes([font])
    dots = 384 if columns <= 32 else 576
    align, bold, size, inv = 0, False, 0, False
    for item in layout(doc, columns, codepage):
        if isinstance(item, QRCode):
            if align != 1:
                out += ESC + b"a\x01"
                align = 1
            out += _qr_bytes(item.data, _qr_module(item.data, dots, item.module_size)) + b"\n"
            continue
        a = _ALIGN[item.align]
        z = ((item.width - 1) << 4) | (item.height - 1)
        text = item.text
        if item.invert:
            # Inverse only blackens printed cells: pad so the bar spans the whole line.
            usable = columns // item.width
            text = _aligned(text, usable, item.align)
            a = 0
        if a != align:
            out += ESC + b"a" + bytes([a])
            align = a
        if item.bold != bold:
            out += ESC + b"E" + (b"\x01" if item.bold else b"\x00")
            bold = item.bold
        if z != size:
            out += GS + b"!" + bytes([z])
            size = z
        if item.invert != inv:
            out += GS + b"B" + (b"\x01" if item.invert else b"\x00")
            inv = item.invert
        out += text.replace(NBSP, " ").encode(codepage, "replace") + b"\n"
    out += ESC + b"a\x00" + ESC + b"E\x00" + GS + b"!\x00" + GS + b"B\x00"
    out += ESC + b"d\x03" + GS + b"VB\x00"
    return bytes(out)


def _aligned(text: str, usable: int, align: Align) -> str:
    if align == "center":
        return text.center(usable) if len(text) < usable else text
    if align == "right":
        return text.rjust(usable)
    return text.ljust(usable)


# ---- text ----------------------------------------------------------------------------------


def to_text(doc: Document, columns: int = 48) -> str:
    """What a person reads on the paper, one line per printed line (sizes not shown)."""
    out: list[str] = []
    for item in layout(doc, columns, doc.codepage):
        if isinstance(item, QRCode):
            qr = f"[QR: {item.data}]"
            out += [qr[i : i + columns] for i in range(0, len(qr), columns)]
            continue
        text = item.text.replace(NBSP, " ")
        if item.align != "left":
            text = _aligned(text, columns, item.align)
        out.append(text.rstrip())
    return "\n".join(out) + "\n"


# ---- PNG -----------------------------------------------------------------------------------

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_CELL_W, _CELL_H, _GAP = 12, 24, 6



@lru_cache(maxsize=32)
def _font(bold: bool, scale: int) -> FontT:
    from PIL import ImageFont

    path = _FONT_DIR / ("DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf")
    size = 19 * scale
    if path.exists():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def _draw_line(line: Line) -> Image.Image:
    from PIL import Image, ImageDraw

    scale = line.height
    cw, ch = _CELL_W * scale, _CELL_H * scale
    img = Image.new("L", (max(1, len(line.text)) * cw, ch), 0 if line.invert else 255)
    draw = ImageDraw.Draw(img)
    font = _font(line.bold, scale)
    ink = 255 if line.invert else 0
    for i, c in enumerate(line.text):
        if c not in (" ", NBSP):
            draw.text((i * cw + cw // 2, ch // 2), c, fill=ink, font=font, anchor="mm")
    if line.width != line.height:
        img = img.resize((max(1, len(line.text)) * _CELL_W * line.width, ch), Image.Resampling.BICUBIC)
    return img


def to_png(doc: Document, columns: int = 48) -> bytes:
    """A preview 12 dots per column wide (576 for 48, 384 for 32 columns)."""
    import qrcode  # type: ignore[import-untyped]  # only previews need it
    from PIL import Image

    width = columns * _CELL_W
    tiles: list[tuple[Image.Image, int]] = []
    for item in layout(doc, columns, doc.codepage):
        if isinstance(item, QRCode):
            qr = qrcode.QRCode(
                error_correction=qrcode.constants.ERROR_CORRECT_M,
                border=0,
                box_size=_qr_module(item.data, width, item.module_size),
            )
            qr.add_data(item.data)
            qr.make(fit=True)
            qimg = qr.make_image().get_image().convert("L")
            tiles.append((qimg, (width - qimg.width) // 2))
            continue
        text = item.text
        if item.invert:
            text = _aligned(text, columns // item.width, item.align)
        tile = _draw_line(Line(text, item.align, item.bold, item.width, item.height, item.invert))
        x = {"left": 0, "center": (width - tile.width) // 2, "right": width - tile.width}[
            "left" if item.invert else item.align
        ]
        tiles.append((tile, max(0, x)))
    margin = 24
    height = sum(t.height + _GAP for t, _ in tiles) + 2 * margin
    page = Image.new("L", (width, height), 255)
    y = margin
    for tile, x in tiles:
        page.paste(tile, (x, y))
        y += tile.height + _GAP
    buf = io.BytesIO()
    page.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


Format = Literal["text", "png", "escpos"]
