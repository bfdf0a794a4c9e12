"""Everything a receipt depends on besides the order, fixed for one rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..config import Config, PrinterConfig, ReceiptsConfig, RestaurantConfig
from .i18n import MONEY_LOCALES, Lang, lang_of
from .text import Codepage


@lru_cache(maxsize=32)
def zone(name: str) -> ZoneInfo:
    """The restaurant's zone; UTC if the name is unknown (config check reports that)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderContext:
    restaurant: RestaurantConfig = field(default_factory=RestaurantConfig)
    receipts: ReceiptsConfig = field(default_factory=ReceiptsConfig)
    codepage: Codepage = "cp1252"
    columns: int = 48
    # Injected so the pre-order decision and "printed at" times are testable.
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    language: Lang = "de"

    @classmethod
    def from_config(
        cls, cfg: Config, *, now: datetime | None = None, language: Lang | None = None
    ) -> RenderContext:
        return cls.build(cfg.restaurant, cfg.receipts, cfg.printer, now=now, language=language)

    @classmethod
    def build(
        cls,
        restaurant: RestaurantConfig,
        receipts: ReceiptsConfig,
        printer: PrinterConfig | None = None,
        *,
        now: datetime | None = None,
        language: Lang | None = None,
    ) -> RenderContext:
        printer = printer or PrinterConfig()
        lang = language or lang_of(receipts.language or restaurant.language)
        return cls(
            restaurant=restaurant,
            receipts=receipts,
            codepage=printer.codepage,
            columns=printer.columns,
            now=now or datetime.now(UTC),
            language=lang,
        )

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.restaurant.timezone)

    @property
    def money_locale(self) -> str:
        return self.receipts.money_locale or MONEY_LOCALES[self.language]
