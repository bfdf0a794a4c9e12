"""Backup rotation for /var/backups/wix-printer: keep the newest N verified copies.

`wix-printer backup` writes `queue-<UTC stamp>.db` through SQLite's online backup API
and checks it; `wix-printer migrate` writes one before every migration. This keeps the
newest `keep` of them and reports the newest one's integrity.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path


def backups(directory: Path) -> list[Path]:
    """Finished backups, newest first (`.part` files are unfinished and ignored)."""
    files = [p for p in directory.glob("queue-*.db") if p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name), reverse=True)


def rotate(directory: Path, keep: int) -> list[Path]:
    gone = backups(directory)[max(keep, 1):]
    for p in gone:
        p.unlink()
    return gone


def check(path: Path) -> tuple[bool, int]:
    """(integrity ok, number of orders) of a backup file."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        try:
            orders = int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])
        except sqlite3.OperationalError:
            orders = 0
    return ok, orders


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="wix_appliance.backups", description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/var/backups/wix-printer")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rotate", help="keep the newest N backups")
    r.add_argument("--keep", type=int, default=14)
    c = sub.add_parser("check", help="integrity and order count of a backup (default: the newest)")
    c.add_argument("file", nargs="?")
    args = ap.parse_args(argv)
    directory = Path(args.dir)
    if args.cmd == "rotate":
        for p in rotate(directory, args.keep):
            print(f"removed {p}")
        return 0
    files = [Path(args.file)] if args.file else backups(directory)[:1]
    if not files:
        print(f"no backups in {directory}")
        return 1
    ok, orders = check(files[0])
    print(f"{files[0]}: {'ok' if ok else 'CORRUPT'}, {orders} orders")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
