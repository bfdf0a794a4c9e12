"""Numbered schema migrations, each with an up and a down step.

Expand/contract: a step only adds (tables, nullable columns, indexes), so the previous
release still runs on the new schema after a rollback; a contracting step comes a
release later. `PRAGMA user_version` holds the applied step number.
"""

from __future__ import annotations

from typing import NamedTuple


class Migration(NamedTuple):
    version: int
    name: str
    up: str
    down: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events, orders, jobs",
        """
        CREATE TABLE events (
            event_id    TEXT PRIMARY KEY,
            source      TEXT NOT NULL,              -- webhook | search | sample | operator
            event_type  TEXT NOT NULL,
            order_id    TEXT NOT NULL,
            sequence    INTEGER,
            received_at REAL NOT NULL,
            outcome     TEXT NOT NULL                -- applied | stale | ignored
        );
        CREATE INDEX events_order ON events(order_id);
        CREATE TABLE orders (
            id                 TEXT PRIMARY KEY,
            number             TEXT,
            status             TEXT,
            payment_status     TEXT,
            fulfillment_status TEXT,
            updated_date       TEXT,
            sequence           INTEGER,
            revision           INTEGER NOT NULL DEFAULT 1,
            printable          INTEGER NOT NULL DEFAULT 0,
            filtered_out       INTEGER NOT NULL DEFAULT 0,
            is_delivery        INTEGER NOT NULL DEFAULT 0,
            wanted_at          TEXT,
            source             TEXT NOT NULL,
            raw                TEXT NOT NULL,
            printed_raw        TEXT,
            first_seen_at      REAL NOT NULL,
            updated_at         REAL NOT NULL
        );
        CREATE INDEX orders_first_seen ON orders(first_seen_at);
        CREATE TABLE jobs (
            id          INTEGER PRIMARY KEY,
            order_id    TEXT NOT NULL REFERENCES orders(id),
            kind        TEXT NOT NULL,               -- kitchen | driver | customer | cancel | change | test
            revision    INTEGER NOT NULL,
            copy        INTEGER NOT NULL DEFAULT 1,
            -- queued | sending | printed | uncertain | failed | cancelled | held
            state       TEXT NOT NULL,
            priority    INTEGER NOT NULL DEFAULT 5,
            attempts    INTEGER NOT NULL DEFAULT 0,
            lease_until REAL,
            not_before  REAL NOT NULL DEFAULT 0,
            process_id  TEXT,
            banner      TEXT,
            detail      TEXT,                        -- JSON: change lines, reprint reason
            payload     BLOB,
            last_error  TEXT,
            created_at  REAL NOT NULL,
            updated_at  REAL NOT NULL,
            printed_at  REAL,
            UNIQUE (order_id, kind, revision, copy)
        );
        CREATE INDEX jobs_claim ON jobs(state, priority, not_before, id);
        CREATE INDEX jobs_order ON jobs(order_id);
        """,
        """
        DROP TABLE jobs;
        DROP TABLE orders;
        DROP TABLE events;
        """,
    ),
    Migration(
        2,
        "sync state and notification outbox",
        """
        CREATE TABLE sync_state (
            key        TEXT PRIMARY KEY,
            value      TEXT NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE outbox (
            id              INTEGER PRIMARY KEY,
            key             TEXT NOT NULL UNIQUE,    -- idempotency key: one mail per incident
            kind            TEXT NOT NULL,
            payload         TEXT NOT NULL,
            state           TEXT NOT NULL,           -- pending | sent | failed
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            last_error      TEXT,
            created_at      REAL NOT NULL,
            sent_at         REAL
        );
        CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
        """,
        """
        DROP TABLE outbox;
        DROP TABLE sync_state;
        """,
    ),
    Migration(
        3,
        "order source latency columns",
        # received_at lets /metrics report order-to-paper latency from the moment the
        # webhook arrived, not from Wix's createdDate (clock skew, late approvals).
        """
        ALTER TABLE jobs ADD COLUMN received_at REAL;
        ALTER TABLE jobs ADD COLUMN sent_at REAL;
        CREATE INDEX jobs_printed_at ON jobs(printed_at);
        """,
        """
        DROP INDEX jobs_printed_at;
        ALTER TABLE jobs DROP COLUMN sent_at;
        ALTER TABLE jobs DROP COLUMN received_at;
        """,
    ),
)

MIGRATIONS += (
    Migration(
        4,
        "recovery runs and job due times",
        # due_at orders a backlog by when the food is wanted (nearest first); recovery_runs
        # persists each recovery's state machine so a restart resumes instead of redoing.
        """
        ALTER TABLE jobs ADD COLUMN due_at REAL;
        CREATE INDEX jobs_drain ON jobs(state, priority, due_at, id);
        CREATE TABLE recovery_runs (
            id          INTEGER PRIMARY KEY,
            trigger     TEXT NOT NULL,               -- startup | printer_back | wix_back | operator
            phase       TEXT NOT NULL,               -- validation | processing | completion
            state       TEXT NOT NULL,               -- running | completed | failed | interrupted
            attempts    INTEGER NOT NULL DEFAULT 0,
            started_at  REAL NOT NULL,
            updated_at  REAL NOT NULL,
            finished_at REAL,
            last_error  TEXT,
            report      TEXT NOT NULL DEFAULT '{}'   -- JSON: pending, printed, held, failed, timings
        );
        CREATE INDEX recovery_runs_state ON recovery_runs(state, id);
        """,
        """
        DROP TABLE recovery_runs;
        DROP INDEX jobs_drain;
        ALTER TABLE jobs DROP COLUMN due_at;
        """,
    ),
)

LATEST = MIGRATIONS[-1].version
