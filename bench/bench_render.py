"""CPU time per receipt: build_receipt + to_escpos, per kind, for the Berlin sample.

    .venv/bin/python bench/bench_render.py [--iterations N]

Prints a markdown table (p50/p99 of time.process_time per receipt). Target: < 2 ms CPU
for a normal order on the appliance's class of CPU; the 300-line row is the worst case
Wix allows and is reported for information.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from wix_printer.config import Config, RestaurantConfig
from wix_printer.receipts import DOC_KINDS, RenderContext, build_receipt, to_escpos
from wix_printer.wix.model import Order, order_from_raw

CHANGES = ["NEU: 1x Tiramisu", "Döner Teller: OHNE Extra Feta", "ZEIT: 19:25 -> 19:45"]


def _orders() -> dict[str, Order]:
    raw: dict[str, Any] = json.loads(
        resources.files("wix_printer").joinpath("samples", "delivery-berlin.json").read_text("utf-8")
    )
    big = copy.deepcopy(raw)
    big["lineItems"] = [
        dict(raw["lineItems"][i % 5], id=f"id-{i}", productName={"original": f"Gericht Nr. {i} mit Beilage"})
        for i in range(300)
    ]
    return {"sample": order_from_raw(raw), "300 lines": order_from_raw(big)}


def _quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return p50 * 1000, p99 * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=2000)
    args = ap.parse_args()
    cfg = Config(restaurant=RestaurantConfig(name="Imbiss am Boxi", address="Boxhagener Straße 1"))
    ctx = RenderContext.from_config(cfg, now=datetime(2026, 3, 14, 17, 44, tzinfo=UTC))
    where = f"Python {platform.python_version()} on {platform.machine()}"
    print(f"{where}, {args.iterations} iterations per row\n")
    print("| order | kind | p50 ms CPU | p99 ms CPU | bytes |")
    print("|---|---|---:|---:|---:|")
    for label, order in _orders().items():
        n = args.iterations if label == "sample" else max(20, args.iterations // 50)
        for kind in DOC_KINDS:
            job = b""
            for _ in range(min(50, n)):  # warm caches (code-page map, Babel patterns)
                job = to_escpos(build_receipt(kind, order, ctx, changes=CHANGES), ctx.codepage, ctx.columns)
            samples: list[float] = []
            for _ in range(n):
                t0 = time.process_time()
                job = to_escpos(build_receipt(kind, order, ctx, changes=CHANGES), ctx.codepage, ctx.columns)
                samples.append(time.process_time() - t0)
            p50, p99 = _quantiles(samples)
            print(f"| {label} | {kind} | {p50:.3f} | {p99:.3f} | {len(job)} |")


if __name__ == "__main__":
    main()
