"""Unwrap Wix's three webhook layers into one typed event.

Layer A (the JWT's `data`) names the event type and site; layer B (A's `data`) carries
the event id, the order id, the sequence and the order itself in one of several shapes.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .jwt import TokenError, decode_json_object

ORDER_EVENT_PREFIX = "wix.ecom.v1.order_"


class OrderEvent(msgspec.Struct, frozen=True, kw_only=True):
    event_id: str
    event_type: str
    slug: str
    instance_id: str
    order_id: str
    event_time: str | None
    sequence: int | None
    # The order as sent (intake normalises it); None for events that carry no entity.
    order: dict[str, Any] | None


def _as_object(value: Any, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return decode_json_object(value, what)
    if isinstance(value, dict):
        return value
    raise TokenError("malformed", f"{what} is neither an object nor a JSON string")


def _pick(container: dict[str, Any], names: tuple[str, str], what: str) -> dict[str, Any] | None:
    obj, as_json = names
    return _as_object(container.get(obj), what) or _as_object(container.get(as_json), what)


def extract_order(inner: dict[str, Any]) -> dict[str, Any] | None:
    """Find the order in any of the documented shapes of layer B."""
    created = _as_object(inner.get("createdEvent"), "createdEvent")
    if created is not None:
        return _pick(created, ("entity", "entityAsJson"), "createdEvent.entity")
    updated = _as_object(inner.get("updatedEvent"), "updatedEvent")
    if updated is not None:
        return _pick(updated, ("currentEntity", "currentEntityAsJson"), "updatedEvent.currentEntity")
    action = _as_object(inner.get("actionEvent"), "actionEvent")
    if action is not None:
        body = _pick(action, ("body", "bodyAsJson"), "actionEvent.body")
        if body is None:
            return None
        order = _as_object(body.get("order"), "actionEvent.body.order")
        # Some action events carry the order itself as the body.
        return order if order is not None else (body if "id" in body or "_id" in body else None)
    return None


def _sequence(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TokenError("malformed", f"entityEventSequence {value!r} is not an integer") from None


def parse_event(layer_a: str) -> OrderEvent:
    outer = decode_json_object(layer_a, "JWT data")
    event_type = outer.get("eventType")
    if not isinstance(event_type, str) or not event_type:
        raise TokenError("malformed", "JWT data lacks eventType")
    instance_id = outer.get("instanceId")
    inner_raw = outer.get("data")
    if not isinstance(inner_raw, str | dict):
        raise TokenError("malformed", "JWT data lacks the event payload (data)")
    inner = _as_object(inner_raw, "event data")
    assert inner is not None
    event_id = inner.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise TokenError("malformed", "event payload lacks its id")
    order = extract_order(inner)
    own_id = (order or {}).get("id") or (order or {}).get("_id")
    order_id = inner.get("entityId") or own_id
    if not isinstance(order_id, str) or not order_id:
        raise TokenError("malformed", "event names no order (entityId)")
    if own_id not in (None, order_id):
        raise TokenError("malformed", "entityId and the order's id differ")
    slug = inner.get("slug") or event_type.removeprefix(ORDER_EVENT_PREFIX)
    return OrderEvent(
        event_id=event_id,
        event_type=event_type,
        slug=str(slug),
        instance_id=str(instance_id or ""),
        order_id=order_id,
        event_time=inner.get("eventTime") if isinstance(inner.get("eventTime"), str) else None,
        sequence=_sequence(inner.get("entityEventSequence")),
        order=order,
    )
