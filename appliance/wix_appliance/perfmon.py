"""The performance monitor a systemd timer runs every few minutes.

Samples what decides whether a Pi keeps up: the service's memory and CPU time, the
queue database and its WAL, free space where the database and backups live, load and
SoC temperature. Writes node-exporter textfile metrics atomically.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

from .textfile import Sample, render, write_atomic

HELP = {
    "wix_printer_process_resident_bytes": "service resident memory (0: not running)",
    "wix_printer_process_cpu_seconds": "service CPU time since start",
    "wix_printer_db_bytes": "queue database file sizes",
    "wix_printer_filesystem_free_bytes": "free space on the filesystem holding a path",
    "wix_printer_load1": "1-minute load average",
    "wix_printer_soc_temperature_celsius": "SoC temperature",
}


def main_pid(unit: str) -> int:
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv
            ["/usr/bin/systemctl", "show", "--property=MainPID", "--value", unit],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()
        return int(out or 0)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return 0


def proc_stats(pid: int, proc: Path = Path("/proc")) -> tuple[float, float]:
    """(resident bytes, cpu seconds) of a process; zeros when it is gone."""
    if pid <= 0:
        return 0.0, 0.0
    try:
        rss = 0.0
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = float(line.split()[1]) * 1024
        fields = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        return rss, cpu
    except (OSError, IndexError, ValueError):
        return 0.0, 0.0


def db_sizes(db: Path) -> list[Sample]:
    out: list[Sample] = []
    for suffix, label in (("", "main"), ("-wal", "wal")):
        f = Path(str(db) + suffix)
        out.append(("wix_printer_db_bytes", {"file": label}, float(f.stat().st_size) if f.exists() else 0.0))
    return out


def temperature(thermal: Path = Path("/sys/class/thermal/thermal_zone0/temp")) -> float | None:
    try:
        return int(thermal.read_text().strip()) / 1000
    except (OSError, ValueError):
        return None


def collect(args: argparse.Namespace) -> list[Sample]:
    rss, cpu = proc_stats(main_pid(args.unit))
    out: list[Sample] = [
        ("wix_printer_process_resident_bytes", {}, rss),
        ("wix_printer_process_cpu_seconds", {}, cpu),
        *db_sizes(Path(args.db)),
    ]
    for path in dict.fromkeys([str(Path(args.db).parent), args.backup_dir]):
        if Path(path).exists():
            out.append(("wix_printer_filesystem_free_bytes", {"path": path}, float(shutil.disk_usage(path).free)))
    out.append(("wix_printer_load1", {}, os.getloadavg()[0]))
    t = temperature()
    if t is not None:
        out.append(("wix_printer_soc_temperature_celsius", {}, t))
    return out


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--unit", default="wix-printer.service")
    ap.add_argument("--db", default="/var/lib/wix-printer/queue.db")
    ap.add_argument("--backup-dir", default="/var/backups/wix-printer")
    ap.add_argument("--textfile", default="/var/lib/prometheus/node-exporter/wix_printer_perf.prom")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="wix_appliance.perfmon", description=__doc__.splitlines()[0])
    add_arguments(ap)
    args = ap.parse_args(argv)
    write_atomic(Path(args.textfile), render(collect(args), HELP))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
