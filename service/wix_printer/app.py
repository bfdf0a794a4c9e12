"""Builds the Litestar app: lifespan opens the store and starts the background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from litestar import Litestar
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig

from . import __version__
from .api.recovery import ROUTES as recovery_routes
from .api.status import get_health, get_status
from .api.webhooks import receive_wix_webhook
from .config import Config
from .intake import Intake
from .printing.render import diff_for_intake, interruption_slip, load_money_formats, make_renderer, reprint_banner
from .printing.worker import PrinterMonitor, PrintWorker
from .recovery import RecoveryController, stale_check
from .services import Services
from .store import Store
from .supervise import supervise
from .wix.jwt import JwtVerifier, load_public_key

if TYPE_CHECKING:
    from litestar.types import Scope

log = logging.getLogger(__name__)


def _log_server_error(exc: Exception, scope: Scope) -> None:
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return  # a refusal the client is told about; the handlers log what they refuse
    log.error("%s %s failed", scope.get("method", ""), scope.get("path", ""), exc_info=exc)


def build_services(config: Config, clock: Callable[[], float] = time.time) -> Services:
    store = Store(config.store.path, clock=clock)
    intake = Intake(store, config, diff_for_intake(config))
    verifier = None
    if config.wix.public_key:
        verifier = JwtVerifier(load_public_key(config.wix.public_key), leeway=config.wix.jwt_leeway, clock=clock)
        if config.wix.intake != "poll":
            # Webhooks are how this box gets its orders: no import delay on the first one.
            verifier.prepare()
    monitor = PrinterMonitor(clock)
    worker = PrintWorker(
        store, config.printer, config.store, make_renderer(config, clock),
        monitor=monitor, reprint_banner=reprint_banner(config), interruption_slip=interruption_slip(config),
        clock=clock, recovery=config.recovery, stale_check=stale_check(config),
        warmup=lambda: load_money_formats(config),
    )
    services = Services(config, store, intake, verifier, worker, monitor, clock)
    services.recovery = RecoveryController(store, worker, monitor, config, clock=clock,
                                           on_failed=services.recovery_failed)
    monitor.listeners.append(services.recovery.on_printer_state)
    return services


def settle_memory() -> None:
    """Once after start-up: free the import and app-building garbage and hand it back.

    Without this the box keeps several MB of freed heap from start-up for good (glibc only
    trims the top of the heap). gc.freeze() moves the ~600 modules' objects out of the
    collector's generations, so later full collections, which run on the event loop
    between webhooks, walk only what the service allocates while running.
    """
    gc.collect()
    gc.freeze()
    try:
        import ctypes

        trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only
        if trim is not None:
            trim(0)
    except OSError:
        pass


def _alive(task: asyncio.Task[Any]) -> Callable[[], bool]:
    return lambda: not task.done()


def create_app(config: Config, *, clock: Callable[[], float] = time.time,
               on_ready: Callable[[], None] | None = None) -> Litestar:
    services = build_services(config, clock)
    from .web import web_plugin

    # The status page, operator API and /metrics (web/): routes, session + access middleware.
    web = web_plugin(services)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await services.store.open()
        tasks: dict[str, asyncio.Task[Any]] = {}
        if services.worker is not None:
            tasks["print worker"] = asyncio.create_task(services.worker.run(), name="print-worker")
        if config.demo.sample_orders:
            from .samples import ingest_samples

            await ingest_samples(services)
        from .catchup import start_catchup

        catchup_task = start_catchup(services)
        if catchup_task is not None:
            tasks["wix catch-up"] = catchup_task
        if config.mail.enabled:
            from .notify import Notifier

            notifier = Notifier(services.store, config.mail, config.restaurant.name, clock,
                                timezone=config.restaurant.timezone)
            notifier.attach_printer_monitor(services.printer_monitor)
            if services.catchup is not None:
                notifier.attach_catchup(services.catchup)
            services.notifier = notifier
            tasks["notifier"] = asyncio.create_task(notifier.run(), name="notifier")
        tasks["supervisor"] = asyncio.create_task(supervise(services), name="supervisor")
        for name, task in tasks.items():
            services.task_alive[name] = _alive(task)
        if services.recovery is not None:
            await services.recovery.resume_after_restart()
        settle_memory()
        if on_ready:
            on_ready()
        try:
            yield
        finally:
            if services.recovery is not None:
                await services.recovery.stop()
            if services.worker is not None:
                await services.worker.stop()
            for task in tasks.values():
                task.cancel()
            for task in tasks.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await services.store.close()

    return Litestar(
        route_handlers=[receive_wix_webhook, get_health, get_status, *recovery_routes],
        dependencies={"services": Provide(lambda: services, use_cache=True, sync_to_thread=False)},
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="wix-printer", version=__version__, path="/schema"),
        request_max_body_size=config.http.max_body_bytes,
        debug=False,
        # Litestar's own logging set-up runs a queue-listener thread and dictConfig for one
        # logger; the service's handlers are configured already (cli), so a hook logs what
        # matters instead: a 500 leaves a traceback in the journal, not nothing.
        logging_config=None,
        after_exception=[_log_server_error],
        on_app_init=[web.on_app_init],
    )
