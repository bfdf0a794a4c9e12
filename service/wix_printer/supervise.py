"""Keeps systemd informed and the process honest.

WATCHDOG=1 goes out only while the print worker's loop makes progress, so a hung worker
(not just a dead process) gets the service restarted. A store that stays unwritable is
not something this process can fix: it exits and lets systemd start it fresh.
"""

from __future__ import annotations

import asyncio
import logging
import os

from .sdnotify import notify
from .services import Services

log = logging.getLogger(__name__)

STORE_FAILURES_BEFORE_EXIT = 3
EXIT_TEMPFAIL = 75  # EX_TEMPFAIL: systemd's Restart=on-failure starts us again


def watchdog_interval() -> float | None:
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and int(pid) != os.getpid():
        return None
    return int(usec) / 1e6


async def supervise(services: Services, *, check_every: float = 5.0) -> None:
    interval = watchdog_interval()
    # Ping twice per watchdog period, as sd_watchdog_enabled(3) recommends.
    tick = min(check_every, interval / 2) if interval else check_every
    store_failures = 0
    last_store_check = 0.0
    while True:
        now = services.clock()
        worker = services.worker
        worker_ok = worker is None or now - worker.alive_at < (interval or 30.0)
        if interval and worker_ok:
            notify("WATCHDOG=1")
        elif interval and worker is not None:
            log.error("print worker made no progress for %.0f s: withholding the watchdog ping", now - worker.alive_at)
        if now - last_store_check >= check_every:
            last_store_check = now
            if await services.store.writable():
                store_failures = 0
            else:
                store_failures += 1
                log.error("store not writable (%d/%d)", store_failures, STORE_FAILURES_BEFORE_EXIT)
                if store_failures >= STORE_FAILURES_BEFORE_EXIT:
                    log.critical("store stayed unwritable: exiting so systemd restarts the service")
                    os._exit(EXIT_TEMPFAIL)
        await asyncio.sleep(tick)
