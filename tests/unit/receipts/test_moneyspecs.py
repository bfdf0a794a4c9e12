"""Money formats made by the helper process (`python -m wix_printer.receipts.moneyspecs`)
and installed in the service print exactly what Babel prints."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import msgspec
import pytest
from babel.numbers import format_currency

from wix_printer.config import Config, ReceiptsConfig
from wix_printer.printing import render
from wix_printer.receipts import fmt
from wix_printer.receipts.text import glue

AMOUNTS = [Decimal(x) for x in ("0", "0.5", "7", "41.65", "-4.35", "1234.5", "98765.432")]
CURRENCIES = ["EUR", "CHF", "GBP", "USD", "JPY", "KWD", "INR"]


@pytest.fixture
def clean_install() -> Iterator[None]:
    saved = dict(fmt._installed)
    fmt._installed.clear()
    yield
    fmt._installed.clear()
    fmt._installed.update(saved)


def helper(locale: str) -> dict[str, fmt.Spec]:
    out = subprocess.run([sys.executable, "-m", "wix_printer.receipts.moneyspecs", locale],
                         capture_output=True, check=True, timeout=60).stdout
    return msgspec.json.decode(out, type=dict[str, fmt.Spec])


@pytest.mark.parametrize("locale", ["de_DE", "de_CH", "en_GB", "en_IN", "fr_FR"])
def test_installed_formats_print_what_babel_prints(locale: str, clean_install: None) -> None:
    specs = helper(locale)
    assert set(CURRENCIES) <= set(specs) and len(specs) > 250
    fmt.install(locale, specs)
    for code in CURRENCIES:
        assert fmt._installed[(locale, code)] is fmt._formatter(locale, code)
        for value in AMOUNTS:
            assert fmt.money(value, code, locale) == glue(format_currency(value, code, locale=locale)), (code, value)


def test_an_unknown_locale_gets_the_default_format_as_in_process(clean_install: None) -> None:
    specs = helper("xx_YY")
    assert specs["EUR"] == fmt._babel_formatter("de_DE", "EUR").spec()  # type: ignore[union-attr]


def test_the_helper_says_how_to_call_it() -> None:
    res = subprocess.run([sys.executable, "-m", "wix_printer.receipts.moneyspecs"], capture_output=True, text=True)
    assert res.returncode == 2 and "usage:" in res.stderr


def test_the_service_loads_them_and_carries_on_without_the_helper(
    clean_install: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = msgspec.structs.replace(Config(), receipts=ReceiptsConfig(money_locale="de_CH"))
    caplog.set_level(logging.INFO, "wix_printer.printing.render")
    assert asyncio.run(render.load_money_formats(cfg)) > 250
    assert ("de_CH", "CHF") in fmt._installed
    assert "money formats for de_CH: " in caplog.text
    fmt._installed.clear()
    monkeypatch.setattr(sys, "executable", "/bin/false")
    assert asyncio.run(render.load_money_formats(cfg)) == 0
    assert "helper process failed (exit 1" in caplog.text
    # Babel in this process instead: the same text.
    assert fmt.money(Decimal("41.65"), "CHF", "de_CH") == glue(format_currency(Decimal("41.65"), "CHF", locale="de_CH"))
