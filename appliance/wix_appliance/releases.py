"""Release switching on a box: /opt/wix-printer/releases/<version>, `current` symlink.

A release counts once its venv is complete (the `.installed` marker the role writes
after pip succeeded); the marker's mtime orders releases by install time, which is
what "previous" means for a rollback (version strings need not sort).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

MARKER = ".installed"


def installed(root: Path) -> list[str]:
    """Complete releases, oldest install first."""
    base = root / "releases"
    if not base.is_dir():
        return []
    done = [d for d in base.iterdir() if d.is_dir() and (d / MARKER).exists()]
    return [d.name for d in sorted(done, key=lambda d: ((d / MARKER).stat().st_mtime, d.name))]


def current(root: Path) -> str | None:
    link = root / "current"
    if not link.is_symlink():
        return None
    return Path(os.readlink(link)).name


def previous(root: Path) -> str | None:
    """The release installed most recently before the current one."""
    cur = current(root)
    rels = installed(root)
    if cur not in rels:
        return rels[-1] if rels else None
    idx = rels.index(cur)
    return rels[idx - 1] if idx > 0 else None


def switch(root: Path, version: str) -> str | None:
    """Point `current` at a release atomically (symlink + rename); return the old one."""
    target = root / "releases" / version
    if not (target / MARKER).exists():
        raise FileNotFoundError(f"{target} is not a complete release")
    old = current(root)
    tmp = root / ".current.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path("releases") / version)
    os.replace(tmp, root / "current")
    return old


def prune(root: Path, keep: int) -> list[str]:
    """Delete the oldest complete releases beyond `keep`; never current or previous."""
    rels = installed(root)
    protected = {current(root), previous(root)}
    removable = [r for r in rels if r not in protected]
    excess = max(0, len(rels) - max(keep, 2))
    gone = removable[:excess]
    for r in gone:
        shutil.rmtree(root / "releases" / r)
    return gone


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="wix_appliance.releases", description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="/opt/wix-printer")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="complete releases, oldest first; * marks current")
    sub.add_parser("current")
    sub.add_parser("previous")
    s = sub.add_parser("switch")
    s.add_argument("version")
    p = sub.add_parser("prune")
    p.add_argument("--keep", type=int, default=3)
    args = ap.parse_args(argv)
    root = Path(args.root)
    match args.cmd:
        case "list":
            cur = current(root)
            for r in installed(root):
                print(f"{'*' if r == cur else ' '} {r}")
        case "current" | "previous":
            found = current(root) if args.cmd == "current" else previous(root)
            if found is None:
                return 1
            print(found)
        case "switch":
            old = switch(root, args.version)
            print(f"{old or '-'} -> {args.version}")
        case "prune":
            for r in prune(root, args.keep):
                print(f"removed {r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
