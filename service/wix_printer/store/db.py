"""SQLite store on aiosqlite.

Durability choices: WAL so readers (status page) never block the writer; synchronous=FULL
because a Pi loses power without warning and an order acknowledged to Wix must survive
that; every write is one explicit BEGIN IMMEDIATE transaction so the write lock is taken
up front and a claim can never interleave with another writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import aiosqlite
import msgspec

from .schema import LATEST, MIGRATIONS

JOB_STATES = ("queued", "sending", "printed", "uncertain", "failed", "cancelled", "held")
# Kitchen first: the cook needs the ticket, the customer's receipt can wait a minute.
PRIORITY = {"cancel": 0, "change": 0, "kitchen": 1, "driver": 2, "customer": 3, "test": 1}


class StoreError(Exception):
    pass


class OrderRow(msgspec.Struct, frozen=True):
    id: str
    number: str | None
    status: str | None
    payment_status: str | None
    fulfillment_status: str | None
    updated_date: str | None
    sequence: int | None
    revision: int
    printable: bool
    filtered_out: bool
    is_delivery: bool
    wanted_at: str | None
    source: str
    raw: str
    printed_raw: str | None
    first_seen_at: float
    updated_at: float


class Job(msgspec.Struct, frozen=True):
    id: int
    order_id: str
    kind: str
    revision: int
    copy: int
    state: str
    priority: int
    attempts: int
    lease_until: float | None
    not_before: float
    process_id: str | None
    banner: str | None
    detail: str | None
    payload: bytes | None
    last_error: str | None
    created_at: float
    updated_at: float
    printed_at: float | None
    received_at: float | None
    sent_at: float | None
    due_at: float | None


class RecoveryRun(msgspec.Struct, frozen=True):
    id: int
    trigger: str
    phase: str
    state: str
    attempts: int
    started_at: float
    updated_at: float
    finished_at: float | None
    last_error: str | None
    report: str


_RUN_COLS = ", ".join(RecoveryRun.__struct_fields__)
_ORDER_COLS = ", ".join(OrderRow.__struct_fields__)
_JOB_COLS = ", ".join(Job.__struct_fields__)
# The most urgent due job, for claim() and next_due(): one ordering for both.
_NEXT_DUE = "FROM jobs WHERE state = 'queued' AND not_before <= ? ORDER BY priority, due_at, id LIMIT 1"


def _order(row: sqlite3.Row | tuple[Any, ...]) -> OrderRow:
    r = list(row)
    for i in (8, 9, 10):
        r[i] = bool(r[i])
    return OrderRow(*r)


def _job(row: sqlite3.Row | tuple[Any, ...]) -> Job:
    return Job(*row)


class SyncTx:
    """The SQL of every write, run on the database thread inside one IMMEDIATE transaction.

    Synchronous on purpose: a whole intake decision is one hand-off to the SQLite thread
    instead of a dozen, and `Store.write` can commit many of them with one fsync.
    """

    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        self.conn = conn
        self.now = now

    def _one(self, sql: str, args: Iterable[Any] = ()) -> Any:
        return self.conn.execute(sql, tuple(args)).fetchone()

    def execute(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, tuple(args))

    # --- events -------------------------------------------------------------------------
    def record_event(self, event_id: str, source: str, event_type: str, order_id: str, sequence: int | None) -> bool:
        """Insert the event id; False when it was seen before (the dedupe gate)."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO events (event_id, source, event_type, order_id, sequence, received_at,"
            " outcome) VALUES (?, ?, ?, ?, ?, ?, 'applied')",
            (event_id, source, event_type, order_id, sequence, self.now),
        )
        return cur.rowcount == 1

    def set_event_outcome(self, event_id: str, outcome: str) -> None:
        self.conn.execute("UPDATE events SET outcome = ? WHERE event_id = ?", (outcome, event_id))

    # --- orders -------------------------------------------------------------------------
    def get_order(self, order_id: str) -> OrderRow | None:
        row = self._one(f"SELECT {_ORDER_COLS} FROM orders WHERE id = ?", (order_id,))
        return _order(row) if row else None

    def upsert_order(self, row: OrderRow) -> None:
        values = msgspec.structs.astuple(row)
        self.conn.execute(_UPSERT_ORDER, values)

    def order_is(self, order_id: str, raw: str | None) -> bool:
        """True when the order's stored JSON is `raw` (None: no such order); compared in SQLite."""
        row = self._one("SELECT raw = ? FROM orders WHERE id = ?", (raw, order_id))
        return bool(row[0]) if row else raw is None

    def set_printed_raw(self, order_id: str, raw: str) -> None:
        self.conn.execute("UPDATE orders SET printed_raw = ? WHERE id = ?", (raw, order_id))

    def mark_raw_printed(self, order_id: str) -> None:
        """The order as stored now is what went on paper. A no-op for the second and third
        ticket of an order, so they do not rewrite its row (two copies of the JSON) again."""
        self.conn.execute("UPDATE orders SET printed_raw = raw WHERE id = ? AND printed_raw IS NOT raw", (order_id,))

    # --- jobs ---------------------------------------------------------------------------
    def put(
        self,
        order_id: str,
        kind: str,
        revision: int,
        copy: int = 1,
        *,
        state: str = "queued",
        banner: str | None = None,
        detail: str | None = None,
        received_at: float | None = None,
        due_at: float | None = None,
        last_error: str | None = None,
    ) -> int | None:
        """Queue one receipt; None when that (order, kind, revision, copy) already exists."""
        received = received_at if received_at is not None else self.now
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO jobs (order_id, kind, revision, copy, state, priority, banner, detail,"
            " created_at, updated_at, received_at, due_at, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (order_id, kind, revision, copy, state, PRIORITY.get(kind, 5), banner, detail,
             self.now, self.now, received, due_at if due_at is not None else received, last_error),
        )
        return cur.lastrowid if cur.rowcount == 1 else None

    def jobs_for_order(self, order_id: str) -> list[Job]:
        rows = self.conn.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE order_id = ? ORDER BY id", (order_id,))
        return [_job(r) for r in rows.fetchall()]

    def get_job(self, job_id: int) -> Job | None:
        row = self._one(f"SELECT {_JOB_COLS} FROM jobs WHERE id = ?", (job_id,))
        return _job(row) if row else None

    def cancel_queued(self, order_id: str) -> int:
        cur = self.conn.execute(
            "UPDATE jobs SET state = 'cancelled', updated_at = ? WHERE order_id = ?"
            " AND state IN ('queued', 'held', 'failed')",
            (self.now, order_id),
        )
        return cur.rowcount

    def set_state(self, job_id: int, state: str, **fields: Any) -> None:
        bad = set(fields) - _SETTABLE
        if bad:
            raise StoreError(f"cannot set {sorted(bad)}")
        sets = ", ".join([f"{k} = ?" for k in fields] + ["state = ?", "updated_at = ?"])
        self.conn.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), state, self.now, job_id))

    def extend_lease(self, job_id: int, seconds: float) -> None:
        self.conn.execute("UPDATE jobs SET lease_until = ? WHERE id = ? AND state = 'sending'",
                          (self.now + seconds, job_id))

    def requeue_failed(self) -> list[int]:
        cur = self.conn.execute("UPDATE jobs SET state = 'queued', not_before = 0, updated_at = ?"
                                " WHERE state = 'failed' RETURNING id", (self.now,))
        return [int(r[0]) for r in cur.fetchall()]

    def next_copy(self, order_id: str, kind: str, revision: int) -> int:
        row = self._one("SELECT COALESCE(MAX(copy), 0) + 1 FROM jobs WHERE order_id = ? AND kind = ?"
                        " AND revision = ?", (order_id, kind, revision))
        return int(row[0])

    def claim(self, lease_seconds: float) -> Job | None:
        """Take the most urgent due job: one UPDATE ... RETURNING."""
        row = self._one(
            f"UPDATE jobs SET state = 'sending', attempts = attempts + 1, lease_until = ?, updated_at = ?"
            f" WHERE id = (SELECT id {_NEXT_DUE}) RETURNING {_JOB_COLS}",
            (self.now + lease_seconds, self.now, self.now),
        )
        return _job(row) if row else None

    def next_due(self) -> Job | None:
        """The job claim() would take now, without taking it (the worker renders it first)."""
        row = self._one(
            f"SELECT {_JOB_COLS} {_NEXT_DUE}", (self.now,))
        return _job(row) if row else None

    def mark_printed(self, job_id: int) -> None:
        self.set_state(job_id, "printed", printed_at=self.now, lease_until=None, last_error=None)

    def dead_letter(self, job_id: int, why: str) -> None:
        """Given up on: `failed` with the reason, visible and retryable by a human."""
        self.set_state(job_id, "failed", last_error=why, lease_until=None)

    def hold(self, job_id: int, why: str) -> None:
        """Kept back for a human (stale after an outage): listed, never printed by itself."""
        self.set_state(job_id, "held", last_error=why, lease_until=None)

    # --- recovery runs ------------------------------------------------------------------
    def insert_run(self, trigger: str) -> int:
        cur = self.conn.execute(
            "INSERT INTO recovery_runs (trigger, phase, state, started_at, updated_at)"
            " VALUES (?, 'validation', 'running', ?, ?)", (trigger, self.now, self.now))
        return int(cur.lastrowid or 0)

    def update_run(self, run_id: int, *, phase: str | None = None, state: str | None = None,
                   attempts: int | None = None, last_error: str | None = None, report: str | None = None,
                   finished: bool = False) -> None:
        self.conn.execute(
            "UPDATE recovery_runs SET phase = COALESCE(?, phase), state = COALESCE(?, state),"
            " attempts = COALESCE(?, attempts), last_error = COALESCE(?, last_error), report = COALESCE(?, report),"
            " updated_at = ?, finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE id = ?",
            (phase, state, attempts, last_error, report, self.now, finished, self.now, run_id))

    def interrupt_running_runs(self) -> list[int]:
        cur = self.conn.execute(
            "UPDATE recovery_runs SET state = 'interrupted', updated_at = ?, finished_at = ?"
            " WHERE state = 'running' RETURNING id", (self.now, self.now))
        return [int(r[0]) for r in cur.fetchall()]

    # --- sync state ---------------------------------------------------------------------
    def set_sync(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO sync_state (key, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, value, self.now),
        )


_SETTABLE = frozenset({"last_error", "banner", "payload", "process_id", "lease_until", "not_before",
                       "printed_at", "sent_at", "attempts", "detail"})
_UPSERT_ORDER = (
    f"INSERT INTO orders ({_ORDER_COLS}) VALUES ({', '.join('?' * len(OrderRow.__struct_fields__))})"
    " ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in OrderRow.__struct_fields__[1:] if c != "first_seen_at")
)

T = TypeVar("T")
P = ParamSpec("P")


class Tx:
    """An open IMMEDIATE transaction from async code (`Store.transaction()`).

    `call(SyncTx.method, ...)` runs one SyncTx method on the database thread; `conn` is the
    aiosqlite connection for the outbox code that still speaks SQL itself.
    """

    def __init__(self, conn: aiosqlite.Connection, now: float) -> None:
        self.conn = conn
        self.now = now

    async def call(self, fn: Callable[Concatenate[SyncTx, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        def run() -> T:
            return fn(SyncTx(_raw(self.conn), self.now), *args, **kwargs)

        return await _on_db_thread(self.conn, run)

    async def set_sync(self, key: str, value: str) -> None:
        await self.call(SyncTx.set_sync, key, value)


def _raw(conn: aiosqlite.Connection) -> sqlite3.Connection:
    # aiosqlite keeps its sqlite3 connection private; we only touch it from its own thread.
    raw: sqlite3.Connection = conn._conn
    return raw


async def _on_db_thread(conn: aiosqlite.Connection, fn: Callable[[], T]) -> T:
    """Run `fn` on aiosqlite's worker thread, the only thread that may use its connection."""
    result: T = await conn._execute(fn)  # type: ignore[no-untyped-call]
    return result


def _run_batch(conn: sqlite3.Connection, now: float, fns: list[Callable[[SyncTx], Any]]) -> list[Any]:
    """One IMMEDIATE transaction, one fsync, many independent writes.

    Each write runs in its own SAVEPOINT, so one that raises is undone alone and its
    caller gets the exception, while the others still commit together.
    """
    out: list[Any] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        tx = SyncTx(conn, now)
        for fn in fns:
            conn.execute("SAVEPOINT w")
            try:
                out.append(fn(tx))
            except Exception as e:  # handed to that write's caller
                conn.execute("ROLLBACK TO w")
                out.append(_Failed(e))
            conn.execute("RELEASE w")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return out


class _Failed:
    def __init__(self, error: Exception) -> None:
        self.error = error


class Store:
    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time, max_batch: int = 64) -> None:
        self.path = Path(path)
        self.clock = clock
        self.max_batch = max_batch
        self._conn: aiosqlite.Connection | None = None
        # One writer at a time on the shared connection: the batch writer and the
        # async `transaction()` both take this lock, so BEGIN/COMMIT pairs never interleave.
        self._lock = asyncio.Lock()
        self._pending: list[tuple[Callable[[SyncTx], Any], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------
    async def open(self, *, migrate: bool = True) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA foreign_keys=ON")
        # A backup or a second process (the CLI) may hold the lock briefly.
        await conn.execute("PRAGMA busy_timeout=5000")
        self._conn = conn
        if migrate:
            await self.migrate_to(LATEST)

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
            self._writer = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreError("store is not open")
        return self._conn

    # --- writing ------------------------------------------------------------------------
    async def write(self, fn: Callable[[SyncTx], T]) -> T:
        """Run `fn` in an IMMEDIATE transaction on the database thread; return once committed.

        Group commit: writes that arrive while a commit is in progress are committed
        together in the next one, so under load many webhooks share one fsync while a
        lone write is never delayed.
        """
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, fut))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="store-writer")
        result = await fut
        if isinstance(result, _Failed):
            raise result.error
        return result

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            fns = [fn for fn, _ in batch]
            try:
                async with self._lock:
                    conn = self.conn
                    now = self.clock()
                    results = await _on_db_thread(conn, functools.partial(_run_batch, _raw(conn), now, fns))
            except BaseException as e:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e if isinstance(e, Exception) else StoreError("store writer stopped"))
                if not isinstance(e, Exception):
                    raise
                continue
            for (_, fut), res in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(res)

    async def read(self, fn: Callable[[SyncTx], T]) -> T:
        """Run `fn`'s SELECTs on the database thread in one hand-off, outside any write."""
        conn = self.conn
        return await _on_db_thread(conn, functools.partial(fn, SyncTx(_raw(conn), self.clock())))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._lock:
            conn = self.conn
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(conn, self.clock())
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    # A SELECT runs to its end in one hand-off to the database thread. Stepped across
    # hand-offs (aiosqlite's execute, then fetch), a batch write on the shared connection
    # could change the table under the half-read statement: SQLite leaves those results
    # undefined, and /status once got a NULL job state that way after many kill -9s.
    async def fetchall(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        return await self.read(lambda tx: tx.execute(sql, args).fetchall())

    async def fetchone(self, sql: str, args: Iterable[Any] = ()) -> Any:
        return await self.read(lambda tx: tx._one(sql, args))

    # --- schema -------------------------------------------------------------------------
    async def schema_version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0])

    async def migrate_to(self, target: int) -> list[str]:
        """Apply up or down steps until user_version == target; each step is atomic."""
        if not 0 <= target <= LATEST:
            raise StoreError(f"schema version {target} unknown (this release knows 0..{LATEST})")
        done: list[str] = []
        current = await self.schema_version()
        if current > LATEST:
            # A newer release migrated (expand-only) and we were rolled back: run as is.
            return done
        while current != target:
            step = current + 1 if target > current else current
            mig = MIGRATIONS[step - 1]
            sql = mig.up if target > current else mig.down
            new_version = step if target > current else step - 1
            async with self.transaction() as tx:
                for stmt in _statements(sql):
                    await tx.conn.execute(stmt)
                await tx.conn.execute(f"PRAGMA user_version = {new_version:d}")
            done.append(f"{'up' if target > current else 'down'} {mig.version}: {mig.name}")
            current = new_version
        return done

    # --- backup -------------------------------------------------------------------------
    async def backup_to(self, dest: Path) -> Path:
        """Online copy through SQLite's backup API, then verified with integrity_check."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".part")
        tmp.unlink(missing_ok=True)
        target = await aiosqlite.connect(tmp)
        try:
            await self.conn.backup(target)
            async with target.execute("PRAGMA integrity_check") as cur:
                res = await cur.fetchone()
        finally:
            await target.close()
        if not res or res[0] != "ok":
            tmp.unlink(missing_ok=True)
            raise StoreError(f"backup failed integrity_check: {res[0] if res else 'no answer'}")
        tmp.replace(dest)
        return dest

    # --- queue --------------------------------------------------------------------------
    async def claim(self, lease_seconds: float) -> Job | None:
        """Take the most urgent due job: one statement in one IMMEDIATE transaction."""
        return await self.write(lambda tx: tx.claim(lease_seconds))

    async def complete(self, job_id: int) -> None:
        await self.write(lambda tx: tx.mark_printed(job_id))

    async def fail(self, job_id: int, error: str, *, retry_in: float | None) -> None:
        """Back to the queue after `retry_in` seconds, or dead-lettered when None."""
        def go(tx: SyncTx) -> None:
            if retry_in is None:
                tx.dead_letter(job_id, error)
            else:
                tx.set_state(job_id, "queued", last_error=error, lease_until=None, not_before=tx.now + retry_in)

        await self.write(go)

    async def requeue_stale(self, *, all_sending: bool = False) -> int:
        """Leases that expired belong to a worker that died mid-job: its outcome is unknown.

        `all_sending`: at start-up every job still `sending` was left by a previous process
        (one worker owns a printer and its queue), so its lease need not run out first.
        """
        def go(tx: SyncTx) -> int:
            return tx.execute(
                "UPDATE jobs SET state = 'uncertain', lease_until = NULL, updated_at = ?,"
                " last_error = 'worker stopped while sending' WHERE state = 'sending' AND (? OR lease_until < ?)",
                (tx.now, all_sending, tx.now),
            ).rowcount

        return await self.write(go)

    async def prune(self, older_than_days: float) -> int:
        """Forget finished orders (all jobs printed/cancelled) older than the retention window."""
        def go(tx: SyncTx) -> int:
            cutoff = tx.now - older_than_days * 86400
            tx.execute(
                "DELETE FROM jobs WHERE order_id IN (SELECT o.id FROM orders o WHERE o.updated_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.order_id = o.id"
                " AND j.state NOT IN ('printed', 'cancelled')))",
                (cutoff,),
            )
            deleted = tx.execute(
                "DELETE FROM orders WHERE updated_at < ? AND NOT EXISTS"
                " (SELECT 1 FROM jobs j WHERE j.order_id = orders.id)",
                (cutoff,),
            ).rowcount
            tx.execute("DELETE FROM events WHERE received_at < ?", (cutoff,))
            return deleted

        return await self.write(go)

    async def get_job(self, job_id: int) -> Job | None:
        row = await self.fetchone(f"SELECT {_JOB_COLS} FROM jobs WHERE id = ?", (job_id,))
        return _job(row) if row else None

    async def get_order(self, order_id: str) -> OrderRow | None:
        row = await self.fetchone(f"SELECT {_ORDER_COLS} FROM orders WHERE id = ?", (order_id,))
        return _order(row) if row else None

    async def jobs_in_state(self, *states: str, limit: int = 100) -> list[Job]:
        marks = ", ".join("?" * len(states))
        rows = await self.fetchall(
            f"SELECT {_JOB_COLS} FROM jobs WHERE state IN ({marks}) ORDER BY priority, id LIMIT ?",
            (*states, limit),
        )
        return [_job(r) for r in rows]

    async def list_jobs(self, *, order_id: str | None = None, limit: int = 100, offset: int = 0) -> list[Job]:
        where, args = ("WHERE order_id = ?", [order_id]) if order_id else ("", [])
        rows = await self.fetchall(
            f"SELECT {_JOB_COLS} FROM jobs {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [_job(r) for r in rows]

    async def list_orders(self, *, limit: int = 50, offset: int = 0, since: float | None = None) -> list[OrderRow]:
        rows = await self.fetchall(
            f"SELECT {_ORDER_COLS} FROM orders WHERE first_seen_at >= ?"
            " ORDER BY first_seen_at DESC LIMIT ? OFFSET ?",
            (since or 0, limit, offset),
        )
        return [_order(r) for r in rows]

    async def recovery_runs(self, *, limit: int = 20, offset: int = 0) -> list[RecoveryRun]:
        rows = await self.fetchall(f"SELECT {_RUN_COLS} FROM recovery_runs ORDER BY id DESC LIMIT ? OFFSET ?",
                                   (limit, offset))
        return [RecoveryRun(*r) for r in rows]

    async def recovery_run(self, run_id: int) -> RecoveryRun | None:
        row = await self.fetchone(f"SELECT {_RUN_COLS} FROM recovery_runs WHERE id = ?", (run_id,))
        return RecoveryRun(*row) if row else None

    async def drain_progress(self, since: float) -> dict[str, tuple[int, float | None]]:
        """Per state: jobs touched since `since` or still pending, and the first print time."""
        rows = await self.fetchall(
            "SELECT state, COUNT(*), MIN(printed_at) FROM jobs WHERE updated_at >= ? OR state IN"
            " ('queued', 'sending', 'uncertain') GROUP BY state", (since,))
        return {str(r[0]): (int(r[1]), r[2]) for r in rows}

    async def has_due_jobs(self) -> bool:
        row = await self.fetchone("SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'queued' AND not_before <= ?)",
                                  (self.clock(),))
        return bool(row[0])

    async def get_sync(self, key: str) -> str | None:
        row = await self.fetchone("SELECT value FROM sync_state WHERE key = ?", (key,))
        return str(row[0]) if row else None

    async def counts(self) -> dict[str, Any]:
        return await self.read(_counts)

    async def writable(self) -> bool:
        try:
            await self.write(lambda tx: tx.set_sync("health_probe", str(tx.now)))
        except (sqlite3.Error, StoreError):
            return False
        return True


def _counts(tx: SyncTx) -> dict[str, Any]:
    """The /status and /metrics totals, read in one hand-off to the database thread."""
    orders = tx._one(
        "SELECT COUNT(*), COALESCE(SUM(printable AND status = 'APPROVED'), 0),"
        " COALESCE(SUM(status = 'CANCELED'), 0), COALESCE(SUM(filtered_out), 0) FROM orders"
    )
    jobs = dict.fromkeys(JOB_STATES, 0)
    for state, n in tx.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall():
        jobs[state] = n
    oldest = tx._one("SELECT MIN(created_at) FROM jobs WHERE state IN ('queued', 'sending')")
    last_event = tx._one("SELECT MAX(received_at) FROM events")
    last_print = tx._one("SELECT MAX(printed_at) FROM jobs")
    return {
        "orders": {"total": orders[0], "printable": orders[1], "cancelled": orders[2],
                   "filtered_out": orders[3]},
        "jobs": jobs,
        "oldest_queued_at": oldest[0],
        "last_event_at": last_event[0],
        "last_printed_at": last_print[0],
    }


def _statements(sql: str) -> list[str]:
    """Split a migration script on top-level semicolons (no triggers with bodies here)."""
    parts, buf = [], []
    for line in sql.splitlines():
        code = line.split("--", 1)[0]
        buf.append(code)
        if code.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip().rstrip(";").strip()
            if stmt:
                parts.append(stmt)
            buf = []
    tail = "\n".join(buf).strip()
    if tail:
        parts.append(tail)
    return parts
