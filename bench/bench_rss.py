"""Resident memory of the service process, idle and after ingesting orders, and what makes it up.

All of it runs in a venv with only what a box installs (requirements.lock + the project,
common.runtime_python(), on Debian's python3.11): with the dev extras, Litestar would find
pydantic and load its plugin, which no box does.

1. Idle: start `python -m wix_printer serve` (printer at a loopback port where nothing
   listens), wait 10 s, read VmRSS/VmHWM/RssAnon/RssFile from /proc/PID/status; 3 fresh
   starts, median reported. Twice: webhook intake with no Wix API configured, and the
   default `poll` intake searching a local fake Wix every 5 s (loads the Wix client). The
   fake speaks plain http, so no TLS context is made; a box searching the real Wix over
   https adds one (the system CA store, about 0.65 MiB on Debian's 144 roots).
2. After ingest: one more fresh start, 2000 signed webhooks (8 keep-alive clients), 3 s
   pause, read again.
3. The floor: a minimal Litestar app (one route) under uvicorn with aiosqlite open, same
   interpreter, with uvloop and with the stock asyncio loop.
4. Attribution: RSS of a bare interpreter, then of `python -c "import X"` for each heavy
   dependency on its own (delta over the bare interpreter), and the list of top-level
   packages the service actually has in sys.modules after `create_app()` (measured in a child
   that builds the app from the same config but does not serve). Plus `-X importtime` top
   entries and a tracemalloc split of Python-heap bytes by top-level package.

Usage: .venv/bin/python bench/bench_rss.py [--idle 10] [--orders 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from common import (
    DevPrinterProc,
    HttpConn,
    ServiceProc,
    free_port,
    log,
    machine,
    network_printer,
    new_signer,
    presign,
    proc_status,
    runtime_python,
    table,
    workdir,
)

# The "45 MB" read strictly, as 10^6 bytes: 42.9 MiB (the tables are in MiB).
TARGET_MB = 45.0
TARGET_MIB = TARGET_MB * 1e6 / 2**20
MODULES = ["litestar", "uvicorn", "uvloop", "PIL.Image", "cryptography.hazmat.primitives.asymmetric.rsa", "httpx",
           "msgspec", "aiosqlite", "babel.numbers", "jinja2", "escpos.printer", "zoneinfo"]

RSS_SNIPPET = textwrap.dedent("""
    import re
    def rss():
        s = open('/proc/self/status').read()
        return {k: int(re.search(k + r':\\s+(\\d+)', s).group(1)) for k in ('VmRSS', 'RssAnon', 'RssFile')}
""")


def mb(kib: float) -> float:
    return kib / 1024


PY = sys.executable  # main() switches to the runtime-only venv

FLOOR_APP = textwrap.dedent("""
    import asyncio, ctypes, gc, importlib.util, sys, aiosqlite
    from litestar import Litestar, get

    # As `wix-printer serve` does: uvicorn's Server and Config without uvicorn/__init__.py
    # (its command line and click), and the start-up garbage collected and trimmed once.
    sys.modules["uvicorn"] = importlib.util.module_from_spec(importlib.util.find_spec("uvicorn"))
    from uvicorn.config import Config
    from uvicorn.server import Server
    sys.modules["uvicorn"].Config, sys.modules["uvicorn"].Server = Config, Server

    @get("/x")
    async def x() -> dict[str, int]:
        return {"a": 1}

    async def opened() -> None:
        global db
        db = await aiosqlite.connect(sys.argv[2])
        gc.collect()
        gc.freeze()
        ctypes.CDLL(None).malloc_trim(0)

    Server(Config(Litestar([x], on_startup=[opened]), host="127.0.0.1", port=int(sys.argv[1]),
                  log_level="warning", loop=sys.argv[3], access_log=False)).run()
""")


def floor_rss(d: Path, loop: str, idle: float) -> dict[str, int]:
    port = free_port()
    proc = subprocess.Popen([PY, "-c", FLOOR_APP, str(port), str(d / f"floor-{loop}.db"), loop],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=d)
    try:
        time.sleep(idle)
        return proc_status(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def child(code: str) -> dict[str, object]:
    out = subprocess.run([PY, "-c", RSS_SNIPPET + code], capture_output=True, text=True,
                         check=True, timeout=120)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def import_rss() -> tuple[list[list[object]], dict[str, object]]:
    base = child("import json; print(json.dumps(rss()))")
    rows: list[list[object]] = [["(bare python -c)", f"{mb(base['VmRSS']):.1f}", "-", "-"]]  # type: ignore[arg-type]
    for mod in MODULES:
        r = child(f"import json, time; t=time.perf_counter(); import {mod}; "
                  "d=time.perf_counter()-t; x=rss(); x['t']=d; print(json.dumps(x))")
        rows.append([mod, f"{mb(r['VmRSS']):.1f}", f"+{mb(r['VmRSS'] - base['VmRSS']):.1f}",  # type: ignore[operator]
                     f"{r['t'] * 1000:.0f}"])  # type: ignore[operator]
    return rows, base


def service_modules(config: Path) -> dict[str, object]:
    code = f"""
import json, sys, time
t = time.perf_counter()
import uvicorn
from wix_printer.config import load_config
from wix_printer.app import create_app
app = create_app(load_config({str(config)!r}))
d = time.perf_counter() - t
tops = sorted({{m.split('.')[0] for m in sys.modules if not m.startswith('_')}})
heavy = [m for m in ('PIL', 'escpos', 'babel', 'jinja2', 'httpx', 'httpcore', 'h11', 'anyio', 'litestar',
         'uvicorn', 'cryptography', 'msgspec', 'aiosqlite', 'qrcode', 'usb', 'serial', 'yaml', 'rich',
         'click', 'pydantic', 'attrs', 'multidict', 'polyfactory', 'email', 'asyncio', 'sqlite3')
         if m in sys.modules]
x = rss(); x.update(modules=len(sys.modules), heavy=heavy, t=d)
print(json.dumps(x))
"""
    return child(code)


def tracemalloc_split(config: Path) -> list[tuple[str, float]]:
    code = f"""
import json, tracemalloc
tracemalloc.start()
import uvicorn
from wix_printer.config import load_config
from wix_printer.app import create_app
app = create_app(load_config({str(config)!r}))
snap = tracemalloc.take_snapshot()
by = {{}}
for st in snap.statistics('filename'):
    f = st.traceback[0].filename
    key = '<frozen/other>'
    if 'site-packages/' in f:
        key = f.split('site-packages/')[1].split('/')[0]
    elif '/wix_printer/' in f:
        key = 'wix_printer'
    elif '/lib/python3' in f:
        key = 'stdlib'
    by[key] = by.get(key, 0) + st.size
x = rss(); x['by'] = sorted(by.items(), key=lambda kv: -kv[1])[:12]
print(json.dumps(x))
"""
    r = child(code)
    return [(k, v / 1024 / 1024) for k, v in r["by"]]  # type: ignore[union-attr]


def importtime_top(config: Path, n: int = 15) -> list[tuple[str, float]]:
    """Self time of every imported module, summed per top-level package."""
    code = ("import uvicorn\nfrom wix_printer.config import load_config\nfrom wix_printer.app import create_app\n"
            f"create_app(load_config({str(config)!r}))\n")
    out = subprocess.run([PY, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    tops: dict[str, float] = {}
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)", line)
        if m:
            name = m.group(3).split(".")[0]
            tops[name] = tops.get(name, 0) + int(m.group(1)) / 1000
    return sorted(tops.items(), key=lambda kv: -kv[1])[:n]


CHAIN = ["msgspec", "aiosqlite", "zoneinfo", "yaml",
         "babel.numbers", "PIL.Image", "uvicorn", "litestar", "wix_printer.intake", "wix_printer.printing.render",
         "wix_printer.app"]


def import_chain(config: Path) -> list[list[object]]:
    """Import the service's dependencies one after another in one child: RSS deltas add up."""
    code = f"""
import json, sys, importlib
steps = [['(bare interpreter)', rss()['VmRSS'], rss()['RssAnon'], len(sys.modules)]]
for m in {CHAIN!r}:
    importlib.import_module(m)
    x = rss(); steps.append([m, x['VmRSS'], x['RssAnon'], len(sys.modules)])
from wix_printer.config import load_config
from wix_printer.app import create_app
app = create_app(load_config({str(config)!r}))
x = rss(); steps.append(['create_app(config)', x['VmRSS'], x['RssAnon'], len(sys.modules)])
print(json.dumps(steps))
"""
    out = subprocess.run([PY, "-c", RSS_SNIPPET + code], capture_output=True, text=True,
                         check=True, timeout=120)
    steps = json.loads(out.stdout.strip().splitlines()[-1])
    rows: list[list[object]] = []
    prev = None
    for name, vm, anon, mods in steps:
        rows.append([name, f"{mb(vm):.1f}", "-" if prev is None else f"+{mb(vm - prev[0]):.1f}",
                     "-" if prev is None else f"+{mb(anon - prev[1]):.1f}",
                     "-" if prev is None else f"+{mods - prev[2]}"])
        prev = (vm, anon, mods)
    return rows


async def ingest(port: int, tokens: list[bytes], clients: int = 8) -> int:
    it = iter(tokens)
    ok = 0

    async def client() -> None:
        nonlocal ok
        conn = await HttpConn(port).connect()
        for body in it:
            status, _ = await conn.post(body)
            ok += status == 200
        await conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return ok


def wait_printed(svc: ServiceProc, orders: int, timeout: float = 120.0) -> float:
    """Seconds until `orders` orders are stored, some printed, and nothing is left to print."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = svc.status()
        jobs = st["jobs"]
        if st["orders"]["total"] >= orders and jobs["printed"] > 0 and not (jobs["queued"] or jobs["sending"]):
            return time.monotonic() - svc.started_at
        time.sleep(0.2)
    raise RuntimeError(f"not printed within {timeout:g} s: {svc.status()['jobs']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--orders", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    global PY
    PY = runtime_python()
    log(f"runtime-only venv: {PY}")
    signer = new_signer()
    pub = signer.public_key_pem()
    idle: list[dict[str, int]] = []
    polling: list[dict[str, int]] = []
    with workdir("rss") as d:
        for i in range(args.repeats):
            svc = ServiceProc(d / f"idle{i}", pub, network_printer(free_port()), python=PY)
            with svc:
                time.sleep(max(0.0, args.idle - (time.monotonic() - svc.started_at)))
                idle.append(proc_status(svc.pid))
            log(f"idle run {i + 1}: {idle[-1]}")
        wix_port = free_port()
        fake = subprocess.Popen([sys.executable, "-m", "wix_printer", "fakewix", "--port", str(wix_port),
                                 "--api-key", "k", "--site-id", "s", "--generate", "20"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(2)
            # fakewix --generate N dates its orders up to 2N minutes back: a margin that reaches them.
            wix = (f'api_key = "k"\nsite_id = "s"\nbase_url = "http://127.0.0.1:{wix_port}"\nintake = "poll"\n'
                   "catchup_margin = 3600\n")
            for i in range(args.repeats):
                # The default box's steady state: it found the orders by searching and printed
                # them (receipt rendering, Babel's locale data), then idles.
                with DevPrinterProc(d / f"paper{i}") as dp:
                    svc = ServiceProc(d / f"poll{i}", pub, network_printer(dp.port), wix=wix, python=PY)
                    with svc:
                        printed_at = wait_printed(svc, 20)
                        time.sleep(args.idle)
                        polling.append(proc_status(svc.pid))
                log(f"polling run {i + 1}: printed after {printed_at:.1f} s; {polling[-1]}")
        finally:
            fake.terminate()
            fake.wait(10)
        floors = {loop: floor_rss(d, loop, args.idle) for loop in ("uvloop", "asyncio")}
        log(f"signing {args.orders} tokens ...")
        tokens = [t for _, _, t in presign(signer.private_key_pem(), "rss", args.orders)]
        svc = ServiceProc(d / "loaded", pub, network_printer(free_port()), python=PY)
        with svc:
            time.sleep(2)
            before = proc_status(svc.pid)
            t0 = time.perf_counter()
            ok = asyncio.run(ingest(svc.port, tokens))
            took = time.perf_counter() - t0
            time.sleep(3)
            after = proc_status(svc.pid)
        log("import attribution ...")
        config = d / "loaded" / "config.toml"
        imports, _base = import_rss()
        svc_mods = service_modules(config)
        tm = tracemalloc_split(config)
        it = importtime_top(config)
        chain = import_chain(config)

    def row(label: str, runs: list[dict[str, int]]) -> list[object]:
        def med(key: str) -> float:
            return mb(statistics.median(r[key] for r in runs))

        return [f"{label}, {args.idle:g} s later (median of {len(runs)})", f"{med('VmRSS'):.1f}",
                f"{med('VmHWM'):.1f}", f"{med('RssAnon'):.1f}", f"{med('RssFile'):.1f}",
                " / ".join(f"{mb(r['VmRSS']):.1f}" for r in runs), "PASS" if med("VmRSS") < TARGET_MIB else "FAIL"]

    rows = [
        row("idle, no Wix API key (no search; webhooks accepted, none yet)", idle),
        row("poll intake (a fake Wix searched every 5 s), after printing the 20 orders it found", polling),
        [f"after {ok} orders ingested ({ok / took:.0f}/s), +3 s", f"{mb(after['VmRSS']):.1f}",
         f"{mb(after['VmHWM']):.1f}", f"{mb(after['RssAnon']):.1f}", f"{mb(after['RssFile']):.1f}",
         f"before ingest {mb(before['VmRSS']):.1f}", "PASS" if mb(after["VmRSS"]) < TARGET_MIB else "FAIL"],
    ]
    for loop, st in floors.items():
        rows.append([f"floor: minimal Litestar app + aiosqlite, loop={loop}", f"{mb(st['VmRSS']):.1f}",
                     f"{mb(st['VmHWM']):.1f}", f"{mb(st['RssAnon']):.1f}", f"{mb(st['RssFile']):.1f}", "1 run",
                     "PASS" if mb(st["VmRSS"]) < TARGET_MIB else "FAIL"])
    print(f"\nMachine: {machine()}; interpreter {PY}\n")
    print(f"Service RSS in MiB (target VmRSS < {TARGET_MB:g} MB = {TARGET_MIB:.1f} MiB)\n")
    print(table(["state", "VmRSS", "VmHWM", "RssAnon", "RssFile", "runs", "target"], rows))
    print("\nWhere it comes from: RSS of `python -c 'import X'` alone (MiB; delta over a bare interpreter; "
          "import time ms; deltas overlap, shared deps counted in each)\n")
    print(table(["import", "VmRSS", "delta", "import ms"], imports))
    print(f"\nA child that imports uvicorn and runs `create_app(load_config(...))` (no serving): "
          f"VmRSS {mb(svc_mods['VmRSS']):.1f} MiB, RssAnon {mb(svc_mods['RssAnon']):.1f} MiB, "  # type: ignore[arg-type]
          f"{svc_mods['modules']} modules, {float(svc_mods['t']) * 1000:.0f} ms; heavy packages loaded: "  # type: ignore[arg-type]
          f"{', '.join(svc_mods['heavy'])}")  # type: ignore[arg-type]
    print("\nThe same dependencies imported one after another in one interpreter (RSS deltas add up to "
          "the service's footprint before it serves; MiB):\n")
    print(table(["then import", "VmRSS", "delta VmRSS", "delta RssAnon", "new modules"], chain))
    print("\nPython-heap bytes allocated during those imports, by package (tracemalloc, MiB):\n")
    print(table(["package", "MiB"], [[k, f"{v:.2f}"] for k, v in tm]))
    print("\nImport time of the same by top-level package (python -X importtime, self ms summed):\n")
    print(table(["package", "ms"], [[k, f"{v:.0f}"] for k, v in it]))


if __name__ == "__main__":
    main()
