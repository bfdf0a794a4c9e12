"""Incremental ESC/POS stream parser for the virtual TM-m30III.

The parser is pure: bytes in, events out. It keeps whatever it cannot decode yet
(a command split across TCP reads) and resumes on the next ``feed``. Real-time
commands (DLE EOT, DLE DC4, DLE ENQ) are recognised only at command boundaries,
not inside another command's parameters or data; a real Epson also scans image
data for them, which is exactly why the reference tells clients to use native QR.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

ESC = 0x1B
GS = 0x1D
FS = 0x1C
DLE = 0x10
LF = 0x0A
HT = 0x09
CR = 0x0D
FF = 0x0C

#: DLE DC4 fn8 carries this fixed parameter tail; anything else is not the clear command.
CLEAR_BUFFERS_TAIL = bytes([0x01, 0x03, 0x14, 0x01, 0x06, 0x02, 0x08])


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded unit of the stream; ``raw`` is exactly the bytes it came from."""

    raw: bytes = field(repr=False)


# --- events the print engine executes in stream order ---------------------------


@dataclass(frozen=True, slots=True)
class Text(Event):
    data: bytes


@dataclass(frozen=True, slots=True)
class LineFeed(Event):
    pass


@dataclass(frozen=True, slots=True)
class Tab(Event):
    pass


@dataclass(frozen=True, slots=True)
class Init(Event):
    pass


@dataclass(frozen=True, slots=True)
class SetCodePage(Event):
    page: int


@dataclass(frozen=True, slots=True)
class SetPrintMode(Event):
    """ESC ! n: font B, emphasized, double height/width, underline in one byte."""

    mode: int


@dataclass(frozen=True, slots=True)
class SetBold(Event):
    on: bool


@dataclass(frozen=True, slots=True)
class SetUnderline(Event):
    thickness: int


@dataclass(frozen=True, slots=True)
class SetAlign(Event):
    align: int  # 0 left, 1 centre, 2 right


@dataclass(frozen=True, slots=True)
class SetSize(Event):
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class SetInverted(Event):
    on: bool


@dataclass(frozen=True, slots=True)
class SetFont(Event):
    font: int  # 0 = A, 1 = B, 2 = C


@dataclass(frozen=True, slots=True)
class FeedLines(Event):
    lines: int


@dataclass(frozen=True, slots=True)
class FeedDots(Event):
    dots: int


@dataclass(frozen=True, slots=True)
class Cut(Event):
    mode: int


@dataclass(frozen=True, slots=True)
class QrSetting(Event):
    fn: int
    value: int


@dataclass(frozen=True, slots=True)
class QrStore(Event):
    data: bytes


@dataclass(frozen=True, slots=True)
class QrPrint(Event):
    pass


@dataclass(frozen=True, slots=True)
class RasterImage(Event):
    """GS v 0: width in bytes (8 dots each), height in dots, 1 bit per dot, MSB left."""

    width_bytes: int
    height: int
    data: bytes
    scale_x: int = 1
    scale_y: int = 1


@dataclass(frozen=True, slots=True)
class ProcessId(Event):
    ident: bytes  # 4 bytes, echoed back once everything before has printed


@dataclass(frozen=True, slots=True)
class PaperStatusRequest(Event):
    n: int


@dataclass(frozen=True, slots=True)
class SetAsb(Event):
    n: int


@dataclass(frozen=True, slots=True)
class PrinterIdRequest(Event):
    n: int


@dataclass(frozen=True, slots=True)
class Ignored(Event):
    """A known command with no effect on the virtual paper (drawer, buzzer, spacing...)."""

    name: str


@dataclass(frozen=True, slots=True)
class Unknown(Event):
    """Bytes the parser did not understand; skipped so the stream keeps going."""


# --- real-time events: executed on receipt, even while printing is held ----------


@dataclass(frozen=True, slots=True)
class RealtimeStatus(Event):
    n: int


@dataclass(frozen=True, slots=True)
class ClearBuffers(Event):
    pass


@dataclass(frozen=True, slots=True)
class RealtimeIgnored(Event):
    name: str


REALTIME_EVENTS = (RealtimeStatus, ClearBuffers, RealtimeIgnored)


class _Incomplete(Exception):
    """Raised internally when the buffer ends inside a command."""


# ESC commands with a fixed number of parameter bytes and no effect on our paper.
_ESC_FIXED: dict[int, tuple[str, int]] = {
    0x20: ("ESC SP", 1),
    0x24: ("ESC $", 2),
    0x25: ("ESC %", 1),
    0x32: ("ESC 2", 0),
    0x33: ("ESC 3", 1),
    0x3C: ("ESC <", 0),
    0x3D: ("ESC =", 1),
    0x3F: ("ESC ?", 1),
    0x4C: ("ESC L", 0),
    0x52: ("ESC R", 1),
    0x53: ("ESC S", 0),
    0x54: ("ESC T", 1),
    0x55: ("ESC U", 1),
    0x56: ("ESC V", 1),
    0x57: ("ESC W", 8),
    0x5C: ("ESC \\", 2),
    0x63: ("ESC c", 2),
    0x69: ("ESC i", 0),
    0x6D: ("ESC m", 0),
    0x70: ("ESC p", 3),
    0x72: ("ESC r", 1),
    0x75: ("ESC u", 1),
    0x76: ("ESC v", 0),
    0x7B: ("ESC {", 1),
    0x0C: ("ESC FF", 0),
}

_GS_FIXED: dict[int, tuple[str, int]] = {
    0x24: ("GS $", 2),
    0x2F: ("GS /", 1),
    0x3A: ("GS :", 0),
    0x48: ("GS H", 1),
    0x4C: ("GS L", 2),
    0x50: ("GS P", 2),
    0x54: ("GS T", 1),
    0x57: ("GS W", 2),
    0x5C: ("GS \\", 2),
    0x5E: ("GS ^", 3),
    0x62: ("GS b", 1),
    0x66: ("GS f", 1),
    0x68: ("GS h", 1),
    0x77: ("GS w", 1),
    0x7A: ("GS z", 1),
    0x63: ("GS c", 0),
}

_FS_FIXED: dict[int, tuple[str, int]] = {
    0x21: ("FS !", 1),
    0x26: ("FS &", 0),
    0x2D: ("FS -", 1),
    0x2E: ("FS .", 0),
    0x43: ("FS C", 1),
    0x53: ("FS S", 2),
    0x57: ("FS W", 1),
    0x70: ("FS p", 2),
}


class Parser:
    """Feed it bytes as they arrive; it returns the complete events found so far."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back because they end inside a command."""
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[Event]:
        self._buf += data
        events: list[Event] = []
        pos = 0
        buf = bytes(self._buf)
        while pos < len(buf):
            try:
                event, end = self._parse_one(buf, pos)
            except _Incomplete:
                break
            events.append(event)
            pos = end
        del self._buf[:pos]
        return events

    # Each branch returns (event, end offset) or raises _Incomplete.
    def _parse_one(self, buf: bytes, pos: int) -> tuple[Event, int]:
        b = buf[pos]
        if b >= 0x20:
            end = pos + 1
            while end < len(buf) and buf[end] >= 0x20:
                end += 1
            return Text(raw=buf[pos:end], data=buf[pos:end]), end
        if b == LF:
            return LineFeed(raw=buf[pos : pos + 1]), pos + 1
        if b == HT:
            return Tab(raw=buf[pos : pos + 1]), pos + 1
        if b in (CR, FF, 0x00):
            # CR is ignored when auto line feed is off (the default); FF only matters in page mode.
            return Ignored(raw=buf[pos : pos + 1], name=f"0x{b:02X}"), pos + 1
        if b == ESC:
            return self._esc(buf, pos)
        if b == GS:
            return self._gs(buf, pos)
        if b == FS:
            return self._fs(buf, pos)
        if b == DLE:
            return self._dle(buf, pos)
        log.warning("devprinter: skipping unknown byte 0x%02X", b)
        return Unknown(raw=buf[pos : pos + 1]), pos + 1

    @staticmethod
    def _need(buf: bytes, end: int) -> None:
        if len(buf) < end:
            raise _Incomplete

    def _unknown(self, buf: bytes, pos: int, prefix: str) -> tuple[Event, int]:
        # Skip only the prefix byte: the next byte is re-read as text or a command,
        # so a garbled stream resynchronises as soon as possible.
        log.warning("devprinter: unknown command %s 0x%02X, skipping one byte", prefix, buf[pos + 1])
        return Unknown(raw=buf[pos : pos + 1]), pos + 1

    def _esc(self, buf: bytes, pos: int) -> tuple[Event, int]:
        self._need(buf, pos + 2)
        c = buf[pos + 1]

        def arg(count: int) -> bytes:
            self._need(buf, pos + 2 + count)
            return buf[pos + 2 : pos + 2 + count]

        if c == 0x40:  # ESC @
            return Init(raw=buf[pos : pos + 2]), pos + 2
        if c == 0x74:  # ESC t n
            n = arg(1)[0]
            return SetCodePage(raw=buf[pos : pos + 3], page=n), pos + 3
        if c == 0x21:  # ESC ! n
            return SetPrintMode(raw=buf[pos : pos + 3], mode=arg(1)[0]), pos + 3
        if c in (0x45, 0x47):  # ESC E n / ESC G n (double strike looks bold on thermal)
            return SetBold(raw=buf[pos : pos + 3], on=bool(arg(1)[0] & 1)), pos + 3
        if c == 0x2D:  # ESC - n
            n = arg(1)[0]
            return SetUnderline(raw=buf[pos : pos + 3], thickness=n - 48 if n >= 48 else n), pos + 3
        if c == 0x61:  # ESC a n
            n = arg(1)[0]
            align = n - 48 if n >= 48 else n
            return SetAlign(raw=buf[pos : pos + 3], align=min(max(align, 0), 2)), pos + 3
        if c == 0x4D:  # ESC M n
            n = arg(1)[0]
            return SetFont(raw=buf[pos : pos + 3], font=(n - 48 if n >= 48 else n) % 3), pos + 3
        if c == 0x64:  # ESC d n
            return FeedLines(raw=buf[pos : pos + 3], lines=arg(1)[0]), pos + 3
        if c == 0x4A:  # ESC J n
            return FeedDots(raw=buf[pos : pos + 3], dots=arg(1)[0]), pos + 3
        if c == 0x44:  # ESC D n1..nk NUL: tab stops, up to 32 plus terminator
            end = pos + 2
            while True:
                self._need(buf, end + 1)
                if buf[end] == 0 or end - (pos + 2) >= 32:
                    break
                end += 1
            return Ignored(raw=buf[pos : end + 1], name="ESC D"), end + 1
        if c == 0x26:  # ESC & y c1 c2 [x d1..d(y*x)]...: user-defined characters
            head = arg(3)
            y, c1, c2 = head
            end = pos + 5
            for _ in range(max(c2 - c1 + 1, 0)):
                self._need(buf, end + 1)
                x = buf[end]
                end += 1 + y * x
            self._need(buf, end)
            return Ignored(raw=buf[pos:end], name="ESC &"), end
        if c == 0x2A:  # ESC * m nL nH d1..dk: bit image
            m, nl, nh = arg(3)
            columns = nl + nh * 256
            end = pos + 5 + columns * (3 if m in (32, 33) else 1)
            self._need(buf, end)
            return Ignored(raw=buf[pos:end], name="ESC *"), end
        if c == 0x28:  # ESC ( x pL pH data: buzzer (ESC ( A) and friends
            self._need(buf, pos + 5)
            length = buf[pos + 3] + buf[pos + 4] * 256
            end = pos + 5 + length
            self._need(buf, end)
            return Ignored(raw=buf[pos:end], name=f"ESC ( {chr(buf[pos + 2])}"), end
        if c in _ESC_FIXED:
            name, count = _ESC_FIXED[c]
            arg(count)
            return Ignored(raw=buf[pos : pos + 2 + count], name=name), pos + 2 + count
        return self._unknown(buf, pos, "ESC")

    def _gs(self, buf: bytes, pos: int) -> tuple[Event, int]:
        self._need(buf, pos + 2)
        c = buf[pos + 1]

        def arg(count: int) -> bytes:
            self._need(buf, pos + 2 + count)
            return buf[pos + 2 : pos + 2 + count]

        if c == 0x21:  # GS ! n
            n = arg(1)[0]
            return SetSize(raw=buf[pos : pos + 3], width=(n >> 4 & 7) + 1, height=(n & 7) + 1), pos + 3
        if c == 0x42:  # GS B n
            return SetInverted(raw=buf[pos : pos + 3], on=bool(arg(1)[0] & 1)), pos + 3
        if c == 0x56:  # GS V m [n]
            m = arg(1)[0]
            if m in (0, 1, 48, 49):
                return Cut(raw=buf[pos : pos + 3], mode=m), pos + 3
            arg(2)
            return Cut(raw=buf[pos : pos + 4], mode=m), pos + 4
        if c == 0x61:  # GS a n
            return SetAsb(raw=buf[pos : pos + 3], n=arg(1)[0]), pos + 3
        if c == 0x72:  # GS r n
            return PaperStatusRequest(raw=buf[pos : pos + 3], n=arg(1)[0]), pos + 3
        if c == 0x49:  # GS I n
            return PrinterIdRequest(raw=buf[pos : pos + 3], n=arg(1)[0]), pos + 3
        if c == 0x28:  # GS ( x pL pH data
            return self._gs_paren(buf, pos)
        if c == 0x38:  # GS 8 x p1 p2 p3 p4 data: extended graphics
            self._need(buf, pos + 7)
            length = int.from_bytes(buf[pos + 3 : pos + 7], "little")
            end = pos + 7 + length
            self._need(buf, end)
            return Ignored(raw=buf[pos:end], name=f"GS 8 {chr(buf[pos + 2])}"), end
        if c == 0x76:  # GS v 0 m xL xH yL yH data
            self._need(buf, pos + 8)
            m = buf[pos + 3]
            width_bytes = buf[pos + 4] + buf[pos + 5] * 256
            height = buf[pos + 6] + buf[pos + 7] * 256
            end = pos + 8 + width_bytes * height
            self._need(buf, end)
            return (
                RasterImage(
                    raw=buf[pos:end],
                    width_bytes=width_bytes,
                    height=height,
                    data=buf[pos + 8 : end],
                    scale_x=2 if m in (1, 3, 49, 51) else 1,
                    scale_y=2 if m in (2, 3, 50, 51) else 1,
                ),
                end,
            )
        if c == 0x2A:  # GS * x y data: downloaded bit image
            x, y = arg(2)
            end = pos + 4 + x * y * 8
            self._need(buf, end)
            return Ignored(raw=buf[pos:end], name="GS *"), end
        if c == 0x6B:  # GS k m ...: barcode
            m = arg(1)[0]
            if m <= 6:
                end = pos + 3
                while True:
                    self._need(buf, end + 1)
                    if buf[end] == 0:
                        break
                    end += 1
                return Ignored(raw=buf[pos : end + 1], name="GS k"), end + 1
            self._need(buf, pos + 4)
            end = pos + 4 + buf[pos + 3]
            self._need(buf, end)
            return Ignored(raw=buf[pos:end], name="GS k"), end
        if c in _GS_FIXED:
            name, count = _GS_FIXED[c]
            arg(count)
            return Ignored(raw=buf[pos : pos + 2 + count], name=name), pos + 2 + count
        return self._unknown(buf, pos, "GS")

    def _gs_paren(self, buf: bytes, pos: int) -> tuple[Event, int]:
        self._need(buf, pos + 5)
        x = buf[pos + 2]
        length = buf[pos + 3] + buf[pos + 4] * 256
        end = pos + 5 + length
        self._need(buf, end)
        raw = buf[pos:end]
        body = buf[pos + 5 : end]
        if x == 0x6B and len(body) >= 2 and body[0] == 49:  # GS ( k, cn 49 = QR Code
            fn = body[1]
            if fn == 80 and len(body) >= 3:
                return QrStore(raw=raw, data=body[3:]), end
            if fn == 81:
                return QrPrint(raw=raw), end
            if fn in (65, 67, 69) and len(body) >= 3:
                return QrSetting(raw=raw, fn=fn, value=body[2]), end
            return Ignored(raw=raw, name=f"GS ( k QR fn{fn}"), end
        if x == 0x48 and len(body) >= 6 and body[0] == 48 and body[1] == 48:  # GS ( H fn48
            return ProcessId(raw=raw, ident=body[2:6]), end
        return Ignored(raw=raw, name=f"GS ( {chr(x)}"), end

    def _fs(self, buf: bytes, pos: int) -> tuple[Event, int]:
        self._need(buf, pos + 2)
        c = buf[pos + 1]
        if c == 0x28:  # FS ( x pL pH data
            self._need(buf, pos + 5)
            end = pos + 5 + buf[pos + 3] + buf[pos + 4] * 256
            self._need(buf, end)
            return Ignored(raw=buf[pos:end], name=f"FS ( {chr(buf[pos + 2])}"), end
        if c in _FS_FIXED:
            name, count = _FS_FIXED[c]
            self._need(buf, pos + 2 + count)
            return Ignored(raw=buf[pos : pos + 2 + count], name=name), pos + 2 + count
        return self._unknown(buf, pos, "FS")

    def _dle(self, buf: bytes, pos: int) -> tuple[Event, int]:
        self._need(buf, pos + 2)
        c = buf[pos + 1]
        if c == 0x04:  # DLE EOT n [a]
            self._need(buf, pos + 3)
            n = buf[pos + 2]
            if n in (7, 8):
                self._need(buf, pos + 4)
                return RealtimeIgnored(raw=buf[pos : pos + 4], name=f"DLE EOT {n}"), pos + 4
            return RealtimeStatus(raw=buf[pos : pos + 3], n=n), pos + 3
        if c == 0x05:  # DLE ENQ n
            self._need(buf, pos + 3)
            return RealtimeIgnored(raw=buf[pos : pos + 3], name="DLE ENQ"), pos + 3
        if c == 0x14:  # DLE DC4 fn ...
            self._need(buf, pos + 3)
            fn = buf[pos + 2]
            if fn == 8:
                self._need(buf, pos + 10)
                if buf[pos + 3 : pos + 10] == CLEAR_BUFFERS_TAIL:
                    return ClearBuffers(raw=buf[pos : pos + 10]), pos + 10
                return RealtimeIgnored(raw=buf[pos : pos + 10], name="DLE DC4 8 (bad tail)"), pos + 10
            count = {1: 2, 2: 2, 7: 1}.get(fn, 0)
            self._need(buf, pos + 3 + count)
            return RealtimeIgnored(raw=buf[pos : pos + 3 + count], name=f"DLE DC4 {fn}"), pos + 3 + count
        return self._unknown(buf, pos, "DLE")
