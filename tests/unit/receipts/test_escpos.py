"""ESC/POS bytes: framing, code pages, sizes, native QR, and no command injection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from wix_printer.receipts import Document, QRCode, RenderContext, Row, Text, build_receipt, to_escpos
from wix_printer.wix.model import Order

from .conftest import make_ctx

Edit = Callable[[Callable[[dict[str, Any]], None]], Order]

# Every command the encoder may emit, with the number of parameter bytes after it.
FIXED = {
    b"\x1b@": 0,
    b"\x1bt": 1,
    b"\x1bM": 1,
    b"\x1ba": 1,
    b"\x1bE": 1,
    b"\x1bd": 1,
    b"\x1d!": 1,
    b"\x1dB": 1,
    b"\x1dVB": 1,
}


def parse(job: bytes) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """Split a job into commands and text lines; fail on any byte < 0x20 we did not send."""
    cmds: list[tuple[bytes, bytes]] = []
    lines: list[bytes] = []
    text = bytearray()
    i = 0
    while i < len(job):
        b = job[i]
        if b == 0x0A:
            lines.append(bytes(text))
            text.clear()
            i += 1
            continue
        if b >= 0x20:
            text.append(b)
            i += 1
            continue
        if job[i : i + 3] == b"\x1d(k":
            n = job[i + 3] | job[i + 4] << 8
            cmds.append((b"\x1d(k", job[i + 5 : i + 5 + n]))
            i += 5 + n
            continue
        for op, argc in FIXED.items():
            if job.startswith(op, i):
                cmds.append((op, job[i + len(op) : i + len(op) + argc]))
                i += len(op) + argc
                break
        else:
            raise AssertionError(f"unexpected control byte {b:#04x} at {i}: {job[i : i + 8]!r}")
    assert not text, "text after the cut"
    return cmds, lines


@pytest.mark.parametrize("kind", ["kitchen", "driver", "customer", "cancel", "change"])
@pytest.mark.parametrize(("codepage", "n"), [("cp1252", 16), ("cp858", 19)])
def test_framing(order: Order, kind: str, codepage: str, n: int) -> None:
    ctx = make_ctx(codepage=codepage)
    job = to_escpos(build_receipt(kind, order, ctx, changes=["x"]), codepage, 48)  # type: ignore[arg-type]
    assert job.startswith(b"\x1b@\x1bt" + bytes([n]))
    cmds, _ = parse(job)
    assert cmds[-2][0] == b"\x1bd"
    assert cmds[-1][0] == b"\x1dVB"
    assert job.endswith(b"\x1dVB" + cmds[-1][1])
    assert b"\x1d(H" not in job  # the worker appends the process id


def test_umlauts_and_euro_decode_in_cp1252(order: Order, ctx: RenderContext) -> None:
    job = to_escpos(build_receipt("customer", order, ctx), "cp1252", 48)
    _, lines = parse(job)
    text = "\n".join(x.decode("cp1252") for x in lines)
    for s in ("Döner Teller", "Größe: Ø 32 cm", "14,00 €", "Chiliöl", "Straße", "für"):
        assert s in text
    assert b"14,00 \x80" in job
    assert b"D\xf6ner" in job
    assert b"Gr\xf6\xdfe: \xd8 32" in job


def test_cp858_job_maps_dashes(edit: Edit) -> None:
    order = edit(lambda d: d.update(paymentStatus="NOT_PAID"))
    ctx = make_ctx(codepage="cp858")
    job = to_escpos(build_receipt("driver", order, ctx), "cp858", 48)
    _, lines = parse(job)
    text = "\n".join(x.decode("cp858") for x in lines)
    assert "NICHT BEZAHLT - 0,00 € kassieren" in text  # en dash is not in PC858
    assert "Müller-Lüdenscheidt" in text
    assert "\xd5".encode("latin-1") in job


def test_user_text_cannot_inject_commands(edit: Edit, ctx: RenderContext) -> None:
    evil = "A\x1b@\x1bp\x00\x19\xfa\x1dV\x00\x10\x14\x08\x01\x00\x00\x1b\x1bB\x7f\x9b\x1d(H\x06\x00Z"

    def fn(d: dict[str, Any]) -> None:
        d["buyerNote"] = evil
        d["number"] = evil
        d["lineItems"][0]["productName"] = {"original": evil}
        d["lineItems"][0]["catalogReference"]["options"]["specialRequests"] = evil
        d["lineItems"][0]["modifierGroups"][0]["modifiers"][0]["label"] = {"original": evil}
        d["shippingInfo"]["logistics"]["instructions"] = evil
        d["shippingInfo"]["logistics"]["shippingDestination"]["contactDetails"]["phone"] = evil
        d["currency"] = evil

    order = edit(fn)
    for kind in ("kitchen", "driver", "customer", "cancel", "change"):
        job = to_escpos(build_receipt(kind, order, ctx, changes=[evil]), "cp1252", 48)  # type: ignore[arg-type]
        cmds, lines = parse(job)  # raises on any control byte that is not ours
        assert all(b < 0x80 or b >= 0xA0 for x in lines for b in x if b in (0x81, 0x8D, 0x8F, 0x90, 0x9D))
        # Only our own ESC/GS commands: one reset, one code page, one cut.
        assert [c for c, _ in cmds].count(b"\x1b@") == 1
        assert [c for c, _ in cmds].count(b"\x1dVB") == 1
        assert b"\x1bp" not in job


def test_sizes_bold_invert_align(order: Order, ctx: RenderContext) -> None:
    cmds, lines = parse(to_escpos(build_receipt("kitchen", order, ctx), "cp1252", 48))
    sizes = {arg for c, arg in cmds if c == b"\x1d!"}
    assert b"\x33" in sizes  # order number 4x4
    assert b"\x11" in sizes  # items 2x2
    assert (b"\x1dB", b"\x01") in cmds
    assert (b"\x1bE", b"\x01") in cmds
    assert (b"\x1ba", b"\x01") in cmds
    assert any(line.strip() == b"#10234" for line in lines)


def test_inverted_lines_are_padded_to_full_width(ctx: RenderContext) -> None:
    doc = Document(kind="kitchen", blocks=(Text(text="STORNO", invert=True, width=2, align="center"),))
    _, lines = parse(to_escpos(doc, "cp1252", 48))
    assert lines[0] == b"STORNO".center(24)


def test_native_qr(order: Order, ctx: RenderContext) -> None:
    cmds, _ = parse(to_escpos(build_receipt("driver", order, ctx), "cp1252", 48))
    qr = [arg for c, arg in cmds if c == b"\x1d(k"]
    assert qr[0] == b"1A2\x00"  # model 2
    assert qr[1][:2] == b"1C"
    assert 1 <= qr[1][2] <= 16
    stored = next(a for a in qr if a.startswith(b"1P0"))
    assert stored[3:] == b"https://www.google.com/maps/dir/?api=1&destination=52.510600,13.456700"
    assert qr[-1] == b"1Q0"


def test_qr_data_is_ascii_only() -> None:
    doc = Document(kind="driver", blocks=(QRCode(data="https://x.example/?a=ü\x1b@b"),))
    cmds, _ = parse(to_escpos(doc, "cp1252", 48))
    stored = next(a for c, a in cmds if c == b"\x1d(k" and a.startswith(b"1P0"))
    assert stored == b"1P0https://x.example/?a=@b"


@pytest.mark.parametrize(("columns", "font"), [(32, None), (42, b"\x01"), (48, None), (64, b"\x02")])
def test_font_for_columns(order: Order, columns: int, font: bytes | None) -> None:
    ctx = make_ctx(columns=columns)
    cmds, lines = parse(to_escpos(build_receipt("customer", order, ctx), "cp1252", columns))
    assert next((a for c, a in cmds if c == b"\x1bM"), None) == font
    assert max(len(x) for x in lines) <= columns


def test_double_width_halves_the_line(ctx: RenderContext) -> None:
    doc = Document(
        kind="kitchen", blocks=(Text(text="wort " * 20, width=2), Row(left="a " * 30, cells=("9,99 €",)))
    )
    _cmds, lines = parse(to_escpos(doc, "cp1252", 48))
    wide = [x for x in lines if x.startswith(b"wort")]
    assert len(wide) == 4
    assert all(len(x) <= 24 for x in wide)
