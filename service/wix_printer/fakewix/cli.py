"""`wix-printer fakewix`: run the fake Wix as a process for demos and black-box tests."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from wix_printer.fakewix.orders import generate_orders
from wix_printer.fakewix.server import FakeWix
from wix_printer.fakewix.signing import WebhookSigner


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; the fake has no security)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (printed)")
    p.add_argument("--orders", type=Path, metavar="DIR",
                   help="load every *.json in DIR (one order or a list of orders per file)")
    p.add_argument("--generate", type=int, default=0, metavar="N",
                   help="also serve N generated orders from the last N*2 minutes")
    p.add_argument("--seed", type=int, default=1, help="seed for --generate")
    p.add_argument("--key-out", type=Path, metavar="DIR",
                   help="keep the signing key in DIR (wix.key, wix.pub.pem); reused if present")
    p.add_argument("--api-key", default="test-key", help="API key the search endpoint accepts")
    p.add_argument("--site-id", default="site-1", help="wix-site-id the search endpoint accepts")
    p.add_argument("--instance-id", default="site-1", help="instanceId put into signed webhooks")


def _load_orders(folder: Path) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data if isinstance(data, list) else [data]
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise ValueError(f"{path}: not an order (needs an `id`)")
            orders.append(item)
    return orders


async def _serve(fake: FakeWix) -> None:
    url = await fake.start(log_config=None)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, fake.request_stop)
    print(f"fakewix: listening on {url} (api key {fake.api_key!r}, site id {fake.site_id!r}, "
          f"{len(fake.orders)} orders)", flush=True)
    try:
        await fake.wait_closed()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await fake.stop()


def run(args: argparse.Namespace) -> int:
    try:
        signer = WebhookSigner.from_dir(args.key_out) if args.key_out else WebhookSigner()
        orders = _load_orders(args.orders) if args.orders else []
    except (OSError, ValueError) as e:
        print(f"fakewix: {e}", file=sys.stderr)
        return 2
    if args.generate:
        start = datetime.now(UTC) - timedelta(minutes=2 * args.generate)
        orders += generate_orders(args.generate, start, args.seed, spread_seconds=120.0)
    fake = FakeWix(api_key=args.api_key, site_id=args.site_id, instance_id=args.instance_id,
                   signer=signer, host=args.host, port=args.port, orders=orders)
    if args.key_out:
        print(f"fakewix: public key {Path(args.key_out) / 'wix.pub.pem'}", flush=True)
    try:
        asyncio.run(_serve(fake))
    except OSError as e:
        print(f"fakewix: cannot serve on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m wix_printer.fakewix.cli`) until the main CLI wires it."""
    p = argparse.ArgumentParser(prog="wix-printer fakewix", description=__doc__)
    configure_parser(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
