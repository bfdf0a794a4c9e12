"""The local status page, the operator API and /metrics, as one part app.py plugs in.

    web = web_plugin(services)
    Litestar(..., on_app_init=[web.on_app_init])

Pieces: access.py (default-deny access control, CSRF, Secure cookies), auth.py
(password, session secret, login limiter), pages.py (HTML), api.py (/api/v1 JSON),
metrics.py (Prometheus), state.py (what the page shows), preview.py (receipt pictures
from the bytes the printer got), queries.py (read-only SQL).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from litestar import Response, get
from litestar.config.app import AppConfig
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler, Middleware

from ..services import Services
from . import pages
from .access import AccessControl, SecureCookies
from .api import api_router
from .auth import Auth, load_session_secret
from .session import SignedCookieSession
from .state import STATIC, Web, WebDep

log = logging.getLogger(__name__)

SESSION_COOKIE = "wixprinter_session"
# The Prometheus text format (metrics.py is imported on the first scrape).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@get("/metrics", summary="Prometheus metrics (text format)", media_type=CONTENT_TYPE)
async def get_metrics(web: WebDep) -> Response[bytes]:
    return Response(await web.metrics.render(), media_type=CONTENT_TYPE, headers={"cache-control": "no-store"})


@dataclass
class WebParts:
    """What the web part adds to the app; `on_app_init` merges it into Litestar's config."""

    route_handlers: list[ControllerRouterHandler]
    middleware: list[Middleware]
    dependencies: dict[str, Provide]
    plugins: list[Any] = field(default_factory=list)
    on_startup: Callable[[], Awaitable[None]] | None = None
    web: WebDep | None = None

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers = [*app_config.route_handlers, *self.route_handlers]
        app_config.middleware = [*app_config.middleware, *self.middleware]
        app_config.dependencies = {**app_config.dependencies, **self.dependencies}
        app_config.plugins = [*app_config.plugins, *self.plugins]
        if self.on_startup is not None:
            app_config.on_startup = [*app_config.on_startup, self.on_startup]
        return app_config


def _session_exclude(services: Services) -> Sequence[str]:
    # Public, cookie-free paths skip the session's signature work (monitors poll /status).
    out = ["^/status$", "^/webhooks/", "^/static/"]
    if services.config.api.public_health:
        out.append("^/health$")
    return out


def web_plugin(services: Services) -> WebParts:
    cfg = services.config.api
    auth = Auth(services.config)
    web = Web(services, auth)
    # Secure is added per request by SecureCookies (only behind HTTPS).
    session = DefineMiddleware(
        cast("Any", SignedCookieSession), secret=load_session_secret(auth.dir), cookie=SESSION_COOKIE,
        max_age=auth.session_seconds, exclude=list(_session_exclude(services)),
    )
    static = create_static_files_router(
        path="/static", directories=[STATIC], include_in_schema=False,
        # URLs carry the release's start time (?v=), so a year of caching is safe.
        cache_control=CacheControlHeader(max_age=31536000, private=True),
    )

    async def on_startup() -> None:
        if not auth.is_set:
            log.warning("status page: no password set yet; the first visit of /setup sets it")

    return WebParts(
        route_handlers=[
            pages.show_status_page, pages.show_live_fragment, pages.show_receipt_png, pages.show_receipt_text,
            pages.reprint_from_page, pages.test_print_from_page, pages.retry_failed_from_page,
            pages.retry_job_from_page, pages.dismiss_job_from_page, pages.show_login, pages.log_in, pages.log_out,
            pages.show_setup, pages.set_first_password, get_metrics, api_router(), static,
        ],
        middleware=[
            # Plain ASGI classes typed with plain dicts; Litestar's TypedDict scopes are the same at run time.
            DefineMiddleware(cast("Any", SecureCookies), always=cfg.secure_cookies),
            session,
            DefineMiddleware(cast("Any", AccessControl), auth=auth, public_health=cfg.public_health,
                             public_metrics=cfg.public_metrics),
        ],
        dependencies={"web": Provide(lambda: web, use_cache=True, sync_to_thread=False)},
        on_startup=on_startup,
        web=web,
    )


__all__ = ["WebParts", "web_plugin"]
