"""A TCP knock on every box's SSH port, started before pyinfra is imported.

Importing pyinfra and paramiko takes about 1.5 s, and a box that is off costs its whole
connect timeout (2 s). Knocking in plain OS threads while the imports run overlaps the two,
so `fleet status` over a fleet with a dead box stays well under 5 s. Only boxes whose port
answered are handed to pyinfra; the others are reported with the knock's error.

The threads are bare `_thread` threads with `_socket` sockets and a lock made before gevent
patches anything (right after the knock starts): the C-level objects are never replaced, so
they stay real threads doing blocking connects, and, unlike `threading.Thread`, they keep no
bookkeeping that the patched `threading` would trip over when they end.
"""

from __future__ import annotations

import _socket
import _thread
import time
from collections.abc import Sequence

from .inventory import Target


class Knock:
    def __init__(self, targets: Sequence[Target], timeout: float) -> None:
        self.timeout = timeout
        self.started = time.monotonic()
        self.results: dict[str, str | None] = {}
        self._lock = _thread.allocate_lock()
        self._ports = {t.name: t.port for t in targets}
        for t in targets:
            if t.error:
                continue
            if t.ssh_config_file:
                # Reached through its ssh config (ProxyJump through the relay): its own
                # address is not one this controller can knock; the connect timeout counts.
                self.results[t.name] = None
                continue
            _thread.start_new_thread(self._knock, (t,))

    def _knock(self, t: Target) -> None:
        error: str | None = "no address"
        try:
            infos = _socket.getaddrinfo(t.hostname, t.port, 0, _socket.SOCK_STREAM)
        except OSError as e:
            infos, error = [], f"cannot resolve {t.hostname}: {e}"
        for family, kind, proto, _, addr in infos:
            s = _socket.socket(family, kind, proto)
            s.settimeout(max(0.1, self.timeout - (time.monotonic() - self.started)))
            try:
                s.connect(addr)
                error = None
                break
            except TimeoutError:
                error = f"no answer on port {t.port} within {self.timeout:.1f} s"
            except OSError as e:
                error = f"port {t.port}: {e.strerror or e}"
            finally:
                s.close()
        with self._lock:
            self.results[t.name] = error

    def poll(self, name: str) -> tuple[bool, str | None]:
        """(knocked yet, why not reachable); past the timeout a silent box counts as down.
        Polled, not waited on: a greenlet blocking on a real lock would stall every box."""
        with self._lock:
            if name in self.results:
                return True, self.results[name]
        if time.monotonic() - self.started > self.timeout + 0.2:
            return True, f"no answer on port {self._ports.get(name, 22)} within {self.timeout:.1f} s"
        return False, None
