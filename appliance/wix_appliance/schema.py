"""Schema facts for deploys and rollbacks: which `PRAGMA user_version` the queue
database is at, which one a release understands, and the newest backup it can run on.

Prints one JSON object so Ansible can `from_json` it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sqlite3
from pathlib import Path


def db_version(path: Path) -> int | None:
    """user_version of a database file, None when there is none (a first install)."""
    if not path.exists():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def release_version() -> int | None:
    """LATEST of the wix_printer importable from this interpreter (this release's venv)."""
    try:
        return int(importlib.import_module("wix_printer.store").LATEST)
    except (ImportError, AttributeError):
        return None


def restorable_backup(backup_dir: Path, max_version: int) -> Path | None:
    """Newest backup whose schema this release understands and which passes integrity_check."""
    candidates = sorted(backup_dir.glob("*.db"), key=lambda p: p.stat().st_mtime, reverse=True)
    for f in candidates:
        try:
            with sqlite3.connect(f"file:{f}?mode=ro", uri=True) as conn:
                if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    continue
                if int(conn.execute("PRAGMA user_version").fetchone()[0]) <= max_version:
                    return f
        except sqlite3.DatabaseError:
            continue
    return None


def facts(db: Path, backup_dir: Path | None) -> dict[str, object]:
    dbv, relv = db_version(db), release_version()
    out: dict[str, object] = {"db": dbv, "release": relv, "newer_than_release": dbv is not None and relv is not None
                              and dbv > relv}
    if backup_dir is not None and relv is not None and backup_dir.is_dir():
        found = restorable_backup(backup_dir, relv)
        out["restorable_backup"] = str(found) if found else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="wix_appliance.schema", description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="/var/lib/wix-printer/queue.db")
    ap.add_argument("--backup-dir", help="also name the newest backup this release can run on")
    args = ap.parse_args(argv)
    print(json.dumps(facts(Path(args.db), Path(args.backup_dir) if args.backup_dir else None)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
