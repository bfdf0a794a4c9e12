"""The pc-amd64 image: its layout, its lock, a boot in QEMU configured by a
wix-printer.toml written onto the boot partition with mtools, an order printed end to
end on the host's virtual printer, and a second build giving the same bytes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, sample
from tests.image import vm
from wix_printer.fakewix.signing import WebhookSigner

ROOT = vm.ROOT
WIX_PRINTER = ROOT / ".venv" / "bin" / "wix-printer"
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


@pytest.fixture
def host_peers(tmp_path: Path) -> Iterator[dict[str, object]]:
    """The virtual printer and the fake Wix on the host's loopback."""
    printer_port, wix_port = free_port(), free_port()
    paper = tmp_path / "paper"
    keys = tmp_path / "wixkeys"
    procs = [
        subprocess.Popen([str(WIX_PRINTER), "devprinter", "--host", "127.0.0.1", "--port", str(printer_port),
                          "--out", str(paper)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([str(WIX_PRINTER), "fakewix", "--port", str(wix_port), "--key-out", str(keys),
                          "--api-key", "test-api-key", "--site-id", "site-1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    deadline = time.monotonic() + 30
    while not (keys / "wix.pub.pem").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        yield {"printer_port": printer_port, "wix_port": wix_port, "paper": paper, "keys": keys}
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


def owner_file(pub_key: str, ssh_pub: str) -> str:
    """What a restaurant writes: the shipped template filled in."""
    text = (ROOT / "images/files/wix-printer.toml").read_text()
    values = {
        ("box", "hostname"): '"boxi-test"', ("box", "timezone"): '"Europe/Zurich"',
        ("box", "admin_password"): '"kitchen-secret-1"', ("box", "ssh_keys"): json.dumps([ssh_pub]),
        ("wix", "public_key"): f'"""\n{pub_key}"""', ("wix", "api_key"): '"test-api-key"',
        ("wix", "site_id"): '"site-1"', ("printer", "host"): '"10.0.2.100"',
        ("restaurant", "name"): '"Testküche im Image"',
    }
    out, section = [], ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        key = line.split(" =")[0]
        out.append(f"{key} = {values[(section, key)]}" if (section, key) in values else line)
    # The fake Wix through guestfwd (an advanced key the template does not list).
    body = "\n".join(out) + "\n"
    return body.replace("[wix]\n", '[wix]\nbase_url = "http://10.0.2.101:8000"\n', 1)


@pytest.mark.vm
def test_boot_configures_itself_and_prints_an_order(pc_image: vm.Built, tmp_path: Path,
                                                    host_peers: dict[str, object]) -> None:
    disk = tmp_path / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(pc_image.img), str(disk)], check=True)
    os.truncate(disk, 3 * 1024**3)  # a bigger "card": first boot grows root into it
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    keys = host_peers["keys"]
    assert isinstance(keys, Path)
    signer = WebhookSigner.from_dir(keys)
    boot_file = tmp_path / "wix-printer.toml"
    boot_file.write_text(owner_file(signer.public_key_pem(), key.with_suffix(".pub").read_text().strip()))
    vm.mcopy_to(disk, boot_file, "wix-printer.toml")

    machine = vm.VM(disk=disk, workdir=tmp_path, ssh_port=free_port(), http_port=free_port(),
                    guestfwd={"10.0.2.100:9100": int(str(host_peers["printer_port"])),
                              "10.0.2.101:8000": int(str(host_peers["wix_port"]))})
    try:
        machine.start()
        to_health = machine.wait_health(timeout=400)
        status = machine.status()
        assert status["version"] == "0.1.0"
        # First boot: the owner's settings, root grown, secrets off the FAT partition.
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

        # An order: a signed webhook through hostfwd, printed on the host through guestfwd.
        order = sample("delivery-berlin")
        t0 = time.monotonic()
        code, body = vm.http(f"http://127.0.0.1:{machine.http_port}/webhooks/wix",
                             signer.sign_webhook(order).encode(), timeout=30)
        assert code == 200, body
        paper = host_peers["paper"]
        assert isinstance(paper, Path)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list(paper.glob("*.txt"))) < 3:
            time.sleep(0.5)
        to_paper = time.monotonic() - t0
        receipts = sorted(paper.glob("*.txt"))
        assert len(receipts) >= 3, (receipts, machine.status())
        assert any("Testküche im Image" in p.read_text() for p in receipts)
        # The catch-up search reached the fake Wix too (base_url through guestfwd).
        wix = machine.ssh(key, "journalctl -u wix-printer --no-pager | grep -ci 'catch' || true")

        # A broken edit later: nothing changes, the error is on the boot partition.
        machine.ssh(key, "sed -i 's/^port = 9100/port = \"abc\"/' /boot/firmware/wix-printer.toml && "
                         "echo 'hots = \"x\"' >> /boot/firmware/wix-printer.toml")
        machine.ssh(key, "systemctl restart wix-printer-firstboot", check=False)
        err = machine.ssh(key, "cat /boot/firmware/wix-printer-error.txt")
        assert "printer.port: must be a whole number" in err and "unknown key" in err
        assert machine.ssh(key, "hostname").strip() == "boxi-test"
        assert "10.0.2.100" in machine.ssh(key, "grep ^host /etc/wix-printer/config.toml")
        assert vm.http(f"http://127.0.0.1:{machine.http_port}/health")[0] == 200
        setup = vm.setup_page(f"http://127.0.0.1:{machine.http_port}", "kitchen-secret-1")
        assert "wix-printer.toml" in setup and "printer.port: must be a whole number" in setup, setup[-2000:]
        print(f"\npower-on -> /health 200: {to_health:.0f} s; webhook -> 3 receipts on paper: {to_paper:.1f} s; "
              f"catch-up log lines: {wix.strip()}")
        (ROOT / "var" / "images" / "pc-amd64-boot.json").write_text(json.dumps(
            {"power_on_to_health_s": round(to_health, 1), "webhook_to_paper_s": round(to_paper, 1)}) + "\n")
        # A clean power-off is not part of the claim (TCG under load can take minutes):
        # stop() ends QEMU either way.
        machine.ssh(key, "systemctl poweroff", check=False)
    finally:
        machine.stop()


@pytest.mark.skipif(os.environ.get("WIX_IMAGE_REPRO") != "1",
                    reason="not shown yet (docs/image.md): a second full build costs ~8 min of CI; "
                           "WIX_IMAGE_REPRO=1 runs it")
def test_two_builds_give_the_same_bytes(pc_image: vm.Built) -> None:
    """A second build of the same commit into another folder. It reuses the cached
    bootstrap tarball (mmdebstrap is reproducible by itself given SOURCE_DATE_EPOCH and
    the same packages; WIX_IMAGE_REPRO_FULL=1 runs it again too): Ansible, the release
    install, both filesystems, the partition table and xz are all redone."""
    extra = [] if os.environ.get("WIX_IMAGE_REPRO_FULL") != "1" else ["--no-reuse-bootstrap"]
    second = vm.build("pc-amd64", ROOT / "var" / "images" / "pc-amd64-repro", extra=extra)
    first_sums = (pc_image.out / "SHA256SUMS").read_text()
    second_sums = (second.out / "SHA256SUMS").read_text()
    if first_sums != second_sums:
        diff = subprocess.run(["cmp", "-l", str(pc_image.img), str(second.img)], capture_output=True, text=True,
                              check=False).stdout.splitlines()
        raise AssertionError(f"builds differ:\n{first_sums}\n{second_sums}\n{len(diff)} bytes differ, "
                             f"first at {diff[:5]}")
    assert re.search(r"^[0-9a-f]{64}  wix-printer-pc-amd64\.img\.xz$", first_sums, re.M)
    shutil.rmtree(second.out / "work", ignore_errors=True)
