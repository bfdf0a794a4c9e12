"""Sustained webhook ingest throughput, closed loop.

N concurrent clients, each on its own persistent keep-alive connection, POST pre-signed RS256
webhooks (every one a distinct order id and event id) back to back for a fixed time. Reports
requests/s answered 200, errors, and latency percentiles under that load. Afterwards the
service is stopped and its SQLite file is checked: every order answered 200 is stored exactly
once, with exactly one event row and its three receipt jobs (kitchen, driver, customer), and no
order was stored that was not answered 200 (a request still in flight at the deadline may be
stored although its answer was never read: those are counted separately).

The printer points at a loopback port where nothing listens, so printing does not compete.

Usage: .venv/bin/python bench/bench_ingest.py [--clients 8,32] [--seconds 20] [--budget 6000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from common import (
    HttpConn,
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


async def closed_loop(port: int, signed: list[tuple[str, str, bytes]], clients: int,
                      seconds: float) -> dict[str, object]:
    conns = [await HttpConn(port).connect() for _ in range(clients)]
    ok: list[str] = []
    errors: list[str] = []
    lat: list[float] = []
    it = iter(signed)
    exhausted = False
    in_flight_at_end: list[str] = []
    deadline = time.perf_counter() + seconds

    async def client(conn: HttpConn) -> None:
        nonlocal exhausted
        while time.perf_counter() < deadline:
            try:
                oid, _, body = next(it)
            except StopIteration:
                exhausted = True
                return
            t0 = time.perf_counter()
            try:
                status, data = await conn.post(body)
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}")
                in_flight_at_end.append(oid)
                await conn.close()
                continue
            lat.append((time.perf_counter() - t0) * 1000)
            if status == 200 and b'"ok":true' in data:
                ok.append(oid)
            else:
                errors.append(f"{status} {data[:120]!r}")

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in conns))
    elapsed = time.perf_counter() - t0
    for c in conns:
        await c.close()
    return {"ok": ok, "errors": errors, "lat": lat, "elapsed": elapsed, "exhausted": exhausted,
            "unanswered": in_flight_at_end}


def verify(db: os.PathLike[str], ok: list[str], sent_ids: set[str]) -> tuple[str, list[str]]:
    problems: list[str] = []
    orders = dict(db_rows(db, "SELECT id, COUNT(*) FROM orders WHERE id LIKE 'bench-%' GROUP BY id"))
    events = dict(db_rows(db, "SELECT order_id, COUNT(*) FROM events WHERE order_id LIKE 'bench-%'"
                              " GROUP BY order_id"))
    jobs = {oid: n for oid, n in db_rows(db, "SELECT order_id, COUNT(*) FROM jobs WHERE order_id LIKE 'bench-%'"
                                             " GROUP BY order_id")}
    kinds = dict(db_rows(db, "SELECT kind, COUNT(*) FROM jobs WHERE order_id LIKE 'bench-%' GROUP BY kind"))
    ok_set = set(ok)
    if len(ok_set) != len(ok):
        problems.append(f"{len(ok) - len(ok_set)} order ids answered 200 twice")
    missing = [o for o in ok_set if orders.get(o) != 1]
    if missing:
        problems.append(f"{len(missing)} orders answered 200 are not stored exactly once (e.g. {missing[:3]})")
    bad_events = [o for o in ok_set if events.get(o) != 1]
    if bad_events:
        problems.append(f"{len(bad_events)} answered orders without exactly one event row")
    bad_jobs = [o for o in ok_set if jobs.get(o) != 3]
    if bad_jobs:
        problems.append(f"{len(bad_jobs)} answered orders without exactly 3 jobs")
    extra = set(orders) - ok_set
    unknown = extra - sent_ids
    if unknown:
        problems.append(f"{len(unknown)} stored orders that were never sent")
    summary = (f"{len(ok_set)} answered 200; stored: {len(orders)} orders, {sum(events.values())} events, "
               f"jobs {dict(sorted(kinds.items()))}; stored but answer not read (in flight at stop): "
               f"{len(extra - unknown)}")
    return summary, problems


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", default="8,32")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--budget", type=int, default=6000,
                    help="pre-signed tokens per run; the run ends early (and says so) if they run out")
    args = ap.parse_args()
    signer = new_signer()
    priv, pub = signer.private_key_pem(), signer.public_key_pem()
    rows = []
    notes = []
    with workdir("ingest") as d:
        for clients in (int(c) for c in args.clients.split(",")):
            tag = f"in{clients}"
            log(f"signing {args.budget} tokens ...")
            signed = presign(priv, tag, args.budget)
            warm, signed = signed[:20], signed[20:]
            svc = ServiceProc(d / tag, pub, network_printer(free_port()))
            try:
                svc.start()
                conn = await HttpConn(svc.port).connect()
                for _, _, body in warm:
                    status, _ = await conn.post(body)
                    assert status == 200
                await conn.close()
                log(f"{clients} clients for {args.seconds:g} s ...")
                load0 = os.getloadavg()[0]
                cpu0 = cpu_seconds(svc.pid)
                res = await closed_loop(svc.port, signed, clients, args.seconds)
                cpu = (cpu_seconds(svc.pid) - cpu0) / float(res["elapsed"]) * 100  # type: ignore[arg-type]
                load1 = os.getloadavg()[0]
            finally:
                svc.stop()
            ok, errors, lat = res["ok"], res["errors"], res["lat"]
            assert isinstance(ok, list)
            assert isinstance(errors, list)
            assert isinstance(lat, list)
            summary, problems = verify(svc.db, ok + [w[0] for w in warm], {s[0] for s in signed} |
                                       {w[0] for w in warm})
            elapsed = float(res["elapsed"])  # type: ignore[arg-type]
            rows.append([clients, f"{elapsed:.1f}", len(ok), f"{len(ok) / elapsed:.0f}", len(errors),
                         pct(lat, 50), pct(lat, 99), max(lat), f"{cpu:.0f}%", f"{load0:.1f}/{load1:.1f}",
                         "OK" if not problems else "FAIL"])
            notes.append(f"- {clients} clients: {summary}" + (f"; PROBLEMS: {'; '.join(problems)}" if problems
                                                             else "") +
                         (" (token budget exhausted: raise --budget)" if res["exhausted"] else ""))
            if errors:
                notes.append(f"  first errors: {errors[:3]}")
    print(f"\nMachine: {machine()}\n")
    print(f"Closed-loop ingest of signed webhooks for {args.seconds:g} s (latency in ms; "
          "20 warm-up requests first)\n")
    print(table(["clients", "seconds", "answered 200", "req/s", "errors", "p50", "p99", "max",
                 "service CPU", "loadavg before/after", "DB check"], rows))
    print("\nDB check (SQLite file after stop):\n" + "\n".join(notes))


if __name__ == "__main__":
    asyncio.run(main())
