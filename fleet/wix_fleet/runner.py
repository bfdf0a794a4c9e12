"""One command on many boxes at once, over pyinfra's SSH connector.

pyinfra brings the parallel SSH (gevent + paramiko), the host data model and the sudo
handling; each box gets one greenlet from the State's pool with a hard time budget, so a
box that does not answer costs its budget and nothing more, and is reported, not dropped.

Importing this module needs gevent's monkey patching to have happened (cli.main does it
first): without it paramiko's sockets block the whole process and the sweep is serial.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gevent  # type: ignore[import-untyped]  # no stubs; only Timeout, iwait and the pool are used
from pyinfra.api.command import StringCommand
from pyinfra.api.config import Config
from pyinfra.api.exceptions import ConnectError, PyinfraError
from pyinfra.api.host import Host
from pyinfra.api.inventory import Inventory
from pyinfra.api.state import State

from .inventory import Target
from .preflight import Knock

Progress = Callable[[int, int, str], None]


@dataclass
class Result:
    name: str
    reachable: bool
    ok: bool = False
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    seconds: float = 0.0


def quiet(debug: bool = False) -> None:
    # pyinfra and paramiko log every failed connection as an error with a traceback; the
    # table says it in one cell instead.
    level = logging.DEBUG if debug else logging.CRITICAL
    for name in ("pyinfra", "paramiko"):
        logging.getLogger(name).setLevel(level)


def _state(targets: Sequence[Target], connect_timeout: float) -> State:
    inventory = Inventory(([(t.name, t.ssh_data()) for t in targets], {}))  # type: ignore[no-untyped-call]
    # CONNECT_TIMEOUT is paramiko's TCP connect timeout; the per-box budget below also
    # bounds the key exchange and the command.
    config = Config(  # type: ignore[no-untyped-call]
        CONNECT_TIMEOUT=max(1, round(connect_timeout)), PARALLEL=max(1, min(len(targets), 200)))
    return State(inventory, config)


def _close(host: Host) -> None:
    # Closing a dead connection may fail; there is nothing left to do then.
    with contextlib.suppress(Exception):
        host.disconnect()
    client = getattr(host.connector, "client", None)
    if client is not None:
        client.close()


def _run_one(host: Host, target: Target, command: str, budget: float, command_timeout: float,
             knock: Knock | None) -> Result:
    t0 = time.monotonic()
    res = Result(target.name, reachable=False)
    timer = gevent.Timeout(budget)
    timer.start()
    try:
        while knock is not None:
            done, why = knock.poll(target.name)
            if why:
                res.error = why
                return res
            if done:
                break
            gevent.sleep(0.02)
        try:
            host.connect(show_errors=False, raise_exceptions=True)
        except ConnectError as e:
            res.error = str(e.args[0] if e.args else e)
            return res
        res.reachable = True
        ok, out = host.run_shell_command(StringCommand(command), _timeout=command_timeout, _sudo=target.become,
                                         _get_pty=False)
        res.ok, res.stdout, res.stderr = bool(ok), out.stdout, out.stderr
    except gevent.Timeout as e:
        if e is not timer:
            raise
        res.error = (f"no answer within {budget:.1f} s" if not res.reachable
                     else f"command did not finish within {budget:.1f} s")
    except (PyinfraError, OSError, EOFError) as e:
        res.error = f"{type(e).__name__}: {e}"
    except Exception as e:  # paramiko's SSHException and friends: one box's problem, not the sweep's
        res.error = f"{type(e).__name__}: {e}"
    finally:
        timer.close()
        res.seconds = round(time.monotonic() - t0, 2)
        _close(host)
    return res


def run(targets: Sequence[Target], command: Callable[[Target], str], *, budget: float = 3.0,
        connect_timeout: float = 2.0, command_timeout: float | None = None,
        progress: Progress | None = None, knock: Knock | None = None) -> list[Result]:
    """Run `command(target)` on every target in parallel; results in the targets' order.
    With `knock`, a box waits for its port knock and is only connected to if it answered."""
    results: dict[str, Result] = {}
    runnable = []
    for t in targets:
        if t.error:
            results[t.name] = Result(t.name, reachable=False, error=t.error)
        else:
            runnable.append(t)
    done = len(results)
    if progress:
        progress(done, len(targets), "")
    if runnable:
        state = _state(runnable, connect_timeout)
        by_name = {t.name: t for t in runnable}
        greenlets = {}
        for host in state.inventory:
            t = by_name[host.name]
            greenlets[state.pool.spawn(_run_one, host, t, command(t), budget, command_timeout or budget,
                                      knock)] = t
        for g in gevent.iwait(list(greenlets)):
            t = greenlets[g]
            try:
                results[t.name] = g.get()
            except Exception as e:  # a bug in one box's greenlet must not hide the others
                results[t.name] = Result(t.name, reachable=False, error=f"{type(e).__name__}: {e}")
            done += 1
            if progress:
                progress(done, len(targets), t.name)
    return [results[t.name] for t in targets]
