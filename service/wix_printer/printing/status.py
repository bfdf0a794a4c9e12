"""ESC/POS status bytes, parsed by hand.

python-escpos 3.1's helpers read a single reply without draining and call an empty
read "paper OK", so every byte is classified here instead.
"""

from __future__ import annotations

import enum

import msgspec

ESC_INIT = b"\x1b@"
DLE_EOT = b"\x10\x04"
ASB_ENABLE = b"\x1da\x0f"  # drawer, online/offline, error, paper sensor changes
ASB_DISABLE = b"\x1da\x00"
GS_R_PAPER = b"\x1dr\x01"
# DLE DC4 fn8: clear the receive and print buffers. The printer answers 37 25 00.
CLEAR_BUFFERS = b"\x10\x14\x08\x01\x03\x14\x01\x06\x02\x08"


def process_id_command(pid: str) -> bytes:
    """GS ( H fn48: the printer answers 37 22 <pid> 00 once everything before it has PRINTED."""
    data = pid.encode("ascii")
    if len(data) != 4 or not all(0x20 <= b <= 0x7E for b in data):
        raise ValueError(f"process id must be 4 printable ASCII characters: {pid!r}")
    return b"\x1d(H\x06\x00\x30\x30" + data


class PrinterState(enum.StrEnum):
    ONLINE = "online"
    PAPER_LOW = "paper_low"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    OFFLINE = "offline"
    ERROR = "error"
    UNREACHABLE = "unreachable"
    NOT_CONFIGURED = "not_configured"
    UNKNOWN = "unknown"


class Status(msgspec.Struct, frozen=True):
    offline: bool = False
    cover_open: bool = False
    paper_out: bool = False
    paper_near_end: bool = False
    error: bool = False

    @property
    def can_print(self) -> bool:
        return not (self.offline or self.cover_open or self.paper_out or self.error)

    @property
    def state(self) -> PrinterState:
        if self.cover_open:
            return PrinterState.COVER_OPEN
        if self.paper_out:
            return PrinterState.PAPER_OUT
        if self.error:
            return PrinterState.ERROR
        if self.offline:
            return PrinterState.OFFLINE
        if self.paper_near_end:
            return PrinterState.PAPER_LOW
        return PrinterState.ONLINE


def is_eot_reply(b: int) -> bool:
    """DLE EOT replies have the fixed pattern 0xx1xx10."""
    return b & 0x93 == 0x12


def is_asb_header(b: int) -> bool:
    """The first ASB byte has the fixed pattern 0xx1xx00."""
    return b & 0x93 == 0x10


def from_eot(replies: dict[int, int]) -> Status:
    """Combine the replies to DLE EOT 1..4 (keys are n)."""
    r1, r2, r3, r4 = (replies.get(n, 0x12) for n in (1, 2, 3, 4))
    return Status(
        offline=bool(r1 & 0x08),
        cover_open=bool(r2 & 0x04),
        paper_out=bool(r2 & 0x20) or bool(r4 & 0x60),
        paper_near_end=bool(r4 & 0x0C),
        # n=2 bit 6 is "error"; n=3 bits 3, 5, 6: cutter, unrecoverable, auto-recoverable.
        error=bool(r2 & 0x40) or bool(r3 & 0x68),
    )


def from_asb(b: bytes) -> Status:
    """The four Automatic Status Back bytes."""
    b1, b2, b3 = b[0], b[1], b[2]
    return Status(
        offline=bool(b1 & 0x08),
        cover_open=bool(b1 & 0x20),
        paper_out=bool(b3 & 0x0C),
        paper_near_end=bool(b3 & 0x03),
        error=bool(b2 & 0x6C),
    )
