"""validate_layout: the reasons `wix-printer config check` refuses a layout."""

from __future__ import annotations

from wix_printer.config import Config, PrinterConfig, ReceiptsConfig, RestaurantConfig
from wix_printer.receipts import validate_layout


def test_defaults_are_valid() -> None:
    assert validate_layout(Config()) == []


def test_each_problem_is_named() -> None:
    cfg = Config(
        receipts=ReceiptsConfig(
            pickup=["kitchen", "kitchen", "invoice"],  # type: ignore[list-item]
            delivery=[],
            copies={"kitchen": 9, "bogus": 1},
            header="Hallo\x1b@",
            footer="Tschüss 😀",
            preorder_after_minutes=-5,
            money_locale="xx_YY",
        ),
        printer=PrinterConfig(columns=40),
        restaurant=RestaurantConfig(timezone="Mars/Olympus"),
    )
    problems = "\n".join(validate_layout(cfg))
    for expected in (
        "`receipts.pickup`: unknown receipt kind 'invoice'",
        "`receipts.pickup`: listed more than once: kitchen",
        "`receipts.delivery`: empty",
        "`receipts.copies.kitchen`: must be 0..5, got 9",
        "`receipts.copies.bogus`: unknown receipt kind",
        "`receipts.header`: contains control characters (U+001B)",
        "`receipts.footer`: characters not printable in code page cp1252: '😀'",
        "`receipts.preorder_after_minutes`: must be >= 0",
        "`receipts.money_locale`: unknown locale 'xx_YY'",
        "`printer.columns`: must be one of",
        "`restaurant.timezone`: unknown time zone 'Mars/Olympus'",
    ):
        assert expected in problems
    assert len(validate_layout(cfg)) == 11


def test_codepage_matters_for_header() -> None:
    header = "„Willkommen“ – schön"
    ok = Config(receipts=ReceiptsConfig(header=header))
    assert validate_layout(ok) == []
    bad = Config(receipts=ReceiptsConfig(header=header), printer=PrinterConfig(codepage="cp858"))
    assert validate_layout(bad) == ["`receipts.header`: characters not printable in code page cp858: '–“„'"]


def test_missing_kitchen_ticket_is_reported() -> None:
    cfg = Config(receipts=ReceiptsConfig(pickup=["customer"]))
    assert validate_layout(cfg) == [
        "`receipts.pickup`: no kitchen ticket, the kitchen would never see pickup orders"
    ]


def test_driver_slip_for_pickup_is_allowed() -> None:
    assert validate_layout(Config(receipts=ReceiptsConfig(pickup=["kitchen", "driver"]))) == []
