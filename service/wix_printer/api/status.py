"""Health and status: what a monitor, an integrator and the contract check read."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.response import Response

from .. import __version__
from ..services import ServicesDep


@get("/health", summary="200 when the store is writable and the workers are alive, else 503")
async def get_health(services: ServicesDep) -> Response[dict[str, Any]]:
    problems = await services.health_problems()
    body = {"ok": not problems, "problems": problems, "version": __version__}
    return Response(body, status_code=200 if not problems else 503)


@get("/status", summary="Queue, printer and Wix state as JSON")
async def get_status(services: ServicesDep) -> dict[str, Any]:
    now = services.clock()
    counts = await services.store.counts()
    oldest = counts.pop("oldest_queued_at")
    return {
        "version": __version__,
        "uptime_seconds": round(now - services.started_at, 1),
        **counts,
        "oldest_queued_age_seconds": round(now - oldest, 1) if oldest else None,
        "queue_depth": counts["jobs"]["queued"] + counts["jobs"]["sending"] + counts["jobs"]["uncertain"],
        "printer": services.printer_monitor.as_dict(),
        "wix": services.wix_status(),
        "schema_version": await services.store.schema_version(),
    }
