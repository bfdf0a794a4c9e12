"""One Molecule scenario per role (molecule/<role>/): converge, idempotence, verify on a
systemd container booted from the same cached bookworm image as the fleet tests (no
pull, no download). The wheelhouse role runs on the controller only; the session's
release build (playbooks/wheelhouse.yml) is its test."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.ansible import boxes

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.mark.parametrize("scenario", ["base", "printer_service", "backup", "monitoring"])
def test_molecule_scenario(scenario: str, box_image: str, releases: boxes.Releases) -> None:
    env = boxes.env()
    env.pop("ANSIBLE_CONFIG", None)  # molecule writes its own
    env.update({"WIX_BOX_IMAGE": box_image, "WIX_RELEASE_DIR": str(releases.dir),
                "WIX_RELEASE_VERSION": releases.versions["n"]})
    t0 = time.monotonic()
    res = subprocess.run([str(boxes.VENV_BIN / "molecule"), "test", "-s", scenario], cwd=boxes.ROOT, env=env,
                         text=True, capture_output=True, timeout=580)
    print(f"molecule test -s {scenario}: {time.monotonic() - t0:.1f} s")
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-4000:]
