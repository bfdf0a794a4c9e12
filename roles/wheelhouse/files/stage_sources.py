"""Copy what the wheel is built from into an empty folder: SOURCE DEST.

pip builds a local project in place, and setuptools reuses the project's build/lib
without cleaning it, so a module deleted from the sources but still in a gitignored
build/ (left by an editable or `pip install .`) would ship in every release. Only what
pyproject.toml names is copied; bytecode and egg-info never are.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path


def staged(src: Path) -> list[str]:
    meta = tomllib.loads((src / "pyproject.toml").read_text(encoding="utf-8"))
    names = ["pyproject.toml", "requirements.lock"]
    readme = meta.get("project", {}).get("readme")
    if isinstance(readme, str):
        names.append(readme)
    elif isinstance(readme, dict) and "file" in readme:
        names.append(readme["file"])
    setuptools = meta.get("tool", {}).get("setuptools", {})
    names += setuptools.get("packages", {}).get("find", {}).get("where", [])
    names += [d.split("/")[0] for d in setuptools.get("package-dir", {}).values() if d]
    return sorted(set(names))


def main(src: Path, dest: Path) -> None:
    if dest.exists() and any(dest.iterdir()):
        sys.exit(f"stage_sources: {dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in staged(src):
        path = src / name
        if path.is_dir():
            shutil.copytree(path, dest / name, ignore=skip, symlinks=True)
        elif path.is_file():
            shutil.copy2(path, dest / name)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: stage_sources.py SOURCE DEST")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
