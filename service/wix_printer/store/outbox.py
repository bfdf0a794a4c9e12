"""The notifier's SQL: the `outbox` table (migration 2) and incident tracks in `sync_state`.

Nothing here needs a schema change of its own. Incident tracks live in sync_state (one
JSON row per kind and key, prefix `notify:track:`) so an open incident, its repeat count
and its throttle window survive a restart together with the mails queued for it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .db import Store, Tx

TRACK_PREFIX = "notify:track:"
RUNNING_KEY = "notify:running"


class OutboxRow(msgspec.Struct, frozen=True):
    id: int
    key: str
    kind: str
    payload: str
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    sent_at: float | None


_COLS = ", ".join(OutboxRow.__struct_fields__)


class Track(msgspec.Struct, kw_only=True):
    """What the notifier remembers about one kind (and key) between mails."""

    kind: str
    subkey: str
    open: bool = False
    incident: str = ""  # idempotency base of every mail about this incident
    started_at: float = 0.0
    detail: dict[str, Any] = msgspec.field(default_factory=dict)
    resolved_at: float | None = None  # set while a "resolved" waits out resolve_delay
    alerted: bool = False
    escalated: bool = False
    repeats: int = 0  # occurrences not yet told in any mail
    repeats_since: float | None = None
    last_alert_at: float | None = None

    @property
    def name(self) -> str:
        return track_name(self.kind, self.subkey)


async def _one(tx: Tx, sql: str, args: tuple[Any, ...]) -> Any:
    async with tx.conn.execute(sql, args) as cur:
        return await cur.fetchone()


def track_name(kind: str, subkey: str) -> str:
    return f"{TRACK_PREFIX}{kind}:{subkey}"


async def get_track(tx: Tx, kind: str, subkey: str) -> Track | None:
    row = await _one(tx, "SELECT value FROM sync_state WHERE key = ?", (track_name(kind, subkey),))
    return msgspec.json.decode(row[0], type=Track) if row else None


async def put_track(tx: Tx, track: Track) -> None:
    await tx.set_sync(track.name, msgspec.json.encode(track).decode())


async def all_tracks(store: Store) -> list[Track]:
    rows = await store.fetchall(
        "SELECT value FROM sync_state WHERE key >= ? AND key < ? ORDER BY key",
        (TRACK_PREFIX, TRACK_PREFIX[:-1] + chr(ord(TRACK_PREFIX[-1]) + 1)),
    )
    return [msgspec.json.decode(r[0], type=Track) for r in rows]


async def delete_sync(tx: Tx, key: str) -> None:
    await tx.conn.execute("DELETE FROM sync_state WHERE key = ?", (key,))


async def get_sync(tx: Tx, key: str) -> str | None:
    row = await _one(tx, "SELECT value FROM sync_state WHERE key = ?", (key,))
    return str(row[0]) if row else None


async def enqueue(tx: Tx, key: str, kind: str, payload: dict[str, Any]) -> bool:
    """False when a mail with this idempotency key exists already (sent or not)."""
    cur = await tx.conn.execute(
        "INSERT OR IGNORE INTO outbox (key, kind, payload, state, attempts, next_attempt_at, created_at)"
        " VALUES (?, ?, ?, 'pending', 0, 0, ?)",
        (key, kind, msgspec.json.encode(payload).decode(), tx.now),
    )
    return cur.rowcount == 1


async def queued_since(tx: Tx, since: float) -> int:
    """Mails queued after `since`, for the hourly cap; test mails do not count."""
    row = await _one(tx, "SELECT COUNT(*) FROM outbox WHERE created_at >= ? AND kind != 'test'", (since,))
    return int(row[0])


async def claim_due(store: Store, now: float, lease: float, limit: int = 20) -> list[OutboxRow]:
    """Take due mails; pushing next_attempt_at out first means a crash mid-send retries
    after the lease instead of in a tight loop, and counts as an attempt."""
    async with store.transaction() as tx, tx.conn.execute(
        f"UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE id IN"
        f" (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?)"
        f" RETURNING {_COLS}",
        (now + lease, now, limit),
    ) as cur:
        rows = [OutboxRow(*r) for r in await cur.fetchall()]
    return sorted(rows, key=lambda r: r.id)


async def mark_sent(store: Store, row_id: int, now: float) -> None:
    async with store.transaction() as tx:
        await tx.conn.execute(
            "UPDATE outbox SET state = 'sent', sent_at = ?, last_error = NULL WHERE id = ?", (now, row_id)
        )


async def mark_retry(store: Store, row_id: int, error: str, at: float) -> None:
    async with store.transaction() as tx:
        await tx.conn.execute(
            "UPDATE outbox SET last_error = ?, next_attempt_at = ? WHERE id = ?", (error[:500], at, row_id)
        )


async def mark_failed(store: Store, row_id: int, error: str) -> None:
    async with store.transaction() as tx:
        await tx.conn.execute(
            "UPDATE outbox SET state = 'failed', last_error = ? WHERE id = ?", (error[:500], row_id)
        )


async def next_due(store: Store) -> float | None:
    row = await store.fetchone("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'")
    return float(row[0]) if row and row[0] is not None else None


async def list_rows(store: Store, *, state: str | None = None, limit: int = 100) -> list[OutboxRow]:
    where, args = ("WHERE state = ?", [state]) if state else ("", [])
    rows = await store.fetchall(
        f"SELECT {_COLS} FROM outbox {where} ORDER BY id LIMIT ?",
        (*args, limit),
    )
    return [OutboxRow(*r) for r in rows]


async def counts(store: Store) -> dict[str, int]:
    out = {"pending": 0, "sent": 0, "failed": 0}
    for state, n in await store.fetchall("SELECT state, COUNT(*) FROM outbox GROUP BY state"):
        out[str(state)] = int(n)
    return out
