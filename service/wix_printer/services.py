"""The running service's parts, built once in app.py and injected into handlers by name."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from litestar.di import NamedDependency

from .config import Config
from .intake import Intake
from .printing.worker import PrinterMonitor, PrintWorker
from .store import Store
from .wix.jwt import JwtVerifier

if TYPE_CHECKING:
    from .notify import Notifier
    from .recovery import RecoveryController


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
        self.recovery: RecoveryController | None = None
        self.notifier: Notifier | None = None
        self.task_alive: dict[str, Callable[[], bool]] = {}

    def webhook_seen(self, at: float) -> None:
        self.last_webhook_at = at

    def wix_back(self) -> None:
        """Connectivity to Wix returned (the catch-up that noticed has already run)."""
        if self.recovery is not None:
            self.recovery.trigger("wix_back")

    async def recovery_failed(self, run_id: int, why: str) -> None:
        if self.notifier is not None:
            await self.notifier.raise_incident("recovery_failed", {"run_id": run_id, "reason": why})

    def worker_wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    def wix_status(self) -> dict[str, Any]:
        wix = self.config.wix
        polls = self.catchup is not None and wix.effective_poll_interval > 0
        out: dict[str, Any] = {
            "intake": wix.intake if self.catchup is not None else "webhook",
            "last_webhook_at": self.last_webhook_at,
            "polling": polls,
            # How long an order may take to reach the queue in the worst case.
            "expected_latency_s": round(wix.effective_poll_interval + 1, 1) if polls else 1.0,
        }
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


# Handlers name it `services`; marked explicitly, as Litestar 3 drops inferred dependencies.
ServicesDep = NamedDependency[Services]
