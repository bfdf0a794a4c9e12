"""The running service's parts, built once in app.py and injected into handlers by name."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .config import Config
from .intake import Intake
from .printing.worker import PrinterMonitor, PrintWorker
from .store import Store
from .wix.jwt import JwtVerifier


class Services:
    def __init__(
        self,
        config: Config,
        store: Store,
        intake: Intake,
        verifier: JwtVerifier | None,
        worker: PrintWorker | None,
        printer_monitor: PrinterMonitor,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.intake = intake
        self.verifier = verifier
        self.worker = worker
        self.printer_monitor = printer_monitor
        self.clock = clock
        self.started_at = clock()
        self.last_webhook_at: float | None = None
        self.catchup: Any = None  # the Catchup poller, when Wix API access is configured
        self.task_alive: dict[str, Callable[[], bool]] = {}

    def webhook_seen(self, at: float) -> None:
        self.last_webhook_at = at

    def worker_wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    def wix_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"last_webhook_at": self.last_webhook_at, "polling": self.catchup is not None}
        if self.catchup is not None:
            out.update(self.catchup.as_dict())
        return out

    async def health_problems(self) -> list[str]:
        problems = []
        if not await self.store.writable():
            problems.append("store is not writable")
        for name, alive in self.task_alive.items():
            if not alive():
                problems.append(f"{name} is not running")
        return problems
