"""PNG previews: paper-width images with a real, scannable-size QR code."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from wix_printer.receipts import Document, QRCode, Text, build_receipt, to_png
from wix_printer.wix.model import Order

from .conftest import make_ctx


@pytest.mark.parametrize(("columns", "width"), [(48, 576), (32, 384)])
def test_png_width(order: Order, columns: int, width: int) -> None:
    img = Image.open(io.BytesIO(to_png(build_receipt("driver", order, make_ctx(columns=columns)), columns)))
    assert img.width == width
    assert img.height > 600


def test_png_draws_ink_and_inverts() -> None:
    plain = Image.open(io.BytesIO(to_png(Document(kind="kitchen", blocks=(Text(text="Döner"),)))))
    inverted = Image.open(
        io.BytesIO(to_png(Document(kind="kitchen", blocks=(Text(text="Döner", invert=True),))))
    )
    assert plain.convert("L").getextrema()[0] < 64  # some black ink
    dark = sum(inverted.convert("L").histogram()[:128])
    light = sum(plain.convert("L").histogram()[:128])
    assert dark > 5 * light  # the inverted bar is mostly black


def test_png_qr_is_square_block() -> None:
    img = Image.open(
        io.BytesIO(to_png(Document(kind="driver", blocks=(QRCode(data="https://example.com/x"),))))
    )
    px = img.convert("L")
    bbox = Image.eval(px, lambda v: 255 - v).getbbox()
    assert bbox is not None
    w, h = bbox[2] - bbox[0], bbox[3] - bbox[1]
    assert w == h
    assert w >= 100
