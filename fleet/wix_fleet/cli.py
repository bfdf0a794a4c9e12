"""`fleet`: see and act on every box at once (status, test-print, logs, diagnose, exec).

Ansible owns desired state; this is the operator's fast, read-mostly view on top, over the
same inventory. Output for people goes to stdout, progress to stderr, so `--json` pipes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import remote
from .inventory import InventoryError, Target, default_inventory, load
from .preflight import Knock
from .report import Level, as_json, mark_version_drift, parse_probe, table, unreachable

if TYPE_CHECKING:
    from .runner import Progress, Result


def _patch() -> None:
    # gevent must patch sockets, threads and subprocess before paramiko or pyinfra are
    # imported, or every SSH connection blocks the others. Only the CLI does this: the pure
    # modules (inventory, report, remote) stay importable in an unpatched process.
    from gevent import monkey  # type: ignore[import-untyped]

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()


def colour_wanted(stream: Any, flag: str) -> bool:
    if flag == "always":
        return True
    if flag == "never" or os.environ.get("NO_COLOR"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


class Bar:
    """A one-line progress bar on stderr; silent when stderr is not a terminal (CI logs)."""

    def __init__(self, what: str, enabled: bool) -> None:
        self.what = what
        self.enabled = enabled
        self.t0 = time.monotonic()

    def __call__(self, done: int, total: int, name: str) -> None:
        if not self.enabled or total == 0:
            return
        width = 24
        fill = int(width * done / total)
        tail = f" {name}" if name else ""
        sys.stderr.write(f"\r\033[K{self.what} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} "
                         f"{time.monotonic() - self.t0:.1f}s{tail}")
        if done == total:
            sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def _targets(args: argparse.Namespace, limit: str | None = None) -> list[Target]:
    inv = Path(args.inventory) if args.inventory else default_inventory()
    targets = load(inv, limit if limit is not None else args.limit, use_cache=not args.refresh_inventory)
    if not targets:
        raise InventoryError(f"no box in {inv} matches --limit {args.limit!r}")
    return targets


def _run(args: argparse.Namespace, targets: Sequence[Target], command: Callable[[Target], str], what: str,
         budget: float, command_timeout: float | None = None) -> list[Result]:
    knock = Knock(targets, args.connect_timeout)  # runs while pyinfra is imported
    _patch()
    from . import runner

    runner.quiet(args.debug)
    bar: Progress = Bar(what, enabled=args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty()))
    return runner.run(targets, command, budget=budget, connect_timeout=args.connect_timeout,
                      command_timeout=command_timeout, progress=bar, knock=knock)


# --- status ------------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    targets = _targets(args)
    results = _run(args, targets, lambda t: remote.status_command(t, http_timeout=min(1.5, args.timeout / 2)),
                   "gathering", budget=args.timeout)
    boxes = []
    for r in results:
        if not r.reachable:
            boxes.append(unreachable(r.name, r.error, r.seconds))
            continue
        try:
            probe = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            detail = r.error or (r.stderr or r.stdout).strip()[-300:] or "no output"
            b = unreachable(r.name, f"probe failed: {detail}", r.seconds)
            b.reachable = True
            b.cells = {"service": Level.BAD}
            boxes.append(b)
            continue
        boxes.append(parse_probe(r.name, probe, r.seconds))
    mark_version_drift(boxes)
    elapsed = round(time.monotonic() - t0, 2)
    if args.json:
        print(as_json(boxes, gathered_in_s=elapsed, generated_at=time.time()))
    else:
        print(table(boxes, colour=colour_wanted(sys.stdout, args.color)))
        print(f"gathered in {elapsed:.1f} s", file=sys.stderr)
    worst = max((b.level for b in boxes), default=Level.OK)
    # Exit code for cron and scripts: 0 all fine, 1 something needs a look, 2 a box is down.
    return 2 if any(not b.reachable for b in boxes) else 1 if worst >= Level.WARN else 0


# --- test-print ---------------------------------------------------------------------------------
def cmd_test_print(args: argparse.Namespace) -> int:
    targets = _targets(args)
    results = _run(args, targets, lambda t: remote.test_print_command(t, args.wait), "printing",
                   budget=args.wait + args.timeout)
    rows: list[dict[str, Any]] = []
    for res in results:
        out, rc = remote.split_rc(res.stdout)
        last = (out.strip().splitlines() or [""])[-1]
        rows.append({"box": res.name, "ok": res.reachable and rc == 0, "reachable": res.reachable, "exit_code": rc,
                     "detail": res.error or last or res.stderr.strip()[-200:], "seconds": res.seconds})
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        colour = colour_wanted(sys.stdout, args.color)
        width = max(len(row["box"]) for row in rows)
        for row in rows:
            word = "PRINTED" if row["ok"] else "UNREACHABLE" if not row["reachable"] else "FAILED"
            if colour:
                word = f"\033[{'32' if row['ok'] else '1;31'}m{word}\033[0m"
            print(f"{row['box'].ljust(width)}  {word}  {row['seconds']:.1f}s  {row['detail']}")
    return 0 if all(row["ok"] for row in rows) else 1


# --- logs -----------------------------------------------------------------------------------------
def cmd_logs(args: argparse.Namespace) -> int:
    targets = _targets(args)
    out = Path(args.out or f"var/fleet/logs-{time.strftime('%Y%m%d-%H%M%S')}")
    results = _run(args, targets, lambda t: remote.logs_command(t, args.since, args.unit or None), "collecting",
                   budget=args.timeout, command_timeout=args.timeout)
    failed = 0
    for r in results:
        d = out / r.name
        d.mkdir(parents=True, exist_ok=True)
        text, rc = remote.split_rc(r.stdout)
        if r.reachable and rc == 0:
            (d / "journal.txt").write_text(text + "\n" if text else "")
            print(f"{r.name}: {len(text.splitlines())} lines -> {d / 'journal.txt'}")
        else:
            failed += 1
            (d / "error.txt").write_text(f"{r.error or ''}\n{r.stderr}\n")
            print(f"{r.name}: FAILED ({r.error or r.stderr.strip()[-200:] or f'exit {rc}'})")
    return 1 if failed else 0


# --- diagnose --------------------------------------------------------------------------------------
def cmd_diagnose(args: argparse.Namespace) -> int:
    targets = _targets(args, limit=args.host)
    if len(targets) != 1:
        raise InventoryError(f"diagnose takes one box; {args.host!r} matches {len(targets)}")
    t = targets[0]
    (r,) = _run(args, targets, lambda t: remote.diagnose_command(t, lines=args.lines), "collecting",
                budget=args.timeout, command_timeout=args.timeout)
    try:
        files: dict[str, str] = json.loads(r.stdout.strip().splitlines()[-1]) if r.reachable else {}
    except (ValueError, IndexError):
        files = {}
    if not files:
        print(f"{t.name}: no bundle ({r.error or r.stderr.strip()[-300:] or 'no output'})", file=sys.stderr)
        return 1
    files["fleet.json"] = json.dumps({"box": t.name, "hostname": t.hostname, "groups": list(t.groups),
                                      "collected_at": time.time(), "seconds": r.seconds}, indent=2) + "\n"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = Path(args.out or f"var/fleet/diagnose-{t.name}-{stamp}.tar.gz")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz") as tar:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{t.name}-{stamp}/{name}")
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            tar.addfile(info, io.BytesIO(data))
    print(dest)
    return 0


# --- exec -------------------------------------------------------------------------------------------
def cmd_exec(args: argparse.Namespace) -> int:
    argv = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise InventoryError("nothing to run: fleet exec [--limit X] -- COMMAND ...")
    # One word is taken as a shell line (pipes, globs); several words are quoted as given.
    line = argv[0] if len(argv) == 1 else " ".join(_quote(a) for a in argv)
    targets = _targets(args)
    if not args.yes:
        names = ", ".join(t.name for t in targets[:8]) + (" ..." if len(targets) > 8 else "")
        if not sys.stdin.isatty():
            print("fleet exec asks before it runs; without a terminal pass --yes", file=sys.stderr)
            return 3
        answer = input(f"run `{line}` as {targets[0].user} on {len(targets)} box(es) ({names})? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing run", file=sys.stderr)
            return 3
    results = _run(args, targets, lambda t: remote.with_rc(line), "running", budget=args.timeout,
                   command_timeout=args.timeout)
    worst = 0
    for r in results:
        text, rc = remote.split_rc(r.stdout)
        status = f"exit {rc}" if r.reachable and rc is not None else (r.error or "failed")
        print(f"=== {r.name} ({status}, {r.seconds:.1f}s)")
        if text:
            print(text)
        if r.stderr.strip():
            print(r.stderr.rstrip(), file=sys.stderr)
        worst = max(worst, 1 if rc else 0, 0 if r.reachable and rc is not None else 2)
    return worst


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


# --- parser ------------------------------------------------------------------------------------------
# --- enrol ----------------------------------------------------------------------------------------
def cmd_enrol(args: argparse.Namespace) -> int:
    from . import enrol

    inv = enrol.inventory_dir_of(Path(args.inventory) if args.inventory else default_inventory())
    if args.sync:
        enrol.sync(inv)
        print(f"regenerated {inv / enrol.HOSTS_FILE} and {inv / enrol.SSH_CONFIG}", file=sys.stderr)
        return 0
    if not args.box:
        raise InventoryError("enrol needs a BOX-ID (or --sync)")
    e = enrol.enrol(inv, args.box, keys_dir=Path(args.keys_dir), relay_host=args.relay, relay_port=args.relay_port,
                    relay_host_key=args.relay_host_key, jump_key=args.jump_key)
    enrol.report(e, inv)
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-i", "--inventory", help="Ansible inventory (default: as ansible would: "
                        "$ANSIBLE_INVENTORY, else ansible.cfg's)")
    common.add_argument("--connect-timeout", type=float, default=2.0, metavar="S",
                        help="TCP connect timeout per box (default 2)")
    common.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    common.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                        help="progress bar on stderr (auto: when stderr is a terminal)")
    common.add_argument("--refresh-inventory", action="store_true",
                        help="ask ansible-inventory again even if the inventory files did not change")
    common.add_argument("--debug", action="store_true", help="pyinfra and paramiko debug logging")

    p = argparse.ArgumentParser(prog="fleet", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    s = sub.add_parser("status", parents=[common], help="one table for all boxes")
    s.add_argument("-l", "--limit", help="host or group names/globs, as ansible --limit")
    s.add_argument("--json", action="store_true", help="JSON for scripts")
    s.add_argument("--timeout", type=float, default=3.0, metavar="S",
                   help="budget per box: connect, probe, answer (default 3)")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("test-print", parents=[common], help="a test page on every printer")
    s.add_argument("-l", "--limit")
    s.add_argument("--wait", type=float, default=20, metavar="S", help="how long a printer may take (default 20)")
    s.add_argument("--timeout", type=float, default=10.0, metavar="S", help="budget per box beyond --wait")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_test_print)

    s = sub.add_parser("logs", parents=[common], help="journal excerpts, a folder per box")
    s.add_argument("-l", "--limit")
    s.add_argument("--since", default="1h", help="1h, 30min, 2d or anything journalctl --since takes (default 1h)")
    s.add_argument("--unit", action="append", help="journal unit (repeatable; default the wix-printer units)")
    s.add_argument("-o", "--out", help="folder (default var/fleet/logs-<time>)")
    s.add_argument("--timeout", type=float, default=30.0, metavar="S")
    s.set_defaults(func=cmd_logs)

    s = sub.add_parser("enrol", parents=[common], help="put a box behind the fleet relay (key, ports, inventory)")
    s.add_argument("box", nargs="?", metavar="BOX-ID", help="the box's inventory name and host name")
    s.add_argument("--relay", help="the relay's public host name (once; kept in the box list)")
    s.add_argument("--relay-port", type=int, help="the relay's SSH port (default 22)")
    s.add_argument("--relay-host-key", help="the relay's SSH host key, 'ssh-ed25519 AAAA...' (once)")
    s.add_argument("--jump-key", help="this controller's private key for the relay's jump account "
                   "(once; its .pub is authorised on the relay)")
    s.add_argument("--keys-dir", default="var/relay-keys", help="where the boxes' private keys stay (0600; "
                   "default var/relay-keys)")
    s.add_argument("--sync", action="store_true", help="only regenerate relay_hosts.yml and relay_ssh.cfg")
    s.set_defaults(func=cmd_enrol)

    s = sub.add_parser("diagnose", parents=[common], help="a support bundle of one box as one archive")
    s.add_argument("host")
    s.add_argument("--lines", type=int, default=1000, help="journal lines (default 1000)")
    s.add_argument("-o", "--out", help="archive path (default var/fleet/diagnose-<box>-<time>.tar.gz)")
    s.add_argument("--timeout", type=float, default=30.0, metavar="S")
    s.set_defaults(func=cmd_diagnose, limit=None)

    s = sub.add_parser("exec", parents=[common], help="a one-off command on boxes, after a confirmation")
    s.add_argument("-l", "--limit")
    s.add_argument("-y", "--yes", action="store_true", help="do not ask")
    s.add_argument("--timeout", type=float, default=60.0, metavar="S")
    s.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    s.set_defaults(func=cmd_exec)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc: int = args.func(args)
    except InventoryError as e:
        print(f"fleet: {e}", file=sys.stderr)
        return 4
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in ("pyinfra", "gevent", "paramiko"):
            print("fleet: pyinfra is missing; install the controller extra: pip install -e '.[fleet]'",
                  file=sys.stderr)
            return 4
        raise
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `fleet status --json | head`: the reader left; not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return rc


if __name__ == "__main__":
    sys.exit(main())
