"""House style as a gate: the same checks `./dev lint` runs, so a change that breaks them
fails CI instead of waiting for someone to run the linters."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


def run(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    tool = BIN / argv[0]
    if not tool.exists():
        pytest.skip(f"{argv[0]} is not in .venv (./dev setup installs it)")
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}", NO_COLOR="1")
    return subprocess.run([str(tool), *argv[1:]], cwd=ROOT, env=env, text=True, capture_output=True,
                          timeout=timeout, check=False)


def test_ruff() -> None:
    res = run("ruff", "check", "service", "tests", "bench", "fleet", "appliance", "images")
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]


def test_mypy_strict() -> None:
    res = run("mypy", "--strict", "service/wix_printer", "fleet/wix_fleet", "appliance/wix_appliance")
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]


def test_yamllint() -> None:
    res = run("yamllint", "-s", "roles", "playbooks", "inventory", "molecule")
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]


@pytest.mark.slow
def test_ansible_lint_production_profile() -> None:
    res = run("ansible-lint", "--profile", "production")
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]
