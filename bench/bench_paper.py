"""Order to paper: signed webhook sent -> last byte (the cut) of the order's kitchen ticket
arriving at the printer.

The printer is a minimal ESC/POS peer inside this bench process (common.InstantPrinter): it
answers DLE EOT with 0x12 and GS ( H with `37 22 id 00` at once, so the numbers are the
service's own latency (intake, queue, render, status round trips, confirm, commits), not a
printer's. Send time and cut arrival are `time.perf_counter()` in the same process (same
clock). A job is classified as kitchen/driver/customer by its content, and matched to its
order by the order number printed on it (every order has a distinct number).

Phases (the service is warmed up with 5 orders first):
  1. one order at a time: send, wait until all 3 receipts of the order printed, next;
  2. open loop at a modest rate (default 5 orders/s = 15 receipts/s) for 500 orders.

Usage: .venv/bin/python bench/bench_paper.py [--sequential 100] [--orders 500] [--rate 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import time

from common import (
    HttpConn,
    InstantPrinter,
    ServiceProc,
    cpu_seconds,
    log,
    machine,
    network_printer,
    new_signer,
    pct,
    presign,
    receipt_kind,
    table,
    workdir,
)

NUMBER = re.compile(rb"#(9\d{9})\b")


class Tracker:
    def __init__(self, printer: InstantPrinter) -> None:
        self.sent: dict[str, float] = {}
        self.kitchen: dict[str, float] = {}
        self.all3: dict[str, list[float]] = {}
        self.kinds: dict[str, list[str]] = {}
        self.unmatched = 0
        self.events: dict[str, asyncio.Event] = {}
        printer.on_job = self.on_job

    def on_job(self, t: float, raw: bytes) -> None:
        m = NUMBER.search(raw)
        if not m:
            self.unmatched += 1
            return
        number = m.group(1).decode()
        kind = receipt_kind(raw)
        self.kinds.setdefault(number, []).append(kind)
        if kind == "kitchen":
            self.kitchen.setdefault(number, t)
        self.all3.setdefault(number, []).append(t)
        if len(self.all3[number]) >= 3 and number in self.events:
            self.events[number].set()

    def expect(self, number: str) -> asyncio.Event:
        ev = self.events[number] = asyncio.Event()
        return ev


def summarize(label: str, tr: Tracker, numbers: list[str]) -> list[object]:
    kl = [(tr.kitchen[n] - tr.sent[n]) * 1000 for n in numbers if n in tr.kitchen and n in tr.sent]
    al = [(max(tr.all3[n]) - tr.sent[n]) * 1000 for n in numbers if len(tr.all3.get(n, [])) >= 3]
    first_ok = sum(1 for n in numbers if tr.kinds.get(n, [""])[0] == "kitchen")
    return [label, len(kl), pct(kl, 50), pct(kl, 90), pct(kl, 99), max(kl) if kl else float("nan"),
            pct(al, 50), pct(al, 99), f"{first_ok}/{len(numbers)}",
            "PASS" if kl and pct(kl, 50) < 50 and pct(kl, 99) < 150 and len(kl) == len(numbers) else "FAIL"]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sequential", type=int, default=100)
    ap.add_argument("--orders", type=int, default=500)
    ap.add_argument("--rate", type=float, default=5.0)
    args = ap.parse_args()
    signer = new_signer()
    n_total = 5 + args.sequential + args.orders
    log(f"signing {n_total} tokens ...")
    signed = presign(signer.private_key_pem(), "paper", n_total)
    warm, seq, loadp = signed[:5], signed[5:5 + args.sequential], signed[5 + args.sequential:]
    printer = await InstantPrinter().start()
    tr = Tracker(printer)
    rows = []
    with workdir("paper") as d:
        svc = ServiceProc(d / "svc", signer.public_key_pem(), network_printer(printer.port))
        try:
            await asyncio.to_thread(svc.start)
            conn = await HttpConn(svc.port).connect()

            async def send(conn: HttpConn, number: str, body: bytes) -> None:
                def mark() -> None:
                    tr.sent[number] = time.perf_counter()

                status, data = await conn.post(body, mark)
                if status != 200:
                    raise RuntimeError(f"{status} {data[:200]!r}")

            for _, number, body in warm + seq:
                ev = tr.expect(number)
                await send(conn, number, body)
                await asyncio.wait_for(ev.wait(), 10)
                await asyncio.sleep(0.02)
            rows.append(summarize("1 order at a time", tr, [s[1] for s in seq]))
            log(f"sequential done: {rows[-1]}")

            # Open loop: one connection per in-flight request at most; requests are tiny.
            idle = [conn] + [await HttpConn(svc.port).connect() for _ in range(3)]
            cpu0, w0 = cpu_seconds(svc.pid), time.perf_counter()
            tasks = []

            async def one(number: str, body: bytes) -> None:
                c = idle.pop() if idle else await HttpConn(svc.port).connect()
                try:
                    await send(c, number, body)
                finally:
                    idle.append(c)

            t0 = time.perf_counter()
            for i, (_, number, body) in enumerate(loadp):
                tr.expect(number)
                delay = t0 + i / args.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(number, body)))
            await asyncio.gather(*tasks)
            deadline = time.perf_counter() + 30
            for _, number, _ in loadp:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tr.events[number].wait(), remaining)
            cpu = (cpu_seconds(svc.pid) - cpu0) / (time.perf_counter() - w0) * 100
            rows.append(summarize(f"{args.rate:g} orders/s open loop", tr, [s[1] for s in loadp]))
            status = svc.status()
        finally:
            svc.stop()
            await printer.stop()
    print(f"\nMachine: {machine()}\n")
    print("Order to paper (ms): webhook written by the client -> cut of the kitchen ticket read by the "
          "printer peer; `all 3` = last of the order's three receipts\n")
    print(table(["load", "orders", "kitchen p50", "p90", "p99", "max", "all 3 p50", "all 3 p99",
                 "kitchen printed first", "target p50<50 p99<150"], rows))
    print(f"\nService CPU during the open-loop phase: {cpu:.0f}% of one core; unmatched jobs: {tr.unmatched}; "
          f"printer connections: {printer.connections}; jobs at the end: {status.get('jobs', status)}")


if __name__ == "__main__":
    asyncio.run(main())
