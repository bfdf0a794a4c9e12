"""A virtual Epson TM-m30III on TCP: the demo's printer and the real peer in tests.

Every receipt (bytes up to and including a cut) lands in the output folder as
NNNN.bin, NNNN.png and then NNNN.txt, each written atomically. ``printer`` has the
behaviour model, ``control`` the HTTP fault switch, ``wire`` raw bytes for tests.

Choices where a real printer leaves room (tests rely on them):

* One raw session at a time. Later connections are accepted but not read until the
  current one closes, as an Epson interface queues them; replies (late process ids
  too) go to whichever session is current, and are dropped when none is.
* Real-time commands (DLE EOT, DLE DC4) are recognised between commands only, never
  inside another command's data.
* Held data survives a dropped connection. Lines printed before the drop stay on the
  paper, so they end up in the next NNNN file together with whatever follows until
  the next cut; ESC @ only clears the unfinished line. A command cut in half by the
  drop is discarded.
* ASB is per session (off at connect). GS a, GS r and GS ( H run in stream order, so
  they wait behind held print data.
* ``silent`` suppresses every reply but still prints; ``no-process-id`` ignores
  GS ( H only; ``POST /reset`` clears faults, not held data (use DLE DC4 fn8 for that).
* At most ``receive_buffer`` (1 MiB) is held; then the socket is not read, so a
  client's sends block as against a real printer with a full buffer.
"""

from .cli import configure_parser, run
from .control import ControlServer
from .printer import FAULT_NAMES, Faults, PrintedJob, VirtualPrinter

__all__ = [
    "FAULT_NAMES",
    "ControlServer",
    "Faults",
    "PrintedJob",
    "VirtualPrinter",
    "configure_parser",
    "run",
]
