"""A virtual Epson TM-m30III on TCP: the demo's printer and the real peer in tests.

Every receipt (bytes up to and including a cut) lands in the output folder as
NNNN.bin, NNNN.png and then NNNN.txt. See ``printer`` for the behaviour model and
``control`` for the HTTP fault switch.
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
