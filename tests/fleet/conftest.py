"""Three real boxes for the fleet command: the Ansible tier's systemd containers
(tests/ansible/boxes.py, reused as is), under names and addresses of their own so both
tiers can run side by side, listed in an inventory of their own (a copy of inventory/test).

One box is converged with the real site.yml and committed as an image (podman commit),
cached until the releases, roles or playbooks change; all three boxes boot that image,
with the service already running, as a converged box does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ansible import boxes
from tests.ansible.boxes import Box, Releases

ROOT = boxes.ROOT
# Beside the Ansible tier's 10.89.77.11-13 on the same podman network.
# Bump when the way the converged snapshot is made changes (the cache key includes it).
SNAPSHOT_FORMAT = "2: machine-id emptied"
FLEET_HOSTS = {"wix-fleet-1": "10.89.77.21", "wix-fleet-2": "10.89.77.22", "wix-fleet-3": "10.89.77.23"}


@dataclass
class Fleet:
    boxes: dict[str, Box]
    inventory: Path  # a directory like inventory/test: hosts.yml + group_vars/
    converge_seconds: float

    def fleet(self, *args: str, timeout: float = 120, inventory: Path | None = None,
              ) -> subprocess.CompletedProcess[str]:
        """The real `fleet` console script, as an operator runs it."""
        argv = [str(boxes.VENV_BIN / "fleet"), *args[:1], "-i", str(inventory or self.inventory), *args[1:]]
        # A cache of its own: the inventory cache must not leak between runs or into ~/.cache.
        env = boxes.env() | {"XDG_CACHE_HOME": str(self.inventory.parent / "cache")}
        return subprocess.run(argv, text=True, capture_output=True, timeout=timeout, cwd=ROOT, env=env, check=False)


def write_inventory(dest: Path, hosts: dict[str, str]) -> Path:
    """inventory/test with other hosts; group_vars copied unchanged (devprinter, no Wix)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "inventory" / "test" / "group_vars", dest / "group_vars", dirs_exist_ok=True)
    lines = ["---", "printers:", "  hosts:"]
    for name, ip in hosts.items():
        lines += [f"    {name}:", f"      ansible_host: {ip}"]
    lines += ["  vars:", "    ansible_user: root",
              f"    ansible_ssh_private_key_file: {boxes.CACHE / 'ssh' / 'id_ed25519'}",
              "    ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
              " -o LogLevel=ERROR", ""]
    (dest / "hosts.yml").write_text("\n".join(lines))
    return dest


def playbook(inventory: Path, name: str, limit: str,
             releases: Releases) -> tuple[subprocess.CompletedProcess[str], float]:
    # boxes.playbook() is bound to inventory/test; this is the same call on our inventory.
    argv = [str(boxes.VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(ROOT / "playbooks" / name),
            "-l", limit, "--skip-tags", "wheelhouse", "-e",
            json.dumps({"printer_service_version": releases.versions["n"],
                        "printer_service_wheelhouse_dir": str(releases.dir)})]
    t0 = time.monotonic()
    res = subprocess.run(argv, env=boxes.env(), text=True, capture_output=True, timeout=900, cwd=ROOT, check=False)
    return res, time.monotonic() - t0


def wait(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except Exception:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def fleet_image() -> str:
    why = boxes.missing_tools()
    if why:
        pytest.skip(why)
    if not (boxes.VENV_BIN / "fleet").exists():
        pytest.skip("fleet not installed (the fleet extra; ./dev setup)")
    img = boxes.image()
    boxes.ensure_network()
    return img


@pytest.fixture(scope="session")
def fleet_releases(fleet_image: str, tmp_path_factory: pytest.TempPathFactory) -> Releases:
    return boxes.build_releases(tmp_path_factory.mktemp("fleet-releases"))


def converged_key(base_image: str, releases: Releases) -> str:
    """What a converged box depends on: the base image, the release archives (keyed by the
    sources) and everything the converge reads. Unchanged, the next run boots the cached
    snapshot."""
    # The base image's tag hashes the controller's test key, which lives in the clone
    # (var/ansible/ssh) while podman's images outlive it: a fresh clone beside an old
    # snapshot would otherwise boot boxes that only trust the previous clone's key.
    h = hashlib.sha256(base_image.encode() + b"\0" + releases.dir.name.encode())
    for d in ("roles", "playbooks", "inventory/test/group_vars"):
        for f in sorted((ROOT / d).rglob("*")):
            if f.is_file():
                h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes())
    h.update(SNAPSHOT_FORMAT.encode())
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def fleet(fleet_image: str, fleet_releases: Releases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    inv = write_inventory(tmp_path_factory.mktemp("fleet-inventory"), FLEET_HOSTS)
    names = list(FLEET_HOSTS)
    key = converged_key(fleet_image, fleet_releases)
    img = f"localhost/wix-converged:fleet-{key}"
    for line in boxes.sh("podman", "images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split():
        if line.startswith("localhost/wix-converged:fleet-") and line != img:
            boxes.sh("podman", "rmi", "-f", line, check=False)
    started: list[str] = []
    secs = 0.0
    try:
        if boxes.sh("podman", "image", "exists", img, check=False).returncode != 0:
            first = boxes.start(fleet_image, names[0], FLEET_HOSTS[names[0]])
            started.append(first.name)
            res, secs = playbook(inv, "site.yml", first.name, fleet_releases)
            assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]
            print(f"site.yml, one fresh box: {secs:.1f} s")
            # The first daily backup, as the timer would take it: a fresh box is otherwise
            # (rightly) flagged "no backup yet".
            first.exec("systemctl", "start", "wix-printer-backup.service")
            # Each clone must make its own machine id: udev derives the "persistent" MAC of
            # eth0 from it, and three boxes with one MAC on one bridge answer each other's ARP.
            first.exec("sh", "-c", ": > /etc/machine-id; rm -f /var/lib/dbus/machine-id")
            boxes.snapshot(first, f"fleet-{key}")
            boxes.stop(first.name)
        # All three boot the converged snapshot: the service comes up as on a converged box.
        all_boxes = {}
        for name in names:
            all_boxes[name] = boxes.start(img, name, FLEET_HOSTS[name])
            started.append(name)
        for b in all_boxes.values():
            wait(lambda b=b: b.http_status("/health") == 200, 60, f"{b.name} healthy")
        yield Fleet(all_boxes, inv, secs)
    finally:
        if not os.environ.get("WIX_KEEP_BOXES"):
            for name in started:
                boxes.stop(name)
