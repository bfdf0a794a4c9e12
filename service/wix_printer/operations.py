"""What an operator can do to the queue (status page, API, CLI): reprint, test print,
retry, dismiss. Each is one IMMEDIATE transaction with a clear refusal when the job or
order is not in a state that allows it."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence

import msgspec

from .store import Store, SyncTx
from .store.db import OrderRow

REPRINTABLE = ("kitchen", "driver", "customer")


class OperationError(Exception):
    """Refused: `status` is the HTTP status an API answers with (404 unknown, 409 wrong state)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Created(msgspec.Struct, frozen=True):
    job_ids: list[int]


async def reprint(store: Store, order_id: str, kinds: Sequence[str] | None, banner: str) -> Created:
    """Print receipts of an order again, marked as a copy on paper."""
    bad = [k for k in kinds or () if k not in REPRINTABLE]
    if bad:
        raise OperationError(422, f"cannot reprint receipt kind {bad[0]!r}; one of {', '.join(REPRINTABLE)}")

    def go(tx: SyncTx) -> Created:
        order = tx.get_order(order_id)
        if order is None:
            raise OperationError(404, f"no order {order_id!r}")
        if order.status == "CANCELED":
            raise OperationError(409, f"order {order.number or order_id} is cancelled")
        jobs = tx.jobs_for_order(order_id)
        had = {j.kind for j in jobs if j.kind in REPRINTABLE}
        missing = [k for k in kinds or () if k not in had]
        if missing:
            # A copy of a receipt that never existed (a driver slip of a pickup) is not a copy.
            raise OperationError(409, f"order {order.number or order_id} has no {missing[0]} receipt to reprint")
        wanted = list(kinds) if kinds else sorted(had, key=REPRINTABLE.index)
        if not wanted:
            raise OperationError(409, f"order {order.number or order_id} has no receipts to reprint")
        ids = []
        for kind in wanted:
            copy = tx.next_copy(order_id, kind, order.revision)
            job_id = tx.put(order_id, kind, order.revision, copy, banner=banner,
                            detail=json.dumps({"reason": "operator reprint"}))
            if job_id is not None:
                ids.append(job_id)
        return Created(ids)

    return await store.write(go)


async def test_print(store: Store) -> Created:
    """A test page through the real queue and worker: proves the whole print path."""
    def go(tx: SyncTx) -> Created:
        order_id = f"test-{int(tx.now)}-{secrets.token_hex(3)}"
        tx.upsert_order(OrderRow(
            id=order_id, number=None, status="TEST", payment_status=None, fulfillment_status=None,
            updated_date=None, sequence=None, revision=1, printable=False, filtered_out=False, is_delivery=False,
            wanted_at=None, source="test", raw=json.dumps({"id": order_id}), printed_raw=None,
            first_seen_at=tx.now, updated_at=tx.now,
        ))
        job_id = tx.put(order_id, "test", 1)
        if job_id is None:
            raise OperationError(409, "test page already queued")
        return Created([job_id])

    return await store.write(go)


def _job_in(tx: SyncTx, job_id: int, states: tuple[str, ...], action: str) -> None:
    job = tx.get_job(job_id)
    if job is None:
        raise OperationError(404, f"no job {job_id}")
    if job.state not in states:
        raise OperationError(409, f"job {job_id} is {job.state}; only {' or '.join(states)} jobs can be {action}")


async def retry(store: Store, job_id: int) -> Created:
    def go(tx: SyncTx) -> Created:
        _job_in(tx, job_id, ("failed", "held"), "retried")
        tx.set_state(job_id, "queued", not_before=0)
        return Created([job_id])

    return await store.write(go)


async def retry_all_failed(store: Store) -> Created:
    return await store.write(lambda tx: Created(tx.requeue_failed()))


async def dismiss(store: Store, job_id: int, why: str = "dismissed by operator",
                  states: tuple[str, ...] = ("queued", "held", "failed")) -> Created:
    def go(tx: SyncTx) -> Created:
        _job_in(tx, job_id, states, "dismissed")
        tx.set_state(job_id, "cancelled", last_error=why)
        return Created([job_id])

    return await store.write(go)
