"""Receipt -> PNG at the TM-m30III's 576 dots, so a person can check a layout by eye."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import qrcode  # type: ignore[import-untyped]  # qrcode ships no type information
from PIL import Image, ImageDraw, ImageFont

from .model import Gap, ImageBlock, QrBlock, Receipt, Span, Style, TextLine

PAPER_DOTS = 576
MARGIN = 8  # white space above and below only; the image is exactly the 576 printable dots wide
# Font A is 12x24 dots (48 columns), font B 9x17 (64 columns; 57 on paper but B fits 64 here).
CELL = {0: (12, 24), 1: (9, 17), 2: (9, 17)}
LINE_GAP = 6  # default line spacing is about 30 dots for a 24-dot font
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")

FontT = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=64)
def _font(size: int, bold: bool) -> FontT:
    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    path = FONT_DIR / name
    if path.exists():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=4096)
def _glyph(ch: str, font: int, bold: bool, width: int, height: int) -> Image.Image:
    """A glyph mask filling one character cell scaled by GS ! width/height."""
    cw, chh = CELL.get(font, CELL[0])
    # Render at the height multiple so big kitchen text stays crisp, then stretch sideways.
    base_h = chh * height
    base_w = cw * height
    size = int(base_h * 0.82)
    img = Image.new("L", (base_w, base_h), 0)
    draw = ImageDraw.Draw(img)
    draw.text((base_w / 2, base_h * 0.8), ch, fill=255, font=_font(size, bold), anchor="ms")
    target = (cw * width, base_h)
    if target != img.size:
        img = img.resize(target, Image.Resampling.BILINEAR)
    return img


def _cells(spans: tuple[Span, ...]) -> list[tuple[str, Style]]:
    return [(ch, s.style) for s in spans for ch in s.text]


def _cell_size(style: Style) -> tuple[int, int]:
    cw, ch = CELL.get(style.font, CELL[0])
    return cw * style.width, ch * style.height


def _wrap(line: TextLine) -> list[list[tuple[str, Style]]]:
    """Split a line where the real printer would wrap: at the right edge of the paper."""
    rows: list[list[tuple[str, Style]]] = [[]]
    x = 0
    for ch, style in _cells(line.spans):
        w, _ = _cell_size(style)
        if x + w > PAPER_DOTS and rows[-1]:
            rows.append([])
            x = 0
        rows[-1].append((ch, style))
        x += w
    return rows


def _offset(align: int, used: int) -> int:
    free = max(PAPER_DOTS - used, 0)
    return {0: 0, 1: free // 2, 2: free}.get(align, 0)


def _draw_row(canvas: Image.Image, y: int, row: list[tuple[str, Style]], align: int) -> int:
    if not row:
        return CELL[0][1] + LINE_GAP
    sizes = [_cell_size(st) for _, st in row]
    row_h = max(h for _, h in sizes)
    x = _offset(align, sum(w for w, _ in sizes))
    draw = ImageDraw.Draw(canvas)
    for (ch, st), (w, h) in zip(row, sizes, strict=True):
        top = y + row_h - h  # bottom-aligned, like mixed sizes on one printed line
        fg, bg = (255, 0) if st.inverted else (0, 255)
        if st.inverted:
            draw.rectangle((x, top, x + w - 1, top + h - 1), fill=0)
        if not ch.isspace():
            mask = _glyph(ch, st.font, st.bold, st.width, st.height)
            canvas.paste(fg, (x, top), mask)
        if st.underline:
            thick = max(st.underline, 1) * st.height
            draw.rectangle((x, top + h - thick, x + w - 1, top + h - 1), fill=0 if bg else 255)
        x += w
    return row_h + LINE_GAP


def _qr_image(block: QrBlock) -> Image.Image:
    ec = {
        48: qrcode.constants.ERROR_CORRECT_L,
        49: qrcode.constants.ERROR_CORRECT_M,
        50: qrcode.constants.ERROR_CORRECT_Q,
        51: qrcode.constants.ERROR_CORRECT_H,
    }[block.ec]
    qr = qrcode.QRCode(error_correction=ec, box_size=block.module, border=0)
    qr.add_data(block.data)
    qr.make(fit=True)
    img: Image.Image = qr.make_image(fill_color="black", back_color="white").get_image()
    return img.convert("L")


def _raster(block: ImageBlock) -> Image.Image:
    img = Image.frombytes("1", (block.width_bytes * 8, block.height), block.data)
    # In ESC/POS a set bit is a black dot; in PIL mode "1" a set bit is white.
    img = Image.eval(img.convert("L"), lambda v: 255 - v)
    if block.scale_x != 1 or block.scale_y != 1:
        img = img.resize((img.width * block.scale_x, img.height * block.scale_y), Image.Resampling.NEAREST)
    return img


def render(receipt: Receipt) -> Image.Image:
    pieces: list[tuple[Image.Image, int]] = []  # (strip image, height it occupies)
    for block in receipt.blocks:
        if isinstance(block, TextLine):
            for row in _wrap(block):
                strip_h = max((_cell_size(st)[1] for _, st in row), default=CELL[0][1]) + LINE_GAP
                strip = Image.new("L", (PAPER_DOTS, strip_h), 255)
                _draw_row(strip, 0, row, block.align)
                pieces.append((strip, strip_h))
        elif isinstance(block, Gap):
            pieces.append((Image.new("L", (PAPER_DOTS, block.dots), 255), block.dots))
        else:
            pic = _qr_image(block) if isinstance(block, QrBlock) else _raster(block)
            if pic.width > PAPER_DOTS:
                pic = pic.crop((0, 0, PAPER_DOTS, pic.height))
            strip = Image.new("L", (PAPER_DOTS, pic.height + LINE_GAP), 255)
            strip.paste(pic, (_offset(block.align, pic.width), 0))
            pieces.append((strip, strip.height))
    height = sum(h for _, h in pieces) + 2 * MARGIN
    canvas = Image.new("L", (PAPER_DOTS, height), 255)
    y = MARGIN
    for strip, h in pieces:
        canvas.paste(strip, (0, y))
        y += h
    return canvas


def render_png(receipt: Receipt) -> bytes:
    out = io.BytesIO()
    render(receipt).save(out, format="PNG", optimize=True)
    return out.getvalue()
