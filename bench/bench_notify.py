"""Latency from `Notifier.raise_incident` to the SMTP server accepting the message.

    .venv/bin/python bench/bench_notify.py [--incidents 50] [--mode starttls|tls|plain|all]

A real aiosmtpd server on 127.0.0.1 (self-signed certificate trusted through
mail.ca_file, AUTH for the TLS modes), a real SQLite store in a temp folder and the
notifier's own run() loop. Each incident is a new one (own key), so each goes through
the full path: transaction with the outbox row, wake, claim, connect, TLS, AUTH, DATA.
Target from the issue: < 5 s. Prints a markdown table (p50/p99/max in ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.notify.smtpserver import PASSWORD, USER, Server, make_cert
from wix_printer.config import MailConfig
from wix_printer.notify import Kind, Notifier
from wix_printer.store import Store


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def bench(mode: str, n: int, tmp: Path, cert: tuple[Path, Path]) -> list[float]:
    server = Server(mode, cert).start()
    mail = MailConfig(enabled=True, host="127.0.0.1", port=server.port,
                      security="none" if mode == "plain" else mode,  # type: ignore[arg-type]
                      username="" if mode == "plain" else USER, password="" if mode == "plain" else PASSWORD,
                      sender=USER, recipients=["inhaber@example.org"], ca_file=str(cert[0]),
                      max_per_hour=10_000)
    lat: list[float] = []
    async with Store(tmp / f"{mode}.db") as store:
        notifier = Notifier(store, mail, "Imbiss am Boxi")
        task = asyncio.create_task(notifier.run())
        try:
            for i in range(n):
                t0 = time.perf_counter()
                await notifier.raise_incident(Kind.PAPER_OUT, {"state": "paper_out"}, key=f"printer-{i}")
                msgs = await asyncio.to_thread(server.sink.wait, i + 1, 10.0)
                if len(msgs) <= i:
                    raise SystemExit(f"{mode}: incident {i} not delivered within 10 s")
                lat.append((msgs[i].at - t0) * 1000)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            server.stop()
    return lat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--incidents", type=int, default=50)
    ap.add_argument("--mode", default="all", choices=["starttls", "tls", "plain", "all"])
    args = ap.parse_args()
    modes = ["starttls", "tls", "plain"] if args.mode == "all" else [args.mode]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cert = make_cert(tmp)
        print(f"notify latency, {args.incidents} incidents per mode, {platform.machine()} "
              f"{platform.python_version()}\n")
        print("| mode | p50 ms | p99 ms | max ms |")
        print("|---|---:|---:|---:|")
        for mode in modes:
            lat = asyncio.run(bench(mode, args.incidents, tmp, cert))
            print(f"| {mode} | {statistics.median(lat):.1f} | {pct(lat, 99):.1f} | {max(lat):.1f} |")


if __name__ == "__main__":
    main()
