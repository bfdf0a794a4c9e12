"""``python -m wix_printer.devprinter``: same as ``wix-printer devprinter``."""

import sys

from .cli import main

sys.exit(main())
