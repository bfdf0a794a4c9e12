"""Webhook accept latency at a steady open-loop load.

POST /webhooks/wix with pre-signed RS256 tokens (each a distinct order id and event id) at a
fixed rate for a fixed time; the latency of a request is "request written to the socket ->
full response read", on persistent keep-alive connections from this process (the service is
its own process). The request schedule is open loop: a request is sent at its scheduled time
whether or not earlier ones were answered (a new keep-alive connection is opened when all are
busy), so a slow answer cannot hide the queueing behind it. The `p99 vs schedule` column
measures from the scheduled time instead (includes client timer lag, ~0.1 ms).

Rows:
  * printer unreachable -- [printer] kind = "network" at a loopback port where nothing listens
    (the worker gets ECONNREFUSED and backs off to one probe a second), so printing does not
    compete with intake. (kind = "file" with path /dev/null was not used: the worker fsyncs the
    file, which fails with EINVAL on /dev/null; kind = "none" is not honoured by the worker and
    would connect to host:port anyway.)
  * devprinter -- the project's virtual printer (`wix-printer devprinter`, its own process,
    writes .bin/.png/.txt per receipt): the worker prints 3 receipts per order during the run.
  * instant peer -- a minimal ESC/POS peer in the bench process that acknowledges everything at
    once: the service's own printing cost without the devprinter's PNG rendering on the CPUs.

Usage: .venv/bin/python bench/bench_webhook.py [--rate 50] [--seconds 30] [--rows unreachable,devprinter,peer]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from common import (
    DevPrinterProc,
    HttpConn,
    InstantPrinter,
    ServiceProc,
    cpu_seconds,
    db_rows,
    free_port,
    log,
    machine,
    network_printer,
    new_signer,
    pct,
    presign,
    table,
    workdir,
)

WARMUP = 30


async def open_loop(port: int, tokens: list[bytes], rate: float) -> dict[str, object]:
    idle: list[HttpConn] = [await HttpConn(port).connect() for _ in range(4)]
    opened = len(idle)
    lat: list[float] = []
    lat_sched: list[float] = []
    errors: list[str] = []
    loop = asyncio.get_running_loop()

    async def one(conn: HttpConn, body: bytes, sched: float) -> None:
        sent = [0.0]

        def mark() -> None:
            sent[0] = time.perf_counter()

        try:
            status, data = await conn.post(body, mark)
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
            await conn.close()
            idle.append(conn)
            return
        end = time.perf_counter()
        if status != 200 or b'"ok":true' not in data:
            errors.append(f"{status} {data[:100]!r}")
        lat.append((end - sent[0]) * 1000)
        lat_sched.append((end - sched) * 1000)
        idle.append(conn)

    tasks = []
    t0 = time.perf_counter() + 0.05
    for i, body in enumerate(tokens):
        sched = t0 + i / rate
        delay = sched - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if idle:
            conn = idle.pop()
        else:
            conn = await HttpConn(port).connect()
            opened += 1
        tasks.append(loop.create_task(one(conn, body, sched)))
    await asyncio.gather(*tasks)
    for c in idle:
        await c.close()
    return {"lat": lat, "lat_sched": lat_sched, "errors": errors, "connections": opened,
            "elapsed": time.perf_counter() - t0}


async def warm(port: int, tokens: list[bytes]) -> None:
    conn = await HttpConn(port).connect()
    for body in tokens:
        status, data = await conn.post(body)
        assert status == 200, (status, data)
    await conn.close()


async def run_row(kind: str, pem_pub: str, warm_tokens: list[bytes], tokens: list[bytes],
                  rate: float, base: Path) -> list[object]:
    peer: InstantPrinter | None = None
    dev: DevPrinterProc | None = None
    if kind == "unreachable":
        printer = network_printer(free_port())
        label = "printer unreachable (nothing listens)"
    elif kind == "devprinter":
        dev = DevPrinterProc(base / "paper").__enter__()
        printer = network_printer(dev.port)
        label = "printer active: devprinter process"
    else:
        peer = await InstantPrinter().start()
        printer = network_printer(peer.port)
        label = "printer active: instant peer"
    svc = ServiceProc(base / "svc", pem_pub, printer)
    try:
        await asyncio.to_thread(svc.start)
        await warm(svc.port, warm_tokens)
        await asyncio.sleep(1.0)  # let the worker print the warm-up orders
        load0 = os.getloadavg()[0]
        cpu0, w0 = cpu_seconds(svc.pid), time.perf_counter()
        res = await open_loop(svc.port, tokens, rate)
        cpu = (cpu_seconds(svc.pid) - cpu0) / (time.perf_counter() - w0) * 100
        load1 = os.getloadavg()[0]
        printed = db_rows(svc.db, "SELECT COUNT(*) FROM jobs WHERE state = 'printed'")[0][0]
    finally:
        svc.stop()
        if dev is not None:
            dev.__exit__(None, None, None)
        if peer is not None:
            await peer.stop()
    lat = res["lat"]
    assert isinstance(lat, list)
    assert isinstance(res["lat_sched"], list)
    assert isinstance(res["errors"], list)
    if res["errors"]:
        log(f"{kind}: first errors: {res['errors'][:3]}")
    achieved = len(tokens) / float(res["elapsed"])  # type: ignore[arg-type]
    return [label, len(lat), f"{achieved:.1f}", pct(lat, 50), pct(lat, 90), pct(lat, 99), max(lat),
            pct(res["lat_sched"], 99), len(res["errors"]), res["connections"], f"{cpu:.0f}%", printed,
            f"{load0:.1f}/{load1:.1f}"]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rows", default="unreachable,devprinter,peer")
    args = ap.parse_args()
    kinds = args.rows.split(",")
    n = int(args.rate * args.seconds)
    signer = new_signer()
    priv, pub = signer.private_key_pem(), signer.public_key_pem()
    log(f"signing {(n + WARMUP) * len(kinds)} tokens ...")
    rows = []
    with workdir("webhook") as d:
        for r, kind in enumerate(kinds):
            signed = presign(priv, f"wh{r}", n + WARMUP)
            toks = [t for _, _, t in signed]
            log(f"row {kind}: {n} requests at {args.rate:g}/s")
            rows.append(await run_row(kind, pub, toks[:WARMUP], toks[WARMUP:], args.rate, d / kind))
    print(f"\nMachine: {machine()}\n")
    print(f"Webhook accept latency, open loop {args.rate:g} req/s for {args.seconds:g} s, "
          f"{WARMUP} warm-up requests first (ms)\n")
    print(table(["printer", "samples", "req/s", "p50", "p90", "p99", "max", "p99 vs schedule", "errors",
                 "conns", "service CPU", "receipts printed", "loadavg before/after"], rows))


if __name__ == "__main__":
    asyncio.run(main())
