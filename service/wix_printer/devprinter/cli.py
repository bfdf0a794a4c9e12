"""``wix-printer devprinter``: run the virtual printer as its own process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from .printer import Faults, VirtualPrinter

log = logging.getLogger("wix_printer.devprinter")


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9100, help="raw ESC/POS port (default 9100; 0 = any free)")
    p.add_argument("--out", type=Path, required=True, help="folder for NNNN.bin/.png/.txt per receipt")
    p.add_argument(
        "--control-port",
        type=int,
        default=None,
        help="HTTP control API on 127.0.0.1 (GET /state, POST|DELETE /fault/<name>, POST /reset)",
    )
    faults = p.add_argument_group("initial faults (all switchable later through the control API)")
    faults.add_argument("--offline", action="store_true", help="printer offline: hold printing")
    faults.add_argument("--paper-near-end", action="store_true", help="report paper near end")
    faults.add_argument("--paper-end", action="store_true", help="paper out: hold printing until cleared")
    faults.add_argument("--cover-open", action="store_true", help="cover open: hold printing")
    faults.add_argument("--slow", type=float, default=0.0, metavar="SECONDS_PER_KB", help="print slowly")
    faults.add_argument("--silent", action="store_true", help="never answer any status query")
    faults.add_argument(
        "--cut-after", type=int, default=None, metavar="BYTES", help="reset the connection after BYTES (once)"
    )
    faults.add_argument(
        "--no-process-id", action="store_true", help='ignore GS ( H (for confirm = "status" clients)'
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def faults_from_args(args: argparse.Namespace) -> Faults:
    return Faults(
        offline=args.offline,
        paper_near_end=args.paper_near_end,
        paper_end=args.paper_end,
        cover_open=args.cover_open,
        slow=args.slow,
        silent=args.silent,
        cut_after=args.cut_after,
        no_process_id=args.no_process_id,
    )


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    printer = VirtualPrinter(
        args.out,
        host=args.host,
        port=args.port,
        control_port=args.control_port,
        faults=faults_from_args(args),
    )
    async with printer:
        control = f", control http://127.0.0.1:{printer.control_port}" if printer.control_port else ""
        # Tests start us with --port 0 and read the real port from this line.
        log.info("devprinter listening on %s:%d%s, out %s", args.host, printer.port, control, args.out)
        await stop.wait()
        log.info("devprinter stopping after %d jobs", len(printer.jobs))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)


def run(args: argparse.Namespace) -> int:
    level = logging.DEBUG if getattr(args, "verbose", False) else logging.INFO
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=level, format="%(message)s")
    log.setLevel(level)
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        log.error("devprinter: %s", exc)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wix-printer devprinter", description="virtual TM-m30III")
    configure_parser(parser)
    return run(parser.parse_args(argv))
