"""The wheelhouse role builds the release from the sources alone, whatever build
leftovers sit in the project folder (a gitignored build/ from `pip install .`)."""

from __future__ import annotations

import fcntl
import io
import json
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.ansible import boxes


def test_a_stale_build_folder_does_not_leak_into_the_release(tmp_path: Path) -> None:
    if not (boxes.VENV_BIN / "ansible-playbook").exists():
        pytest.skip("ansible not installed (the fleet extra; ./dev setup)")
    src = boxes.project_variant(tmp_path / "src", "1.0.0")
    # What an earlier in-place build leaves: a module since deleted from the sources.
    stale = src / "build" / "lib" / "wix_printer"
    stale.mkdir(parents=True)
    (stale / "removed_long_ago.py").write_text("raise SystemExit('stale')\n")
    (src / "service" / "wix_printer" / "__pycache__").mkdir(exist_ok=True)
    (src / "service" / "wix_printer" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"\0")
    inv = tmp_path / "controller.yml"
    inv.write_text("printers:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    out = tmp_path / "wheelhouse"
    deps = boxes.CACHE / "releases" / "deps"
    deps.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(boxes.VENV_BIN / "ansible-playbook"), "-i", str(inv), str(boxes.ROOT / "playbooks" / "wheelhouse.yml"),
            "-e", json.dumps({"wheelhouse_project_dir": str(src), "wheelhouse_dir": str(out),
                              "wheelhouse_deps_dir": str(deps), "wheelhouse_build_isolation": False})]
    # The dependency cache is shared with the release builds of the other tiers.
    with (deps.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        res = subprocess.run(argv, env=boxes.env(), text=True, capture_output=True, timeout=900, cwd=boxes.ROOT)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]

    archives = list(out.glob("*/wix-printer-1.0.0.tar"))
    assert archives, sorted(p.name for p in out.rglob("*"))
    with tarfile.open(archives[0]) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".whl") and "wix_printer-" in m.name)
        wheel = tar.extractfile(member)
        assert wheel is not None
        names = zipfile.ZipFile(io.BytesIO(wheel.read())).namelist()
    assert "wix_printer/cli.py" in names and "wix_appliance/healthcheck.py" in names
    assert not [n for n in names if "removed_long_ago" in n or n.endswith(".pyc")], names
    # The project folder is left as it was: nothing built in place.
    assert sorted(p.name for p in (src / "build" / "lib" / "wix_printer").iterdir()) == ["removed_long_ago.py"]
    assert not list(src.glob("service/*.egg-info"))
