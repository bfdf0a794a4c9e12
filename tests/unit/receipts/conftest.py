"""Fixtures for receipt tests: the shipped sample orders and a fixed clock."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest

from wix_printer.config import Config, PrinterConfig, ReceiptsConfig, RestaurantConfig
from wix_printer.receipts import RenderContext
from wix_printer.wix.model import Order, order_from_raw

# Two minutes after the Berlin sample was placed; its slot starts 43 minutes later.
NOW = datetime(2026, 3, 14, 17, 44, tzinfo=UTC)

RESTAURANT = RestaurantConfig(
    name="Imbiss am Boxi",
    address="Boxhagener Straße 1\n10245 Berlin",
    phone="+49 30 9876543",
    timezone="Europe/Berlin",
)
RECEIPTS = ReceiptsConfig(header="Danke für Ihre Bestellung!", footer="Guten Appetit!\nwww.imbiss.example")


def raw_sample(name: str = "delivery-berlin") -> dict[str, Any]:
    text = resources.files("wix_printer").joinpath("samples", f"{name}.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def make_ctx(
    *,
    columns: int = 48,
    codepage: str = "cp1252",
    now: datetime = NOW,
    receipts: ReceiptsConfig = RECEIPTS,
    restaurant: RestaurantConfig = RESTAURANT,
) -> RenderContext:
    cfg = Config(
        restaurant=restaurant,
        receipts=receipts,
        printer=PrinterConfig(columns=columns, codepage=codepage),  # type: ignore[arg-type]
    )
    return RenderContext.from_config(cfg, now=now)


@pytest.fixture
def raw() -> dict[str, Any]:
    return copy.deepcopy(raw_sample())


@pytest.fixture
def order() -> Order:
    return order_from_raw(raw_sample())


@pytest.fixture
def pickup_order() -> Order:
    return order_from_raw(raw_sample("pickup-zurich-cash"))


@pytest.fixture
def ctx() -> RenderContext:
    return make_ctx()


@pytest.fixture
def edit(raw: dict[str, Any]) -> Callable[[Callable[[dict[str, Any]], None]], Order]:
    """Order from the Berlin sample after `fn` has changed the raw dict."""

    def apply(fn: Callable[[dict[str, Any]], None]) -> Order:
        data = copy.deepcopy(raw)
        fn(data)
        return order_from_raw(data)

    return apply
