"""Wix eCommerce order payloads as msgspec Structs.

Unknown fields are allowed everywhere (Wix adds fields without notice); every field we
read is optional with a harmless default, because real payloads omit almost anything.
Both naming styles are accepted: the webhook/REST names (`id`, `createdDate`,
`addressLine`) and the JS SDK's (`_id`, `_createdDate`, `addressLine1`); `normalize`
maps the latter onto the former before decoding.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

RESTAURANTS_APP_ID = "9a5d83fd-8570-482e-81ab-cfa88942ee60"


class WixStruct(msgspec.Struct, rename="camel", frozen=True, kw_only=True, omit_defaults=True):
    """Shared options of every Wix payload Struct: camelCase on the wire, immutable."""


class Money(WixStruct, frozen=True):
    amount: str = "0"
    formatted_amount: str | None = None

    @property
    def value(self) -> Decimal:
        try:
            return Decimal(self.amount or "0")
        except InvalidOperation:
            return Decimal(0)


class Text(WixStruct, frozen=True):
    original: str = ""
    translated: str | None = None

    def best(self, prefer_translated: bool = True) -> str:
        if prefer_translated and self.translated:
            return self.translated
        return self.original or (self.translated or "")


class CatalogReference(WixStruct, frozen=True):
    catalog_item_id: str | None = None
    app_id: str | None = None
    options: dict[str, Any] | None = None


class Modifier(WixStruct, frozen=True):
    id: str | None = None
    quantity: int = 1
    label: Text = msgspec.field(default_factory=Text)
    price: Money | None = None


class ModifierGroup(WixStruct, frozen=True):
    id: str | None = None
    name: Text = msgspec.field(default_factory=Text)
    modifiers: list[Modifier] = msgspec.field(default_factory=list)


class DescriptionLine(WixStruct, frozen=True):
    name: Text = msgspec.field(default_factory=Text)
    plain_text: Text | None = None
    color: str | None = None


class TaxInfo(WixStruct, frozen=True):
    tax_amount: Money | None = None
    tax_rate: str | None = None
    tax_included_in_price: bool | None = None


class LineItem(WixStruct, frozen=True):
    id: str | None = None
    product_name: Text = msgspec.field(default_factory=Text)
    catalog_reference: CatalogReference | None = None
    quantity: int = 1
    modifier_groups: list[ModifierGroup] = msgspec.field(default_factory=list)
    description_lines: list[DescriptionLine] = msgspec.field(default_factory=list)
    price: Money | None = None
    total_discount: Money | None = None
    total_price_after_tax: Money | None = None
    total_price_before_tax: Money | None = None
    tax_info: TaxInfo | None = None
    payment_option: str | None = None

    @property
    def special_requests(self) -> str | None:
        opts = self.catalog_reference.options if self.catalog_reference else None
        req = opts.get("specialRequests") if opts else None
        return req if isinstance(req, str) and req.strip() else None


class StreetAddress(WixStruct, frozen=True):
    name: str | None = None
    number: str | None = None
    apt: str | None = None


class Geocode(WixStruct, frozen=True):
    latitude: float | None = None
    longitude: float | None = None


class Address(WixStruct, frozen=True):
    country: str | None = None
    subdivision: str | None = None
    city: str | None = None
    postal_code: str | None = None
    street_address: StreetAddress | None = None
    address_line: str | None = None
    address_line2: str | None = None
    geocode: Geocode | None = None

    @property
    def street_line(self) -> str:
        if self.address_line:
            return self.address_line
        if self.street_address and (self.street_address.name or self.street_address.number):
            return " ".join(p for p in (self.street_address.name, self.street_address.number) if p)
        return ""


class ContactDetails(WixStruct, frozen=True):
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    company: str | None = None

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


class AddressWithContact(WixStruct, frozen=True):
    address: Address | None = None
    contact_details: ContactDetails | None = None


class PickupDetails(WixStruct, frozen=True):
    address: Address | None = None
    pickup_method: str | None = None


class TimeSlot(WixStruct, frozen=True):
    from_: str | None = msgspec.field(default=None, name="from")
    to: str | None = None


class Logistics(WixStruct, frozen=True):
    shipping_destination: AddressWithContact | None = None
    pickup_details: PickupDetails | None = None
    instructions: str | None = None
    delivery_time: str | None = None
    delivery_time_slot: TimeSlot | None = None


class ShippingInfo(WixStruct, frozen=True):
    title: str | None = None
    logistics: Logistics | None = None
    cost: dict[str, Any] | None = None


class PriceSummary(WixStruct, frozen=True):
    subtotal: Money | None = None
    shipping: Money | None = None
    tax: Money | None = None
    discount: Money | None = None
    total: Money | None = None


class TaxBreakdown(WixStruct, frozen=True):
    tax_name: str | None = None
    rate: str | None = None
    aggregated_tax_amount: Money | None = None


class OrderTaxInfo(WixStruct, frozen=True):
    total_tax: Money | None = None
    tax_breakdown: list[TaxBreakdown] = msgspec.field(default_factory=list)


class Coupon(WixStruct, frozen=True):
    id: str | None = None
    code: str | None = None
    name: str | None = None
    amount: Money | None = None


class AppliedDiscount(WixStruct, frozen=True):
    discount_type: str | None = None
    coupon: Coupon | None = None
    discount_rule: dict[str, Any] | None = None
    merchant_discount: dict[str, Any] | None = None


class BalanceSummary(WixStruct, frozen=True):
    balance: Money | None = None
    paid: Money | None = None


class ChannelInfo(WixStruct, frozen=True):
    type: str | None = None


class BuyerInfo(WixStruct, frozen=True):
    email: str | None = None
    contact_id: str | None = None


class Order(WixStruct, frozen=True):
    id: str
    number: str | None = None
    created_date: str | None = None
    updated_date: str | None = None
    status: str | None = None
    payment_status: str | None = None
    fulfillment_status: str | None = None
    currency: str | None = None
    tax_included_in_prices: bool | None = None
    site_language: str | None = None
    buyer_language: str | None = None
    buyer_note: str | None = None
    channel_info: ChannelInfo | None = None
    buyer_info: BuyerInfo | None = None
    line_items: list[LineItem] = msgspec.field(default_factory=list)
    price_summary: PriceSummary | None = None
    tax_info: OrderTaxInfo | None = None
    applied_discounts: list[AppliedDiscount] = msgspec.field(default_factory=list)
    billing_info: AddressWithContact | None = None
    recipient_info: AddressWithContact | None = None
    shipping_info: ShippingInfo | None = None
    balance_summary: BalanceSummary | None = None

    @property
    def is_delivery(self) -> bool:
        lg = self.shipping_info.logistics if self.shipping_info else None
        return bool(lg and lg.shipping_destination)

    @property
    def is_pickup(self) -> bool:
        return not self.is_delivery


_SDK_RENAMES = {"_id": "id", "_createdDate": "createdDate", "_updatedDate": "updatedDate",
                "addressLine1": "addressLine"}


def normalize(obj: Any) -> Any:
    """Map SDK-style keys onto webhook/REST names and NFC-normalise every string.

    NFC first, because a note typed on a Mac arrives decomposed (a + combining
    diaeresis) and the printer's code page only has the composed characters.
    This walks every node of every incoming order on the webhook path, so it is written
    for speed: exact type checks, and ASCII strings (nearly all) are already NFC.
    """
    t = type(obj)
    if t is str:
        return obj if obj.isascii() else unicodedata.normalize("NFC", obj)
    if t is dict:
        out: dict[str, Any] = {}
        for k, v in obj.items():
            key = _SDK_RENAMES.get(k)
            if key is None:
                out[k] = normalize(v)
            elif key not in obj:
                out[key] = normalize(v)
            # else: the payload carries both names; the REST one wins
        return out
    if t is list:
        return [normalize(v) for v in obj]
    if isinstance(obj, str):  # str subclasses, never from a JSON decoder
        return unicodedata.normalize("NFC", obj)
    if isinstance(obj, dict | list):
        return normalize(dict(obj) if isinstance(obj, dict) else list(obj))
    return obj


def order_from_raw(raw: dict[str, Any]) -> Order:
    """Decode a raw order dict (either naming style) into an Order; raises msgspec.ValidationError."""
    return msgspec.convert(normalize(raw), Order, str_keys=True)


def order_from_stored(text: str | bytes) -> Order:
    """An order as the store keeps it: intake normalised it before storing, so it decodes
    straight from JSON. The worker does this for every receipt; walking the dict again in
    Python cost about 1 ms per order."""
    return msgspec.json.decode(text, type=Order)
