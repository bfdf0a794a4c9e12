"""`python -m wix_printer.receipts.moneyspecs LOCALE`: every currency's format in LOCALE
as JSON ({"EUR": [decimal, group, [grouping], [prefix], [suffix], digits], ...}).

The service runs this once at start (printing/render.load_money_formats) and keeps only
the result: Babel and its locale data (about 6 MiB) would otherwise stay in the service's
memory for as long as it runs, from the first amount printed on.
"""

from __future__ import annotations

import sys

import msgspec

from .fmt import export


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m wix_printer.receipts.moneyspecs LOCALE", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(msgspec.json.encode(export(argv[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
