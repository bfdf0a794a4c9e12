"""The five receipt kinds for the Berlin sample, compared with reviewed golden files.

After an intended layout change: UPDATE_GOLDEN=1 pytest tests/unit/receipts, then
review the diff of golden/*.txt like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wix_printer.receipts import BANNER_COPY, DOC_KINDS, RenderContext, build_receipt, diff_orders, to_text
from wix_printer.wix.model import Order

from .conftest import make_ctx

GOLDEN = Path(__file__).parent / "golden"
CHANGES = ["NEU: 1x Tiramisu", "Döner Teller: OHNE Extra Feta", "ZEIT: 19:25 -> 19:45"]


def _check(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden {path}; run with UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("kind", DOC_KINDS)
def test_golden_de_48(kind: str, order: Order, ctx: RenderContext) -> None:
    doc = build_receipt(kind, order, ctx, changes=CHANGES)  # type: ignore[arg-type]
    _check(kind, to_text(doc, 48))


@pytest.mark.parametrize("kind", ["kitchen", "driver", "customer"])
def test_golden_en_32(kind: str, order: Order) -> None:
    from wix_printer.config import ReceiptsConfig

    ctx = make_ctx(columns=32, receipts=ReceiptsConfig(language="en", footer="Enjoy!"))
    doc = build_receipt(kind, order, ctx, banner=BANNER_COPY["en"])  # type: ignore[arg-type]
    _check(f"{kind}-en-32", to_text(doc, 32))


def test_golden_pickup_cash_chf(pickup_order: Order, ctx: RenderContext) -> None:
    text = "".join(to_text(build_receipt(k, pickup_order, ctx), 48) for k in ("kitchen", "customer"))
    _check("pickup-zurich-cash", text)


def test_golden_change_from_diff(order: Order, ctx: RenderContext) -> None:
    import msgspec

    new = msgspec.structs.replace(order, line_items=order.line_items[1:], buyer_note="Bitte klingeln")
    doc = build_receipt("change", new, ctx, changes=diff_orders(order, new, "de"))
    _check("change-from-diff", to_text(doc, 48))
