"""Recovery after a printer outage: "printer back -> first byte of the first queued ticket"
and the service's CPU per ticket while it drains a backlog with the rate limit off.

The service queues N orders (3 receipts each) while nothing listens on its printer port.
Then common.InstantPrinter (answers status and process ids at once, so the printer is never
the bottleneck) starts on that port. Measured: the time from the listening socket being up
to the first byte that is not a status query (the service probes twice a second while the
printer is away), the drain's wall time, and the service process's CPU time (utime+stime
from /proc) during the drain divided by the tickets printed, also split into the event
loop's thread and the others (SQLite's), user and system time.

Usage: .venv/bin/python bench/bench_recovery.py [--orders 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from common import (
    HttpConn,
    InstantPrinter,
    ServiceProc,
    cpu_seconds,
    free_port,
    log,
    machine,
    network_printer,
    new_signer,
    pct,
    presign,
    table,
    thread_cpu,
    workdir,
)


async def one_run(n: int, run: int) -> dict[str, float]:
    signer = new_signer()
    signed = presign(signer.private_key_pem(), f"rec{run}", n)
    port = free_port()
    with workdir(f"recovery-{run}") as d:
        svc = ServiceProc(d, signer.public_key_pem(), network_printer(port),
                          extra="[recovery]\nmin_outage_seconds = 0\n").start()
        try:
            conn = await HttpConn(svc.port).connect()
            for _, _, body in signed:
                code, _ = await conn.post(body)
                assert code == 200, code
            await conn.close()
            while svc.status()["jobs"]["queued"] < 3 * n:
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # the worker is in its "printer away" probing rhythm
            cpu0 = cpu_seconds(svc.pid)
            threads0 = thread_cpu(svc.pid)
            printer = InstantPrinter()
            back = time.perf_counter()
            await printer.start(port)
            while len(printer.jobs) < 3 * n:
                await asyncio.sleep(0.01)
            done = time.perf_counter()
            cpu = cpu_seconds(svc.pid) - cpu0
            threads1 = thread_cpu(svc.pid)
            await printer.stop()
            assert printer.first_data_at is not None
            return {"first_byte_ms": (printer.first_data_at - back) * 1000, "drain_s": done - back,
                    "cpu_ms_per_ticket": cpu * 1000 / (3 * n), "tickets_per_s": 3 * n / (done - back),
                    **{f"{key}_{kind}_ms": (threads1[key][i] - threads0[key][i]) * 1000 / (3 * n)
                       for key in ("loop", "other") for i, kind in enumerate(("user", "sys"))}}
        finally:
            svc.stop()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    results = []
    for run in range(args.runs):
        r = await one_run(args.orders, run)
        log(f"run {run}: {r}")
        results.append(r)
    print(machine())
    print(f"\nPrinter back after an outage with {args.orders} orders ({3 * args.orders} tickets) queued; "
          f"{args.runs} runs\n")
    rows = []
    for key, unit in (("first_byte_ms", "ms"), ("drain_s", "s"), ("cpu_ms_per_ticket", "ms CPU"),
                      ("loop_user_ms", "ms CPU"), ("loop_sys_ms", "ms CPU"), ("other_user_ms", "ms CPU"),
                      ("other_sys_ms", "ms CPU"), ("tickets_per_s", "tickets/s")):
        vals = [r[key] for r in results]
        rows.append([key, unit, f"{pct(vals, 50):.2f}", f"{max(vals):.2f}", f"{min(vals):.2f}"])
    print(table(["measure", "unit", "median", "max", "min"], rows))


if __name__ == "__main__":
    asyncio.run(main())
