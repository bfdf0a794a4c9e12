"""The pc-amd64 image: its layout, its lock, a boot in QEMU configured by a
wix-printer.toml written onto the boot partition with mtools, an order printed end to
end on the host's virtual printer, the fleet's deploy and rollback playbooks against the
booted box, a power cycle with a broken file. The VM tests share one box and run in
file order."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ansible import boxes
from tests.helpers import sample
from tests.image import vm
from wix_printer.fakewix.signing import WebhookSigner

ROOT = vm.ROOT
pytestmark = [pytest.mark.image, pytest.mark.timeout(1800)]


def test_layout_checksums_manifest(pc_image: vm.Built) -> None:
    table = json.loads(subprocess.run(["sfdisk", "-J", str(pc_image.img)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    assert table["label"] == "dos" and table["id"] == "0x77697870"
    boot, root = table["partitions"]
    assert (boot["start"], boot["size"], boot["type"], boot.get("bootable")) == (8192, 524288, "c", True)
    assert root["type"] == "83" and root["start"] == 8192 + 524288
    assert pc_image.img.stat().st_size == 2 * 1024**3
    listing = subprocess.run(["mdir", "-b", "-i", f"{pc_image.img}@@{vm.BOOT_START}", "::/"], capture_output=True,
                             text=True, check=True).stdout
    for name in ("wix-printer.toml", "vmlinuz", "initrd.img", "cmdline.txt"):
        assert f"::/{name}" in listing
    assert vm.mread(pc_image.img, "wix-printer.toml") == (ROOT / "images/files/wix-printer.toml").read_text()
    label = subprocess.run(["mlabel", "-s", "-i", f"{pc_image.img}@@{vm.BOOT_START}", "::"], capture_output=True,
                           text=True, check=True).stdout
    assert "RASPIFIRM" in label
    subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=pc_image.out, check=True)
    manifest = pc_image.file("packages.txt").read_text().splitlines()
    assert any(line.startswith("deb linux-image-amd64 ") for line in manifest)
    assert "wheel wix-printer 0.1.0" in manifest and any(line.startswith("wheel litestar ") for line in manifest)
    info = json.loads(pc_image.file("build-info.json").read_text())
    assert info["board"] == "pc-amd64" and info["wix_printer_version"] == "0.1.0"
    assert pc_image.xz.stat().st_size < 400 * 1024**2


def test_packages_match_the_committed_lock(pc_image: vm.Built) -> None:
    lock = {line for line in (ROOT / "images/locks/pc-amd64.lock").read_text().splitlines()
            if line and not line.startswith("#")}
    built = {line[4:] for line in pc_image.file("packages.txt").read_text().splitlines() if line.startswith("deb ")}
    assert built == lock, ("Debian moved since the lock was committed; review and run "
                           "images/build --board pc-amd64 --update-lock: "
                           f"new {sorted(built - lock)[:10]}, gone {sorted(lock - built)[:10]}")


@dataclass
class Booted:
    machine: vm.VM
    key: Path
    signer: WebhookSigner
    paper: Path
    to_health: float


@pytest.fixture(scope="module")
def booted(pc_image: vm.Built, tmp_path_factory: pytest.TempPathFactory,
           host_peers: dict[str, object]) -> Iterator[Booted]:
    """One box for the module: a copy of the image on a bigger "card", the owner's file
    written onto its boot partition with mtools, powered on in QEMU."""
    card = vm.prepare_card(pc_image.img, tmp_path_factory.mktemp("pcvm"), 3 * 1024**3, host_peers)
    machine, key, signer, paper = card.machine, card.key, card.signer, card.paper
    try:
        machine.start()
        to_health = machine.wait_health(timeout=900)
        print(f"\npc-amd64 power-on -> /health 200: {to_health:.0f} s")
        yield Booted(machine, key, signer, paper, to_health)
    finally:
        machine.stop()


@pytest.mark.vm
def test_first_boot_configures_itself(booted: Booted) -> None:
    machine, key = booted.machine, booted.key
    assert machine.status()["version"] == "0.1.0"
    assert machine.ssh(key, "hostname").strip() == "boxi-test"
    size = int(machine.ssh(key, "findmnt -bno SIZE /").strip())
    assert size > 2.6 * 1024**3, size
    fat = machine.ssh(key, "cat /boot/firmware/wix-printer.toml")
    assert "kitchen-secret-1" not in fat and "test-api-key" not in fat and "boxi-test" in fat
    assert machine.ssh(key, "stat -c '%a %U' /etc/wix-printer/secrets.toml").split() == ["600", "wixprint"]
    assert "test-api-key" in machine.ssh(key, "cat /etc/wix-printer/secrets.toml")
    assert machine.ssh(key, "readlink /etc/localtime").strip().endswith("Europe/Zurich")
    assert len(machine.ssh(key, "cat /etc/machine-id").strip()) == 32
    assert machine.ssh(key, "ls /etc/ssh/ssh_host_ed25519_key").strip()
    assert machine.ssh(key, "getent shadow root | cut -d: -f2").strip() in ("*", "!", "!*")
    assert "active" in machine.ssh(key, "systemctl is-active wix-printer-firstboot wix-printer", check=False)
    # The tunnel to a fleet relay is installed but off: this owner's file has no [tunnel].
    assert machine.ssh(key, "systemctl is-enabled wix-tunnel.service", check=False).strip() == "disabled"
    assert machine.ssh(key, "command -v autossh && id -u wixtunnel", check=False).split()[0] == "/usr/bin/autossh"


@pytest.mark.vm
def test_signed_webhook_prints_on_the_host(booted: Booted) -> None:
    """A signed webhook through hostfwd, printed on the host's virtual printer through guestfwd."""
    machine = booted.machine
    order = sample("delivery-berlin")
    t0 = time.monotonic()
    code, body = vm.http(f"http://127.0.0.1:{machine.http_port}/webhooks/wix",
                         booted.signer.sign_webhook(order).encode(), timeout=30)
    assert code == 200, body
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(booted.paper.glob("*.txt"))) < 3:
        time.sleep(0.5)
    to_paper = time.monotonic() - t0
    receipts = sorted(booted.paper.glob("*.txt"))
    assert len(receipts) >= 3, (receipts, machine.status())
    assert any("Testküche im Image" in p.read_text() for p in receipts)
    print(f"\nwebhook -> 3 receipts on paper: {to_paper:.1f} s")
    (ROOT / "var" / "images" / "pc-amd64-boot.json").write_text(json.dumps(
        {"power_on_to_health_s": round(booted.to_health, 1), "webhook_to_paper_s": round(to_paper, 1)}) + "\n")


def run_playbook(name: str, inventory: Path, extra: dict[str, object], *args: str) -> tuple[str, int, float]:
    env = boxes.env()
    argv = [str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(inventory), str(ROOT / "playbooks" / name),
            *args, "-e", json.dumps(extra)]
    t0 = time.monotonic()
    res = subprocess.run(argv, env=env, text=True, capture_output=True, timeout=1500, cwd=ROOT, check=False)
    return res.stdout + res.stderr, res.returncode, time.monotonic() - t0


@pytest.mark.vm
@pytest.mark.slow
def test_deploy_and_rollback_playbooks(booted: Booted, tmp_path: Path) -> None:
    """The fleet's deploy.yml and rollback.yml against the booted image over SSH (hostfwd),
    with the release archives the fleet tests build (tests/ansible/boxes.py)."""
    machine, key = booted.machine, booted.key
    releases = boxes.build_releases(tmp_path)
    inventory = tmp_path / "vm.yml"
    inventory.write_text(json.dumps({"printers": {"hosts": {"wix-vm": {
        "ansible_host": "127.0.0.1", "ansible_port": machine.ssh_port, "ansible_user": "root",
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
    }}}}))
    # What a fleet inventory says of an image box: nothing of its owner's settings. The box
    # keeps config.toml and secrets.toml as first boot wrote them from the boot file
    # (printer_service_config_source: auto).
    box_vars: dict[str, object] = {
        # TCG: the service takes longer to answer than on a Pi.
        "printer_service_health_timeout": 240, "printer_service_health_test_print_wait": 60,
    }
    config_files = "sha256sum /etc/wix-printer/config.toml /etc/wix-printer/secrets.toml"
    before = machine.ssh(key, config_files)
    version = releases.versions["next"]
    out, rc, deploy_s = run_playbook("deploy.yml", inventory, {**box_vars, "printer_service_version": version,
                                                               "printer_service_wheelhouse_dir": str(releases.dir)},
                                     "--skip-tags", "wheelhouse")
    assert rc == 0, out[-6000:]
    assert machine.status()["version"] == version
    assert machine.ssh(key, "readlink /opt/wix-printer/current").strip().endswith(version)
    assert machine.ssh(key, config_files) == before, "the deploy changed the owner's settings"
    assert "keeps its config.toml and secrets.toml (its boot file set them)" in out
    out, rc, rollback_s = run_playbook("rollback.yml", inventory, box_vars)
    assert rc == 0, out[-6000:]
    assert machine.status()["version"] == "0.1.0"
    assert vm.http(f"http://127.0.0.1:{machine.http_port}/health")[0] == 200
    print(f"\ndeploy.yml 0.1.0 -> {version} on the pc-amd64 VM: {deploy_s:.0f} s; rollback.yml: {rollback_s:.0f} s")


@pytest.mark.vm
def test_broken_config_boots_to_a_clear_error(booted: Booted) -> None:
    """The owner breaks the file and switches the box off and on: it boots, nothing is
    half-applied, and the status page (and the boot partition) say which keys are wrong."""
    machine, key = booted.machine, booted.key
    machine.ssh(key, "sed -i 's/^port = 9100/port = \"abc\"/' /boot/firmware/wix-printer.toml && "
                     "sed -i 's/^hostname = .*/hostname = \"boxi-broken\"/' /boot/firmware/wix-printer.toml && "
                     "echo 'hots = \"x\"' >> /boot/firmware/wix-printer.toml")
    machine.reboot(key)
    to_health = machine.wait_health(timeout=900)
    err = machine.ssh(key, "cat /boot/firmware/wix-printer-error.txt")
    assert "printer.port: must be a whole number" in err and "unknown key" in err
    # Nothing of the broken file applied, not even its valid new host name.
    assert machine.ssh(key, "hostname").strip() == "boxi-test"
    assert "10.0.2.100" in machine.ssh(key, "grep ^host /etc/wix-printer/config.toml")
    assert "failed" in machine.ssh(key, "systemctl is-failed wix-printer-firstboot", check=False)
    assert machine.ssh(key, "systemctl is-active wix-printer", check=False).strip() == "active"
    setup = vm.setup_page(f"http://127.0.0.1:{machine.http_port}", "kitchen-secret-1")
    assert "wix-printer.toml" in setup and "printer.port: must be a whole number" in setup, setup[-2000:]
    print(f"\nreboot with a broken wix-printer.toml -> /health 200: {to_health:.0f} s")
    machine.ssh(key, "systemctl poweroff", check=False)
