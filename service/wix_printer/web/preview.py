"""Receipt previews from the exact bytes the printer got.

The page shows what came out of the printer, not what the receipt code would print
now (an order may have changed since): the job's stored ESC/POS payload is run through
the virtual printer's parser and renderer. A job not sent yet is rendered the way the
worker would render it, and marked as such.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..devprinter.model import Receipt

# The virtual printer's parser and Pillow renderer are imported on the first preview,
# not at start-up: most boxes never show one, and they cost ~10 MB of RSS.


def receipts_of(payload: bytes) -> list[Receipt]:
    from ..devprinter import parser as escpos_parser
    from ..devprinter.model import JobBuilder

    builder = JobBuilder()
    out: list[Receipt] = []
    for ev in escpos_parser.Parser().feed(payload):
        done = builder.apply(ev)
        if done is not None:
            out.append(done)
    return out


def as_text(payload: bytes) -> str:
    return "\n".join(r.text for r in receipts_of(payload))


def as_png(payload: bytes) -> bytes:
    """The first cut-off piece (a job is one receipt; an interruption slip would come first)."""
    from ..devprinter.render import render_png

    receipts = [r for r in receipts_of(payload) if r.blocks]
    if not receipts:
        raise ValueError("no printable content in this job")
    return render_png(max(receipts, key=lambda r: len(r.blocks)))


class PngCache:
    """Printed payloads never change, and a PNG costs tens of milliseconds of CPU."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[tuple[int, int], bytes] = OrderedDict()

    def get(self, key: tuple[int, int]) -> bytes | None:
        png = self._items.get(key)
        if png is not None:
            self._items.move_to_end(key)
        return png

    def put(self, key: tuple[int, int], png: bytes) -> None:
        self._items[key] = png
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
