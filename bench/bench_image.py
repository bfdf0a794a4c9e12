"""Image benchmarks: build time per stage, sizes, power-on to /health green in QEMU.

    .venv/bin/python bench/bench_image.py [--build pc-amd64 --build rpi-arm64] [--boot]

--build BOARD runs `images/build --board BOARD` (as root) first; --boot runs the boot tests
(`pytest -m vm tests/image`, plus `WIX_TEST_RPI=1` for rpi-arm64 when it was built) which
record power-on -> /health 200 in var/images/<board>-boot.json. Without options it reports
what the last builds and boots left in var/images/. Every number comes with the load average
at the time it is reported: the development machine's two cores are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "var" / "images"
MiB = 1024 * 1024
STAGES = ["bootstrap", "configure", "clean", "assemble", "compress", "manifest", "total"]


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def build(board: str) -> None:
    print(f"images/build --board {board} (load {load()})", flush=True)
    subprocess.run([str(ROOT / "images" / "build"), "--board", board], check=True)


def boot(boards: list[str]) -> None:
    env = dict(os.environ)
    marker = "vm and not slow"
    if "rpi-arm64" in boards:
        env["WIX_TEST_RPI"] = "1"
    else:
        marker += " and not rpi"
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "-m", marker, "tests/image"],
                   cwd=ROOT, env=env, check=True)


def report(boards: list[str]) -> str:
    stages = " | ".join(s + " s" for s in STAGES)
    rows = [f"| board | {stages} | .img.xz MiB | .img MiB (used) | power-on -> /health s |",
            "|---|" + "---|" * (len(STAGES) + 3)]
    for board in boards:
        out = IMAGES / board
        times_file = out / f"wix-printer-{board}.build-times.json"
        if not times_file.exists():
            continue
        times = json.loads(times_file.read_text())
        img = out / f"wix-printer-{board}.img"
        xz = img.with_name(img.name + ".xz")
        used = os.stat(img).st_blocks * 512 if img.exists() else 0
        boot_file = IMAGES / f"{board}-boot.json"
        health = json.loads(boot_file.read_text()).get("power_on_to_health_s", "-") if boot_file.exists() else "-"
        cells = [str(times.get(s, "-")) for s in STAGES]
        rows.append(f"| {board} | {' | '.join(cells)} | {xz.stat().st_size / MiB:.0f} | "
                    f"{img.stat().st_size / MiB:.0f} ({used / MiB:.0f}) | {health} |")
    return "\n".join(rows) + f"\n\n(load average when reported: {load()})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", action="append", default=[], choices=["pc-amd64", "rpi-arm64"])
    ap.add_argument("--boot", action="store_true", help="run the boot tests to measure power-on -> /health")
    args = ap.parse_args()
    for board in args.build:
        build(board)
    boards = ["pc-amd64", "rpi-arm64"]
    if args.boot:
        boot([b for b in boards if (IMAGES / b / f"wix-printer-{b}.img").exists()])
    print(report(boards))
    return 0


if __name__ == "__main__":
    sys.exit(main())
