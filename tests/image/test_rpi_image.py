"""The real rpi-arm64 SD image on QEMU's raspi3b: kernel, initramfs and device tree from
its own boot partition, configured by a wix-printer.toml written onto that partition, to
the same green state as the pc twin and an order printed on the host's virtual printer."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import sample
from tests.image import vm

pytestmark = [pytest.mark.image, pytest.mark.rpi, pytest.mark.vm, pytest.mark.timeout(3600)]


def test_layout_and_boot_files(rpi_image: vm.Built) -> None:
    assert rpi_image.img.stat().st_size == 2 * 1024**3  # raspi3b takes power-of-two cards only
    subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=rpi_image.out, check=True)
    listing = subprocess.run(["mdir", "-b", "-i", f"{rpi_image.img}@@{vm.BOOT_START}", "::/"], capture_output=True,
                             text=True, check=True).stdout
    for name in ("config.txt", "cmdline.txt", "bcm2837-rpi-3-b.dtb", "start4.elf", "wix-printer.toml"):
        assert f"::/{name}" in listing, listing
    cmdline = vm.mread(rpi_image.img, "cmdline.txt") or ""
    assert "root=LABEL=RASPIROOT" in cmdline and "console=ttyS1,115200" in cmdline
    manifest = rpi_image.file("packages.txt").read_text().splitlines()
    assert any(line.startswith("deb raspi-firmware ") for line in manifest)
    assert "wheel wix-printer 0.1.0" in manifest
    assert rpi_image.xz.stat().st_size < 400 * 1024**2


def test_boots_on_raspi3b_and_prints_an_order(rpi_image: vm.Built, tmp_path: Path,
                                              host_peers: dict[str, object]) -> None:
    # A bigger card, still a power of two (QEMU's raspi3b wants one).
    card = vm.prepare_card(rpi_image.img, tmp_path, 4 * 1024**3, host_peers, board="rpi-arm64")
    machine, key, signer, paper = card.machine, card.key, card.signer, card.paper
    try:
        machine.start()
        to_health = machine.wait_health(timeout=1800)
        print(f"\nrpi-arm64 on raspi3b: power-on -> /health 200: {to_health:.0f} s")
        assert machine.status()["version"] == "0.1.0"
        assert machine.ssh(key, "hostname", timeout=120).strip() == "boxi-test"
        assert machine.ssh(key, "uname -m").strip() == "aarch64"
        assert int(machine.ssh(key, "findmnt -bno SIZE /").strip()) > 3 * 1024**3
        assert "kitchen-secret-1" not in machine.ssh(key, "cat /boot/firmware/wix-printer.toml")
        assert machine.ssh(key, "systemctl is-active wix-printer", check=False).strip() == "active"

        t0 = time.monotonic()
        code, body = vm.http(f"http://127.0.0.1:{machine.http_port}/webhooks/wix",
                             signer.sign_webhook(sample("delivery-berlin")).encode(), timeout=120)
        assert code == 200, body
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(list(paper.glob("*.txt"))) < 3:
            time.sleep(1)
        to_paper = time.monotonic() - t0
        receipts = sorted(paper.glob("*.txt"))
        assert len(receipts) >= 3, (receipts, machine.status())
        assert any("Testküche im Image" in p.read_text() for p in receipts)
        print(f"rpi-arm64: webhook -> 3 receipts on paper: {to_paper:.1f} s")
        (vm.ROOT / "var" / "images" / "rpi-arm64-boot.json").write_text(json.dumps(
            {"power_on_to_health_s": round(to_health, 1), "webhook_to_paper_s": round(to_paper, 1)}) + "\n")
        machine.ssh(key, "systemctl poweroff", check=False)
    finally:
        machine.stop()
