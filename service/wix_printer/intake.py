"""Turning Wix order states into stored orders and print jobs, exactly once.

Every path in (webhook, catch-up search, sample orders) ends in `Intake.ingest`, which
does all of its work in one IMMEDIATE transaction: the event-id dedupe gate, the
newest-state-wins rule, and the decision which receipts to queue. Nothing here talks to
Wix or the printer, so a webhook is answered as soon as this commits.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec

from .config import Config
from .store import OrderRow, Store, SyncTx
from .wix.model import Order, normalize, order_from_stored

log = logging.getLogger(__name__)

RENDERED_STATES = ("sending", "printed", "uncertain")
ORDER_KINDS = ("kitchen", "driver", "customer")
Outcome = Literal[
    "stored", "queued", "held", "updated", "changed", "cancelled", "stale", "duplicate", "ignored", "filtered"
]
DiffFn = Callable[[Order, Order], list[str]]


class IngestResult(msgspec.Struct, frozen=True):
    outcome: Outcome
    order_id: str
    jobs_created: int = 0


def _wanted_at(order: Order) -> str | None:
    lg = order.shipping_info.logistics if order.shipping_info else None
    if lg is None:
        return None
    if lg.delivery_time_slot and lg.delivery_time_slot.from_:
        return lg.delivery_time_slot.from_
    return lg.delivery_time


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def due_time(order: Order) -> float | None:
    """When the food is wanted (or, without a time slot, when it was ordered), as epoch."""
    return _epoch(_wanted_at(order)) or _epoch(order.created_date)


def stale_reason(order: Order, now: float, config: Config) -> str | None:
    """Why this order must not print by itself any more, or None.

    After an outage a box may learn of orders hours late; printing yesterday's dinner
    rush into today's kitchen helps nobody, so a human decides (status page).
    """
    rc = config.recovery
    if rc.hold_fulfilled and order.fulfillment_status == "FULFILLED":
        return "already fulfilled in Wix"
    due = due_time(order)
    if due is not None and now - due > rc.stale_after_minutes * 60:
        return f"wanted {int((now - due) // 60)} min ago (older than {rc.stale_after_minutes:g} min)"
    return None


def matches_app_filter(order: Order, app_ids: Sequence[str]) -> bool:
    if not app_ids:
        return True
    return any(li.catalog_reference and li.catalog_reference.app_id in app_ids for li in order.line_items)


def _is_older(new_seq: int | None, new_date: str | None, old: OrderRow) -> bool:
    # Sequences are only comparable between webhooks; the search API carries none, and
    # then updatedDate (one fixed ISO format from Wix, so it sorts as text) decides.
    if new_seq is not None and old.sequence is not None:
        return new_seq < old.sequence
    if new_date and old.updated_date:
        return new_date < old.updated_date
    return False


class Intake:
    def __init__(self, store: Store, config: Config, diff: DiffFn) -> None:
        self.store = store
        self.config = config
        self.diff = diff

    def kinds_for(self, order: Order) -> list[tuple[str, int]]:
        layout = self.config.receipts
        kinds = layout.delivery if order.is_delivery else layout.pickup
        return [(k, n) for k in kinds for n in range(1, layout.copies.get(k, 1) + 1)]

    async def ingest(
        self,
        raw: dict[str, Any] | None,
        *,
        event_id: str,
        event_type: str,
        order_id: str,
        sequence: int | None,
        source: str,
        received_at: float | None = None,
    ) -> IngestResult:
        # Every path in gets the same normal form: SDK names mapped, strings NFC.
        raw = normalize(raw) if raw is not None else None
        order = msgspec.convert(raw, Order, str_keys=True) if raw is not None else None
        raw_text = msgspec.json.encode(raw).decode() if raw is not None else ""

        def apply(tx: SyncTx) -> IngestResult:
            if not tx.record_event(event_id, source, event_type, order_id, sequence):
                return IngestResult("duplicate", order_id)
            if order is None:
                tx.set_event_outcome(event_id, "ignored")
                return IngestResult("ignored", order_id)
            result = self._apply(tx, order, raw_text, sequence, source, received_at)
            if result.outcome == "stale":
                tx.set_event_outcome(event_id, "stale")
            return result

        return await self.store.write(apply)

    def _apply(
        self, tx: SyncTx, order: Order, raw_text: str, sequence: int | None, source: str,
        received_at: float | None,
    ) -> IngestResult:
        old = tx.get_order(order.id)
        if old is not None:
            if old.status == "CANCELED" and order.status != "CANCELED":
                return IngestResult("stale", order.id)  # CANCELED is final
            if _is_older(sequence, order.updated_date, old):
                return IngestResult("stale", order.id)
        passes = matches_app_filter(order, self.config.wix.app_id_filter)
        revision = old.revision if old else 1
        jobs = tx.jobs_for_order(order.id)
        outcome: Outcome = "updated" if old else "stored"
        # Jobs reference the order row, so they are written after it; collect them first.
        to_put: list[dict[str, Any]] = []
        if order.status == "APPROVED" and not passes:
            outcome = "filtered"
            if old is None:
                log.warning("order %s (#%s) has no line item from the configured apps %s: not printed",
                            order.id, order.number, self.config.wix.app_id_filter)
        elif order.status == "APPROVED":
            if not any(j.kind in ORDER_KINDS for j in jobs):
                # A live webhook prints whatever its dates say; an order the catch-up
                # search had to find was missed during an outage and may be stale.
                why = stale_reason(order, tx.now, self.config) if source == "search" else None
                held = {"state": "held", "last_error": why} if why else {}
                to_put = [{"kind": kind, "copy": copy, **held} for kind, copy in self.kinds_for(order)]
                outcome = "held" if why else "queued"
            elif old is not None and old.printed_raw and any(
                j.kind in ORDER_KINDS and j.state in RENDERED_STATES for j in jobs
            ):
                changes = self.diff(order_from_stored(old.printed_raw), order)
                if changes:
                    revision += 1
                    # A newer change slip supersedes one not yet printed: it lists
                    # everything since the last printed state.
                    for j in jobs:
                        if j.kind == "change" and j.state == "queued":
                            tx.set_state(j.id, "cancelled", last_error="superseded")
                    # The slip carries the state it describes; once it is printed, that
                    # state is what the next change is compared against.
                    detail = {"changes": changes, "raw": raw_text}
                    to_put = [{"kind": "change", "detail": json.dumps(detail, ensure_ascii=False)}]
                    outcome = "changed"
        elif order.status == "CANCELED":
            tx.cancel_queued(order.id)
            if any(j.kind in ORDER_KINDS and j.state in RENDERED_STATES for j in jobs):
                to_put = [{"kind": "cancel"}]
            outcome = "cancelled"
        row = OrderRow(
            id=order.id,
            number=order.number,
            status=order.status,
            payment_status=order.payment_status,
            fulfillment_status=order.fulfillment_status,
            updated_date=order.updated_date,
            sequence=sequence if sequence is not None else (old.sequence if old else None),
            revision=revision,
            printable=order.status == "APPROVED" and passes,
            filtered_out=not passes,
            is_delivery=order.is_delivery,
            wanted_at=_wanted_at(order),
            source=old.source if old else source,
            raw=raw_text,
            printed_raw=old.printed_raw if old else None,
            first_seen_at=old.first_seen_at if old else tx.now,
            updated_at=tx.now,
        )
        tx.upsert_order(row)
        created = 0
        due = due_time(order)
        for spec in to_put:
            if tx.put(order.id, revision=revision, received_at=received_at, due_at=due, **spec):
                created += 1
        return IngestResult(outcome, order.id, created)
