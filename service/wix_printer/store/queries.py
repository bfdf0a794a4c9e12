"""The status page's and the operator API's read-only SQL.

Only SELECTs; writes go through operations.py. The
job queries leave out `payload` (the ESC/POS bytes, kilobytes per receipt): a page
listing a busy day's tickets must not drag them all through the thread hop.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .db import Store


class JobInfo(msgspec.Struct, frozen=True):
    """A print job as the operator sees it."""

    id: int
    order_id: str
    kind: str
    revision: int
    copy: int
    state: str
    attempts: int
    banner: str | None
    last_error: str | None
    created_at: float
    updated_at: float
    printed_at: float | None


class OrderInfo(msgspec.Struct, frozen=True):
    """An order without its personal data (the raw Wix payload stays in the store)."""

    id: str
    number: str | None
    status: str | None
    payment_status: str | None
    is_delivery: bool
    wanted_at: str | None
    source: str
    revision: int
    first_seen_at: float
    updated_at: float


_JOB_COLS = ", ".join(JobInfo.__struct_fields__)
_ORDER_COLS = ", ".join(OrderInfo.__struct_fields__)


def _order(row: Any) -> OrderInfo:
    r = list(row)
    r[4] = bool(r[4])
    return OrderInfo(*r)


async def orders(store: Store, *, since: float | None = None, until: float | None = None,
                 status: str | None = None, limit: int = 50, offset: int = 0) -> list[OrderInfo]:
    where: list[str] = ["first_seen_at >= ?"]
    args: list[float | str] = [since or 0.0]
    if until is not None:
        where.append("first_seen_at < ?")
        args.append(until)
    if status:
        where.append("status = ?")
        args.append(status)
    rows = await store.fetchall(
        f"SELECT {_ORDER_COLS} FROM orders WHERE {' AND '.join(where)}"
        " ORDER BY first_seen_at DESC, id LIMIT ? OFFSET ?", (*args, limit, offset))
    return [_order(r) for r in rows]


async def order(store: Store, order_id: str) -> OrderInfo | None:
    row = await store.fetchone(f"SELECT {_ORDER_COLS} FROM orders WHERE id = ?", (order_id,))
    return _order(row) if row else None


async def jobs(store: Store, *, order_id: str | None = None, state: str | None = None, kind: str | None = None,
               limit: int = 100, offset: int = 0) -> list[JobInfo]:
    where: list[str] = []
    args: list[str] = []
    for col, value in (("order_id", order_id), ("state", state), ("kind", kind)):
        if value:
            where.append(f"{col} = ?")
            args.append(value)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await store.fetchall(
        f"SELECT {_JOB_COLS} FROM jobs {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
        (*args, limit, offset))
    return [JobInfo(*r) for r in rows]


async def job(store: Store, job_id: int) -> JobInfo | None:
    row = await store.fetchone(f"SELECT {_JOB_COLS} FROM jobs WHERE id = ?", (job_id,))
    return JobInfo(*row) if row else None


async def jobs_of_orders(store: Store, order_ids: list[str]) -> dict[str, list[JobInfo]]:
    """All jobs of a page of orders in one statement (not one per order)."""
    out: dict[str, list[JobInfo]] = {oid: [] for oid in order_ids}
    for i in range(0, len(order_ids), 500):  # SQLite's variable limit
        chunk = order_ids[i:i + 500]
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT {_JOB_COLS} FROM jobs WHERE order_id IN ({marks}) ORDER BY id"
        for r in await store.fetchall(sql, chunk):
            j = JobInfo(*r)
            out[j.order_id].append(j)
    return out


async def payload(store: Store, job_id: int) -> bytes | None:
    row = await store.fetchone("SELECT payload FROM jobs WHERE id = ?", (job_id,))
    return bytes(row[0]) if row and row[0] is not None else None


async def orders_by_source(store: Store) -> dict[str, int]:
    return {str(s): int(n) for s, n in await store.fetchall("SELECT source, COUNT(*) FROM orders GROUP BY source")}


async def outbox_depth(store: Store) -> int:
    row = await store.fetchone("SELECT COUNT(*) FROM outbox WHERE state = 'pending'")
    return int(row[0]) if row else 0


async def printed_since(store: Store, after: float, limit: int = 5000) -> list[tuple[int, float, float]]:
    """(id, printed_at, received_at) of first prints of order receipts printed at or after `after`."""
    rows = await store.fetchall(
        "SELECT id, printed_at, received_at FROM jobs WHERE printed_at >= ? AND received_at IS NOT NULL"
        " AND kind IN ('kitchen', 'driver', 'customer') AND copy = 1 ORDER BY printed_at, id LIMIT ?",
        (after, limit))
    return [(int(r[0]), float(r[1]), float(r[2])) for r in rows]
