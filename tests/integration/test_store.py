"""Store behaviour on real SQLite files: migrations, queue leases, backup and restore."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import sample, write_config
from wix_printer.config import Config
from wix_printer.intake import Intake
from wix_printer.printing.render import diff_for_intake
from wix_printer.store import LATEST, Store
from wix_printer.store.db import JOB_STATES


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


async def populated(path: Path, n: int = 40) -> Store:
    store = Store(path)
    await store.open()
    intake = Intake(store, Config(), diff_for_intake(Config()))
    base = sample()
    for i in range(n):
        o = dict(base, id=f"order-{i:03d}", number=str(1000 + i))
        await intake.ingest(o, event_id=f"e{i}", event_type="wix.ecom.v1.order_approved", order_id=o["id"],
                            sequence=1, source="webhook")
    return store


async def table_rows(store: Store) -> dict[str, list[tuple[object, ...]]]:
    out = {}
    for t, cols in (("events", "event_id, order_id"), ("orders", "id, raw, revision"),
                    ("jobs", "id, order_id, kind, state")):
        out[t] = [tuple(r) for r in await store.fetchall(f"SELECT {cols} FROM {t} ORDER BY 1")]
    return out


async def test_migrations_up_down_up_lose_nothing(tmp_path: Path) -> None:
    store = await populated(tmp_path / "q.db")
    before = await table_rows(store)
    assert await store.schema_version() == LATEST
    down = await store.migrate_to(1)  # down to the first schema: orders, events and jobs stay
    assert down and all(s.startswith("down") for s in down)
    assert await store.schema_version() == 1
    assert await table_rows(store) == before
    up = await store.migrate_to(LATEST)
    assert len(up) == LATEST - 1
    assert await table_rows(store) == before
    # WAL and FULL are what the durability promise rests on.
    assert (await store.fetchone("PRAGMA journal_mode"))[0] == "wal"
    assert (await store.fetchone("PRAGMA synchronous"))[0] == 2
    await store.close()


async def test_claim_lease_and_crashed_worker(tmp_path: Path) -> None:
    clock = Clock()
    store = await populated(tmp_path / "q.db", n=2)
    store.clock = clock
    first = await store.claim(lease_seconds=60)
    assert first is not None and first.kind == "kitchen" and first.state == "sending"
    second = await store.claim(lease_seconds=60)
    assert second is not None and second.id != first.id and second.kind == "kitchen"
    # Nothing is stale until the lease runs out.
    assert await store.requeue_stale() == 0
    clock.t += 61
    assert await store.requeue_stale() == 2
    job = await store.get_job(first.id)
    assert job is not None and job.state == "uncertain"
    await store.fail(second.id, "printer offline", retry_in=30)
    assert (await store.get_job(second.id)).state == "queued"  # type: ignore[union-attr]
    # Not due yet: the claim skips it and takes the next kitchen-first job.
    nxt = await store.claim(60)
    assert nxt is not None and nxt.id not in (first.id, second.id)
    await store.complete(nxt.id)
    assert (await store.get_job(nxt.id)).state == "printed"  # type: ignore[union-attr]
    await store.close()


async def test_backup_is_verified_and_restorable(tmp_path: Path) -> None:
    store = await populated(tmp_path / "q.db", n=5)
    dest = await store.backup_to(tmp_path / "b" / "copy.db")
    before = await table_rows(store)
    await store.close()
    with sqlite3.connect(dest) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert c.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 5
    cfg = write_config(tmp_path, f'[store]\npath = "{tmp_path / "new.db"}"\n')
    r = subprocess.run([sys.executable, "-m", "wix_printer", "restore", "--config", str(cfg), str(dest)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    restored = Store(tmp_path / "new.db")
    await restored.open()
    assert await table_rows(restored) == before
    await restored.close()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wix_printer", *args], capture_output=True, text=True, timeout=60)


async def test_migrate_cli_backs_up_first(tmp_path: Path) -> None:
    store = await populated(tmp_path / "q.db", n=3)
    await store.migrate_to(1)
    await store.close()
    cfg = write_config(tmp_path, f'[store]\npath = "{tmp_path / "q.db"}"\nbackup_dir = "{tmp_path / "bk"}"\n')
    r = run_cli("migrate", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "backup before migrating" in r.stdout and f"schema at version {LATEST}" in r.stdout
    backups = list((tmp_path / "bk").glob("queue-*.db"))
    assert len(backups) == 1
    with sqlite3.connect(backups[0]) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == 1  # the state before the migration
    r = run_cli("migrate", "--config", str(cfg), "--to", "99")
    assert r.returncode == 2 and "99" in r.stderr


@pytest.mark.parametrize("bad", ["mode_group", "missing"])
def test_secrets_file_must_be_private(tmp_path: Path, bad: str) -> None:
    sec = tmp_path / "secrets.toml"
    cfg = write_config(tmp_path, f'secrets_file = "{sec}"\n[store]\npath = "{tmp_path / "q.db"}"\n')
    if bad == "mode_group":
        sec.write_text('[wix]\napi_key = "k"\n')
        sec.chmod(0o640)
    r = run_cli("config", "check", str(cfg))
    assert r.returncode == 2
    assert ("chmod 600" in r.stderr) if bad == "mode_group" else ("not found" in r.stderr)
    if bad == "mode_group":
        sec.chmod(0o600)
        assert run_cli("config", "check", str(cfg)).returncode == 0


def test_config_example_passes_check(tmp_path: Path) -> None:
    r = run_cli("config", "example")
    assert r.returncode == 0 and "[printer]" in r.stdout
    p = tmp_path / "example.toml"
    p.write_text(r.stdout)
    r2 = run_cli("config", "check", str(p))
    assert r2.returncode == 0, r2.stderr


async def test_reads_are_consistent_while_writes_change_the_rows(tmp_path: Path) -> None:
    """/status reads the job counts while the worker changes job states on the same
    connection: every read must see each job exactly once, in a state that exists."""
    store = await populated(tmp_path / "q.db")
    total = 3 * 40
    ids = [r[0] for r in await store.fetchall("SELECT id FROM jobs")]
    states = ["queued", "sending", "uncertain", "printed"]
    stop = False

    async def churn() -> None:
        i = 0
        while not stop:
            i += 1
            await asyncio.gather(*(store.write(lambda tx, j=j, s=states[(i + j) % 4]: tx.execute(
                "UPDATE jobs SET state = ? WHERE id = ?", (s, j))) for j in ids[i % 7::7]))

    async def read(n: int) -> list[dict[str, int]]:
        seen = []
        for _ in range(n):
            seen.append((await store.counts())["jobs"])
            seen.append({r[0]: r[1] for r in await store.fetchall("SELECT state, COUNT(*) FROM jobs GROUP BY state")})
        return seen

    writer = asyncio.create_task(churn())
    try:
        seen = [c for batch in await asyncio.gather(*(read(150) for _ in range(4))) for c in batch]
    finally:
        stop = True
        await writer
        await store.close()
    bad = [c for c in seen if sum(c.values()) != total or not set(c) <= set(JOB_STATES)]
    assert not bad, bad[:3]
