from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from wix_appliance import backups, releases, schema


def install(root: Path, version: str, mtime: float) -> None:
    d = root / "releases" / version
    d.mkdir(parents=True)
    (d / releases.MARKER).write_text(version)
    os.utime(d / releases.MARKER, (mtime, mtime))


def test_switch_previous_prune(tmp_path: Path) -> None:
    for i, v in enumerate(["1.0.0", "1.10.0", "1.2.0", "2.0.0"]):  # install order, not version order
        install(tmp_path, v, 1000 + i)
    (tmp_path / "releases" / "half").mkdir()  # no marker: an interrupted install
    assert releases.installed(tmp_path) == ["1.0.0", "1.10.0", "1.2.0", "2.0.0"]
    assert releases.switch(tmp_path, "1.2.0") is None
    assert releases.switch(tmp_path, "2.0.0") == "1.2.0"
    assert os.readlink(tmp_path / "current") == "releases/2.0.0"
    assert releases.previous(tmp_path) == "1.2.0"
    assert releases.prune(tmp_path, keep=2) == ["1.0.0", "1.10.0"]
    assert releases.installed(tmp_path) == ["1.2.0", "2.0.0"]


def test_prune_never_removes_current_or_previous(tmp_path: Path) -> None:
    for i, v in enumerate(["a", "b", "c"]):
        install(tmp_path, v, 1000 + i)
    releases.switch(tmp_path, "a")  # rolled back to the oldest
    assert releases.prune(tmp_path, keep=1) == ["b"]  # keep is at least 2: current + one
    assert "a" in releases.installed(tmp_path)


def test_switch_refuses_incomplete_release(tmp_path: Path) -> None:
    (tmp_path / "releases" / "x").mkdir(parents=True)
    with pytest.raises(FileNotFoundError):
        releases.switch(tmp_path, "x")


def make_db(path: Path, version: int, orders: int = 0) -> Path:
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE orders (id TEXT)")
        c.executemany("INSERT INTO orders VALUES (?)", [(str(i),) for i in range(orders)])
        c.execute(f"PRAGMA user_version = {version}")
    return path


def test_schema_facts_pick_a_backup_the_release_understands(tmp_path: Path) -> None:
    from wix_printer.store import LATEST

    db = make_db(tmp_path / "queue.db", LATEST + 1)
    bdir = tmp_path / "b"
    bdir.mkdir()
    old = make_db(bdir / "queue-1.db", LATEST)
    newer = make_db(bdir / "queue-2.db", LATEST + 1)
    os.utime(old, (100, 100))
    os.utime(newer, (200, 200))
    facts = schema.facts(db, bdir)
    assert facts["db"] == LATEST + 1
    assert facts["release"] == LATEST
    assert facts["newer_than_release"] is True
    assert facts["restorable_backup"] == str(old)
    assert schema.facts(tmp_path / "none.db", None)["db"] is None


def test_backup_rotation_and_check(tmp_path: Path) -> None:
    for i in range(5):
        f = make_db(tmp_path / f"queue-{i}.db", 3, orders=i)
        os.utime(f, (100 + i, 100 + i))
    (tmp_path / "queue-9.db.part").write_bytes(b"")
    gone = backups.rotate(tmp_path, keep=2)
    assert sorted(p.name for p in gone) == ["queue-0.db", "queue-1.db", "queue-2.db"]
    assert backups.check(tmp_path / "queue-4.db") == (True, 4)
    assert (tmp_path / "queue-9.db.part").exists()
