"""The health check a systemd timer runs every minute.

Asks the running service for /health and /status, writes node-exporter textfile
metrics atomically, and counts consecutive failures in a small state file. It exits 1
once the service has been unhealthy `--alert-after` runs in a row, so the unit's
`OnFailure=` fires the alert unit exactly when an operator should look; a single
slow answer during a deploy restart does not page anyone.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .textfile import Sample, render, write_atomic

JOB_STATES = ("queued", "sending", "printed", "uncertain", "failed", "cancelled", "held")

HELP = {
    "wix_printer_up": "1 when /health answered 200",
    "wix_printer_health_http_status": "HTTP status of /health (0: no answer)",
    "wix_printer_info": "release the service reports",
    "wix_printer_jobs": "print jobs per state",
    "wix_printer_queue_depth": "jobs waiting to print",
    "wix_printer_oldest_queued_age_seconds": "age of the oldest queued job",
    "wix_printer_orders_total": "orders in the store",
    "wix_printer_healthcheck_consecutive_failures": "unhealthy checks in a row",
    "wix_printer_healthcheck_timestamp_seconds": "when this check ran",
    "wix_printer_backup_last_timestamp_seconds": "mtime of the newest backup (0: none)",
}


@dataclass
class Probe:
    status: int = 0
    reasons: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.status == 200


Fetch = Callable[[str, float], tuple[int, bytes]]


def http_get(url: str, timeout: float) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback URL from the unit
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def probe(base_url: str, fetch: Fetch = http_get, timeout: float = 5.0) -> Probe:
    p = Probe()
    try:
        p.status, body = fetch(base_url.rstrip("/") + "/health", timeout)
        if not p.healthy:
            p.reasons.append(f"/health answered {p.status}: {body[:200].decode('utf-8', 'replace')}")
    except OSError as e:
        p.reasons.append(f"/health: no answer ({e})")
        return p
    try:
        code, body = fetch(base_url.rstrip("/") + "/status", timeout)
        if code == 200:
            p.info = json.loads(body)
    except (OSError, ValueError) as e:
        p.reasons.append(f"/status: {e}")
    return p


def newest_backup(backup_dir: Path | None) -> float:
    if backup_dir is None or not backup_dir.is_dir():
        return 0.0
    times = [f.stat().st_mtime for f in backup_dir.glob("*.db") if f.is_file()]
    return max(times, default=0.0)


def samples(p: Probe, failures: int, now: float, backup_dir: Path | None) -> list[Sample]:
    out: list[Sample] = [
        ("wix_printer_up", {}, 1.0 if p.healthy else 0.0),
        ("wix_printer_health_http_status", {}, float(p.status)),
    ]
    if p.info:
        out.append(("wix_printer_info", {"version": str(p.info.get("version", "unknown"))}, 1.0))
        jobs = p.info.get("jobs") or {}
        for state in JOB_STATES:
            out.append(("wix_printer_jobs", {"state": state}, float(jobs.get(state, 0))))
        out.append(("wix_printer_queue_depth", {}, float(p.info.get("queue_depth") or 0)))
        out.append(("wix_printer_oldest_queued_age_seconds", {}, float(p.info.get("oldest_queued_age_seconds") or 0)))
        orders = p.info.get("orders") or {}
        if isinstance(orders, dict) and "total" in orders:
            out.append(("wix_printer_orders_total", {}, float(orders["total"])))
    out += [
        ("wix_printer_healthcheck_consecutive_failures", {}, float(failures)),
        ("wix_printer_healthcheck_timestamp_seconds", {}, now),
        ("wix_printer_backup_last_timestamp_seconds", {}, newest_backup(backup_dir)),
    ]
    return out


def update_failures(state_file: Path, healthy: bool) -> int:
    try:
        previous = int(state_file.read_text().strip() or 0)
    except (OSError, ValueError):
        previous = 0
    count = 0 if healthy else previous + 1
    write_atomic(state_file, f"{count}\n")
    return count


def run(args: argparse.Namespace, fetch: Fetch = http_get, clock: Callable[[], float] = time.time) -> int:
    p = probe(args.url, fetch, args.timeout)
    failures = update_failures(Path(args.state_file), p.healthy)
    text = render(samples(p, failures, clock(), Path(args.backup_dir) if args.backup_dir else None), HELP)
    write_atomic(Path(args.textfile), text)
    if p.healthy:
        print(f"healthy: {args.url} (version {p.info.get('version', '?')})")
        return 0
    print(f"unhealthy ({failures} in a row): {'; '.join(p.reasons)}")
    return 1 if failures >= args.alert_after else 0


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--url", default="http://127.0.0.1:8080", help="service base URL")
    ap.add_argument("--textfile", default="/var/lib/prometheus/node-exporter/wix_printer.prom")
    ap.add_argument("--state-file", default="/var/lib/wix-printer-monitor/healthcheck.failures")
    ap.add_argument("--backup-dir", default="/var/backups/wix-printer")
    ap.add_argument("--alert-after", type=int, default=3, help="exit 1 after this many failures in a row")
    ap.add_argument("--timeout", type=float, default=5.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="wix_appliance.healthcheck", description=__doc__.splitlines()[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
