"""What a failed monitoring unit triggers (`OnFailure=wix-printer-alert@%n.service`).

Always: one critical journal line and a counter in the textfile metrics, so a fleet
dashboard sees it. Optionally: a JSON POST to the integrator's alert webhook (through
the relay), which is how a restaurant's box reaches a human.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
import urllib.request
from pathlib import Path

from .textfile import render, write_atomic


def bump_counter(state: Path) -> int:
    try:
        n = int(state.read_text().strip() or 0) + 1
    except (OSError, ValueError):
        n = 1
    write_atomic(state, f"{n}\n")
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="wix_appliance.alert", description=__doc__.splitlines()[0])
    ap.add_argument("unit", help="the unit that failed")
    ap.add_argument("--state-file", default="/var/lib/wix-printer-monitor/alerts.count")
    ap.add_argument("--textfile", default="/var/lib/prometheus/node-exporter/wix_printer_alerts.prom")
    ap.add_argument("--webhook", default="", help="POST a JSON alert here (empty: journal only)")
    args = ap.parse_args(argv)
    n = bump_counter(Path(args.state_file))
    write_atomic(Path(args.textfile), render(
        [("wix_printer_alerts_total", {}, float(n)), ("wix_printer_alert_last_timestamp_seconds", {}, time.time())],
        {"wix_printer_alerts_total": "alerts raised by failed monitoring units"},
    ))
    # "<2>" is the journal's critical priority when stdout is connected to it.
    print(f"<2>wix-printer alert: {args.unit} failed on {socket.gethostname()}", file=sys.stdout, flush=True)
    if args.webhook:
        body = json.dumps({"host": socket.gethostname(), "unit": args.unit, "count": n, "time": time.time()})
        req = urllib.request.Request(  # noqa: S310 - operator-configured URL
            args.webhook, data=body.encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10):  # noqa: S310 - operator-configured URL
                pass
        except OSError as e:
            print(f"<4>alert webhook failed: {e}", flush=True)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
