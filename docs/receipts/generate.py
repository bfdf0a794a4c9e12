"""Regenerate the receipt previews in this folder from the shipped Berlin sample.

.venv/bin/python docs/receipts/generate.py
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from wix_printer.config import Config, ReceiptsConfig, RestaurantConfig
from wix_printer.receipts import DOC_KINDS, RenderContext, build_receipt, to_png
from wix_printer.wix.model import order_from_raw

HERE = Path(__file__).resolve().parent


def main() -> None:
    raw = json.loads(
        resources.files("wix_printer").joinpath("samples", "delivery-berlin.json").read_text("utf-8")
    )
    order = order_from_raw(raw)
    cfg = Config(
        restaurant=RestaurantConfig(
            name="Imbiss am Boxi", address="Boxhagener Straße 1\n10245 Berlin", phone="+49 30 9876543"
        ),
        receipts=ReceiptsConfig(header="Danke für Ihre Bestellung!", footer="Guten Appetit!"),
    )
    ctx = RenderContext.from_config(cfg, now=datetime(2026, 3, 14, 17, 44, tzinfo=UTC))
    changes = ["NEU: 1x Tiramisu", "Döner Teller: OHNE Extra Feta", "ZEIT: 19:25–19:40 -> 19:45–20:00"]
    for kind in DOC_KINDS:
        doc = build_receipt(kind, order, ctx, changes=changes)
        (HERE / f"{kind}.png").write_bytes(to_png(doc, ctx.columns))
        print(HERE / f"{kind}.png")


if __name__ == "__main__":
    main()
