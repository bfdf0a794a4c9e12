"""The incremental parser and the job builder, without sockets."""

from __future__ import annotations

import random

import pytest

from wix_printer.devprinter import parser as p
from wix_printer.devprinter.model import Gap, JobBuilder, QrBlock, Receipt, Style, TextLine

SAMPLE = (
    b"\x1b@\x1bt\x10\x1ba\x01\x1d!\x11K\xfcche\n\x1d!\x00\x1bE\x01fett\x1bE\x00\n"
    b"\x1b-\x01u\x1b-\x00\x1dB\x01inv\x1dB\x00\n\x1b!\x38big\x1b!\x00\n"
    b"\x1b2\x1b3\x20\x1dL\x00\x00\x1dW\x40\x02\x1bp\x00\x19\xfa\x1b(A\x04\x00\x30\x02\x03\x05"
    b"\x1d(k\x04\x001A2\x00\x1d(k\x03\x001C\x06\x1d(k\x03\x001E1\x1d(k\x08\x001P0hello\x1d(k\x03\x001Q0"
    b"\x10\x04\x01\x10\x04\x04\x1dr\x01\x1da\xff\x1dv0\x00\x01\x00\x02\x00\xff\x00"
    b"\x1bd\x02\x1bJ\x10\x1dVB\x00\x1d(H\x06\x0000abcd"
    b"\x10\x14\x08\x01\x03\x14\x01\x06\x02\x08\x1dV\x00\x1dVA\x03"
)


def merged(events: list[p.Event]) -> list[p.Event]:
    """Text runs split differently depending on where reads end; join them to compare."""
    out: list[p.Event] = []
    for ev in events:
        if isinstance(ev, p.Text) and out and isinstance(out[-1], p.Text):
            joined = out[-1].data + ev.data
            out[-1] = p.Text(raw=joined, data=joined)
        else:
            out.append(ev)
    return out


def parse_all(data: bytes) -> list[p.Event]:
    return p.Parser().feed(data)


def test_every_byte_is_accounted_for() -> None:
    events = parse_all(SAMPLE)
    assert b"".join(ev.raw for ev in events) == SAMPLE
    assert not [ev for ev in events if isinstance(ev, p.Unknown)]


@pytest.mark.parametrize("split", range(1, len(SAMPLE)))
def test_a_split_anywhere_gives_the_same_events(split: int) -> None:
    parser = p.Parser()
    events = parser.feed(SAMPLE[:split]) + parser.feed(SAMPLE[split:])
    assert parser.pending == 0
    assert merged(events) == merged(parse_all(SAMPLE))


def test_byte_by_byte() -> None:
    parser = p.Parser()
    events = [ev for b in SAMPLE for ev in parser.feed(bytes([b]))]
    assert merged(events) == merged(parse_all(SAMPLE))


def test_key_commands_are_recognised() -> None:
    events = parse_all(SAMPLE)
    kinds = [type(ev) for ev in events]
    for kind in (
        p.Init,
        p.SetCodePage,
        p.SetAlign,
        p.SetSize,
        p.SetBold,
        p.SetUnderline,
        p.SetInverted,
        p.SetPrintMode,
        p.QrStore,
        p.QrPrint,
        p.RealtimeStatus,
        p.PaperStatusRequest,
        p.SetAsb,
        p.RasterImage,
        p.FeedLines,
        p.FeedDots,
        p.Cut,
        p.ProcessId,
        p.ClearBuffers,
    ):
        assert kind in kinds, kind
    assert [ev.ident for ev in events if isinstance(ev, p.ProcessId)] == [b"abcd"]
    assert [ev.raw for ev in events if isinstance(ev, p.Cut)] == [b"\x1dVB\x00", b"\x1dV\x00", b"\x1dVA\x03"]
    assert [ev.n for ev in events if isinstance(ev, p.RealtimeStatus)] == [1, 4]


@pytest.mark.parametrize(
    "command",
    [
        b"\x1b2",
        b"\x1b3\x40",
        b"\x1dL\x10\x00",
        b"\x1dW\x40\x02",
        b"\x1bp\x00\x19\xfa",
        b"\x1b(A\x04\x00\x30\x02\x03\x05",
        b"\x1b*\x21\x02\x00" + b"\x41" * 6,
        b"\x1dv0\x00\x01\x00\x01\x00\x41",
        b"\x1dk\x04ABC\x00",
        b"\x1dkI\x03ABC",
        b"\x1bD\x08\x10\x00",
        b"\x1c(A\x02\x00\x30\x41",
        b"\x1d8L\x02\x00\x00\x00\x30\x41",
        b"\x10\x05\x02",
        b"\x10\x14\x01\x00\x01",
    ],
)
def test_skipped_commands_have_the_right_length(command: bytes) -> None:
    events = parse_all(command + b"ok")
    assert events[-1] == p.Text(raw=b"ok", data=b"ok")
    assert b"".join(ev.raw for ev in events[:-1]) == command


def test_unknown_bytes_are_skipped_one_at_a_time() -> None:
    events = parse_all(b"\x1b\xfe\x01\x1d\xfeA")
    assert [type(ev) for ev in events] == [p.Unknown, p.Text, p.Unknown, p.Unknown, p.Text]
    assert events[-1].raw == b"\xfeA"  # only the prefix is dropped; the rest reads as text


def test_incomplete_command_is_kept_for_the_next_read() -> None:
    parser = p.Parser()
    assert parser.feed(b"ab\x1d(k\x08\x001P0he") == [p.Text(raw=b"ab", data=b"ab")]
    assert parser.pending == 10
    assert parser.feed(b"llo") == [p.QrStore(raw=b"\x1d(k\x08\x001P0hello", data=b"hello")]


def test_dle_dc4_fn8_needs_its_exact_tail() -> None:
    events = parse_all(b"\x10\x14\x08\x01\x03\x14\x01\x06\x02\x09")
    assert [type(ev) for ev in events] == [p.RealtimeIgnored]


def test_random_garbage_never_crashes() -> None:
    rng = random.Random(9100)
    for _ in range(200):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        parser = p.Parser()
        consumed = b"".join(ev.raw for ev in parser.feed(blob))
        assert consumed == blob[: len(blob) - parser.pending]


def build(data: bytes) -> list[Receipt]:
    builder = JobBuilder()
    receipts = []
    for ev in parse_all(data):
        receipt = builder.apply(ev)
        if receipt is not None:
            receipts.append(receipt)
    return receipts


@pytest.mark.parametrize(
    ("page", "encoded"),
    [
        (0, "äöü ÄÖÜ ß".encode("cp437")),
        (16, "äöü ÄÖÜ ß €".encode("cp1252")),
        (19, "äöü ÄÖÜ ß €".encode("cp858")),
    ],
)
def test_code_pages(page: int, encoded: bytes) -> None:
    [receipt] = build(b"\x1b@\x1bt" + bytes([page]) + encoded + b"\n\x1dVB\x00")
    expected = "äöü ÄÖÜ ß" + (" €" if page else "")
    assert receipt.text == expected + "\n"


def test_styles_alignment_and_blocks() -> None:
    [receipt] = build(SAMPLE.split(b"\x10\x14")[0])
    lines = [b for b in receipt.blocks if isinstance(b, TextLine)]
    assert lines[0].text == "Küche"
    assert lines[0].align == 1
    assert lines[0].spans[0].style == Style(width=2, height=2)
    assert lines[1].spans[0].style.bold
    assert lines[2].spans[0].style.underline == 1
    assert lines[2].spans[1].style.inverted
    assert lines[3].spans[0].style == Style(bold=True, width=2, height=2)
    [qr] = [b for b in receipt.blocks if isinstance(b, QrBlock)]
    assert (qr.data, qr.module, qr.ec, qr.align) == (b"hello", 6, 49, 1)
    assert any(isinstance(b, Gap) for b in receipt.blocks)
    assert receipt.text.splitlines() == [
        "Küche",
        "fett",
        "uinv",
        "big",
        "[QR: hello]",
        "[IMAGE 8x2]",
        "",
        "",
    ]


def test_feed_after_text_counts_the_printed_line() -> None:
    [receipt] = build(b"a\x1bd\x01b\n\x1bd\x02\x1dVB\x00")
    assert receipt.text == "a\nb\n\n\n"


def test_tab_pads_to_eight_columns() -> None:
    [receipt] = build(b"ab\tc\n\x1dVB\x00")
    assert receipt.text == "ab      c\n"
