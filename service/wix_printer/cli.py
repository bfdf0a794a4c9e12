"""The `wix-printer` command."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import os
import sys
import time
import types
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import import_module, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import Config, ConfigError, load_config
from .store import StoreError

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("wix_printer")


def _setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _config(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help="config file (default: $WIX_PRINTER_CONFIG)")


# --- serve ------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    cfg = _config(args)
    _serve(cfg, args.log_level)
    return 0


def _ready(notify: Callable[[str], bool]) -> None:
    notify("READY=1")


def _uvicorn_server() -> tuple[type[uvicorn.Server], type[uvicorn.Config]]:
    """uvicorn's Server and Config without running `uvicorn/__init__.py`.

    That file only re-exports, but it imports uvicorn's command line and with it click:
    1.6 MiB of the idle service's resident memory (bench/BENCHMARKS.md section 10) on a
    box with a 45 MB budget, for code the service never runs. The package is registered
    without executing it; its submodules import as usual. Only this process's `serve`
    uses it (tests and tools import uvicorn normally).
    """
    if "uvicorn" not in sys.modules:
        spec = importlib.util.find_spec("uvicorn")
        if spec is None:
            raise ConfigError("uvicorn is not installed")
        sys.modules["uvicorn"] = importlib.util.module_from_spec(spec)
    from uvicorn.config import Config as UvicornConfig
    from uvicorn.server import Server

    # What uvicorn's own modules import from the package (lifespan: `from uvicorn import Config`).
    package = sys.modules["uvicorn"]
    if not hasattr(package, "Config"):
        package.Config = UvicornConfig  # type: ignore[attr-defined]
        package.Server = Server  # type: ignore[attr-defined]
    return Server, UvicornConfig


class _Deferred(types.ModuleType):
    """A stand-in in sys.modules that imports the real module on first attribute use.

    importlib's LazyLoader does not help here: on Python 3.11 `import x` reads
    `x.__spec__`, which makes a lazy module load at once. This stand-in has a plain
    `__spec__`; only other attributes reach `__getattr__`.
    """

    def __getattr__(self, attr: str) -> Any:
        real = self.__dict__.get("_deferred_real")
        if real is None:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
            self.__dict__["_deferred_real"] = real
        return getattr(real, attr)


def _defer_import(name: str) -> None:
    """Register `name` so that it loads on first use instead of on import.

    Litestar imports PyYAML at start-up for one thing, the YAML copy of the OpenAPI
    schema (/schema/openapi.yaml): 1.0 MiB of the idle service's resident memory
    (bench/BENCHMARKS.md section 11) for a page nobody may ever open. Only `serve` does
    this, before Litestar is imported.
    """
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        return  # missing: the importer's own ImportError says so, as without this
    stand_in = _Deferred(name)
    stand_in.__spec__ = spec
    sys.modules[name] = stand_in


def _serve(cfg: Config, log_level: str = "info") -> None:
    _defer_import("yaml")
    from .app import create_app
    from .sdnotify import notify

    try:
        app = create_app(cfg, on_ready=lambda: _ready(notify))
    except ValueError as e:
        raise ConfigError(f"wix.public_key: {e}") from None
    loop = cfg.http.event_loop
    if loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise ConfigError('http.event_loop: "uvloop" is not installed; use "auto" or "asyncio"')
    server_cls, config_cls = _uvicorn_server()
    server = server_cls(
        config_cls(app, host=cfg.http.host, port=cfg.http.port, log_level=log_level.lower(),
                   access_log=False, lifespan="on", server_header=False, loop=loop)
    )
    server.run()


# --- demo -------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    """Virtual printer + service + sample orders, all in this process tree."""
    import subprocess

    base = Path(args.dir).resolve()
    paper = base / "paper"
    paper.mkdir(parents=True, exist_ok=True)
    if not args.keep:
        # Every demo starts from an empty queue and paper roll, so the sample orders print
        # again and the folder holds only this run's receipts.
        for old in [*base.glob("queue.db*"), *paper.glob("*.bin"), *paper.glob("*.png"), *paper.glob("*.txt")]:
            old.unlink(missing_ok=True)
    printer_port = args.printer_port
    cfg_path = base / "config.toml"
    cfg_path.write_text(
        f"""# written by `wix-printer demo`
[http]
host = "127.0.0.1"
port = {args.port}

[store]
path = "{base / 'queue.db'}"
backup_dir = "{base / 'backups'}"

[printer]
kind = "network"
host = "127.0.0.1"
port = {printer_port}

[restaurant]
name = "Imbiss am Boxi"
address = "Boxhagener Platz 1, 10245 Berlin"
timezone = "Europe/Berlin"

[receipts]
header = "Danke für Ihre Bestellung!"
footer = "Guten Appetit!"

[demo]
sample_orders = true
""",
        encoding="utf-8",
    )
    printer = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "wix_printer", "devprinter", "--host", "127.0.0.1", "--port", str(printer_port),
         "--out", str(paper)],
    )
    print(f"""
  wix-printer demo
  ----------------
  virtual printer  127.0.0.1:{printer_port}, receipts land in {paper}/ (.txt .png .bin)
  status page      http://127.0.0.1:{args.port}/status   (JSON; health: /health, API: /schema)
  config           {cfg_path}
  Two sample orders (a delivery in Berlin, a cash pickup in Zürich) print at start-up;
  send your own with:  wix-printer fakewix --help
  Ctrl-C stops both.
""", flush=True)
    try:
        _serve(load_config(cfg_path), args.log_level)
    finally:
        printer.terminate()
        printer.wait(10)
    return 0


# --- config -----------------------------------------------------------------------------
def cmd_config_check(args: argparse.Namespace) -> int:
    cfg = load_config(args.file)
    problems: list[str] = []
    if cfg.wix.public_key:
        from .wix.jwt import load_public_key

        try:
            load_public_key(cfg.wix.public_key)
        except ValueError as e:
            problems.append(f"{args.file}: key `wix.public_key`: {e}")
    from .notify import validate_templates
    from .receipts import validate_layout

    problems += [f"{args.file}: {p}" for p in validate_layout(cfg)]
    problems += [f"{args.file}: {p}" for p in validate_templates(cfg)]
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 2
    print(f"{args.file}: OK")
    return 0


def cmd_config_example(args: argparse.Namespace) -> int:
    sys.stdout.write(resources.files("wix_printer").joinpath("example_config.toml").read_text(encoding="utf-8"))
    return 0


# --- store maintenance ------------------------------------------------------------------
def _run(coro_fn: Callable[[], object]) -> object:
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


def backup_name(now: float | None = None) -> str:
    stamp = datetime.fromtimestamp(now or time.time(), UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"queue-{stamp}.db"


async def _backup(cfg: Config, dest_dir: Path) -> Path:
    """Back up, and tell the owner when backups fail (and when they work again).

    The backup runs from a timer, apart from the service: its incident goes into the
    outbox, and the service's notifier sends it on its next round.
    """
    from .notify import Notifier
    from .store import Store

    store = Store(cfg.store.path)
    await store.open(migrate=False)
    notifier = Notifier(store, cfg.mail, cfg.restaurant.name, timezone=cfg.restaurant.timezone)
    try:
        try:
            path = await store.backup_to(dest_dir / backup_name())
        except (OSError, StoreError) as e:
            await notifier.raise_incident("backup_failing", {"error": str(e), "target": str(dest_dir)})
            raise StoreError(f"backup to {dest_dir} failed: {e}") from e
        await notifier.resolve_incident("backup_failing")
        return path
    finally:
        await store.close()


def cmd_backup(args: argparse.Namespace) -> int:
    cfg = _config(args)
    dest = Path(args.dir or cfg.store.backup_dir)
    path = asyncio.run(_backup(cfg, dest))
    print(f"backup written and verified: {path}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from .store import LATEST, Store

    cfg = _config(args)
    target = LATEST if args.to is None else args.to
    if not 0 <= target <= LATEST:
        raise StoreError(f"schema version {target} unknown (this release knows 0..{LATEST})")

    async def go() -> list[str]:
        store = Store(cfg.store.path)
        await store.open(migrate=False)
        try:
            current = await store.schema_version()
            if current == target:
                return []
            if not args.no_backup:
                # A migration that goes wrong must be undoable by restoring this file.
                path = await store.backup_to(Path(cfg.store.backup_dir) / backup_name())
                print(f"backup before migrating: {path}")
            return await store.migrate_to(target)
        finally:
            await store.close()

    steps = asyncio.run(go())
    for s in steps:
        print(s)
    print(f"schema at version {target}" if steps else f"schema already at version {target}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    import sqlite3

    cfg = _config(args)
    src = Path(args.file)
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as check:
        res = check.execute("PRAGMA integrity_check").fetchone()
    if not res or res[0] != "ok":
        raise ConfigError(f"{src}: not a healthy SQLite database ({res[0] if res else 'no answer'})")
    dest = Path(cfg.store.path)
    if dest.exists() and not args.force:
        raise ConfigError(f"{dest} exists; stop the service and pass --force to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".restore")
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as s, sqlite3.connect(tmp) as d:
        s.backup(d)
    for suffix in ("-wal", "-shm"):
        Path(str(dest) + suffix).unlink(missing_ok=True)
    os.replace(tmp, dest)
    print(f"restored {src} -> {dest}")
    return 0


# --- render -----------------------------------------------------------------------------
def cmd_render(args: argparse.Namespace) -> int:
    from .receipts import build_receipt, to_escpos, to_png, to_text
    from .receipts.context import RenderContext
    from .wix.model import order_from_raw

    cfg = load_config(args.config) if args.config else Config()
    raw = json.loads(Path(args.order).read_text(encoding="utf-8"))
    order = order_from_raw(raw)
    ctx = RenderContext.from_config(cfg)
    doc = build_receipt(args.receipt, order, ctx)
    out: bytes
    if args.fmt == "text":
        out = to_text(doc, ctx.columns).encode("utf-8")
    elif args.fmt == "png":
        out = to_png(doc, ctx.columns)
    else:
        out = to_escpos(doc, ctx.codepage, ctx.columns)
    if args.output:
        Path(args.output).write_bytes(out)
    else:
        sys.stdout.buffer.write(out)
    return 0


# --- test print -------------------------------------------------------------------------
def cmd_test_print(args: argparse.Namespace) -> int:
    """Queue a test page; with --wait, exit 0 only once the printer confirmed it."""
    from . import operations
    from .store import Store

    cfg = _config(args)

    async def go() -> tuple[int, str]:
        store = Store(cfg.store.path)
        await store.open(migrate=False)
        try:
            job_id = (await operations.test_print(store)).job_ids[0]
            deadline = time.monotonic() + args.wait
            while True:
                job = await store.get_job(job_id)
                state = job.state if job else "missing"
                if state in ("printed", "failed", "cancelled") or time.monotonic() >= deadline:
                    return job_id, state
                await asyncio.sleep(0.2)
        finally:
            await store.close()

    job_id, state = asyncio.run(go())
    print(f"test print job {job_id}: {state}")
    return 0 if state == "printed" or (args.wait == 0 and state == "queued") else 1


# --- status -----------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    import urllib.request

    cfg = _config(args)
    url = f"http://{cfg.http.host}:{cfg.http.port}/status"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            data = json.loads(r.read())
    except OSError as e:
        print(f"service not answering at {url}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2, ensure_ascii=False))
    return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wix-printer", description="Prints approved Wix orders on a receipt printer.")
    parser.add_argument("--version", action="version", version=f"wix-printer {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the service")
    _add_config(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="run the service with the virtual printer and sample orders")
    p.add_argument("--dir", default="var/demo", help="state folder (default var/demo)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    p.add_argument("--printer-port", type=int, default=9100, help="virtual printer port (default 9100)")
    p.add_argument("--keep", action="store_true",
                   help="continue the previous demo (its queue and receipts) instead of starting empty")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("config", help="check or print configuration")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    c = csub.add_parser("check", help="validate a config file without starting")
    c.add_argument("file")
    c.set_defaults(func=cmd_config_check)
    c = csub.add_parser("example", help="print a commented example config")
    c.set_defaults(func=cmd_config_example)

    p = sub.add_parser("setup-mail", help="set up e-mail alerts for the owner (interactive or by flags)")
    if command == "setup-mail":
        from .notify import setup as mail_setup

        mail_setup.configure_parser(p)  # defines its own --config
        p.set_defaults(func=mail_setup.run)

    p = sub.add_parser("migrate", help="apply (or revert) schema migrations, after a backup")
    _add_config(p)
    p.add_argument("--to", type=int, help="target schema version (default: latest)")
    p.add_argument("--no-backup", action="store_true", help="skip the backup taken before migrating")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("backup", help="online backup of the queue database, verified")
    _add_config(p)
    p.add_argument("dir", nargs="?", help="target folder (default: [store] backup_dir)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="replace the queue database with a backup (service stopped)")
    _add_config(p)
    p.add_argument("file")
    p.add_argument("--force", action="store_true", help="replace an existing database")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("render", help="show what a receipt for an order would look like")
    p.add_argument("order", help="order JSON file (Wix REST or SDK naming)")
    p.add_argument("--receipt", default="kitchen", choices=["kitchen", "driver", "customer", "cancel", "change"])
    p.add_argument("--as", dest="fmt", default="text", choices=["text", "png", "escpos"])
    p.add_argument("--output", "-o", help="write to this file instead of stdout")
    p.add_argument("--config", "-c", help="config file for restaurant and layout settings")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("test-print", help="queue a test page through the running service's printer")
    _add_config(p)
    p.add_argument("--wait", type=float, default=30.0,
                   help="seconds to wait for the printer's confirmation (0: just queue it)")
    p.set_defaults(func=cmd_test_print)

    p = sub.add_parser("status", help="ask the running service for its status")
    _add_config(p)
    p.set_defaults(func=cmd_status)

    # The peers pull in Pillow, Litestar and uvicorn; import them only when asked for,
    # so every other command starts fast.
    for name, text in (("devprinter", "run the virtual ESC/POS printer"),
                       ("fakewix", "run a local fake Wix (search API, signed webhooks) for tests and demos")):
        p = sub.add_parser(name, help=text)
        if command == name:
            mod = import_module(f"wix_printer.{name}.cli")
            mod.configure_parser(p)
            p.set_defaults(func=mod.run)
    return parser


def _command_of(argv: list[str]) -> str | None:
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--log-level":
            skip = True
        elif not a.startswith("-"):
            return a
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = _command_of(argv)
    args = build_parser(command).parse_args(argv)
    _setup_logging(args.log_level)
    try:
        rc = args.func(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except StoreError as e:
        print(f"error: store: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
