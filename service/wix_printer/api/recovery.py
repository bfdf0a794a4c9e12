"""Operator endpoints for recovery (behind the status page's access control)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import get, post
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from .. import operations
from ..recovery import TRIGGERS, RecoveryBusy, run_dict
from ..services import ServicesDep


class StartRecovery(msgspec.Struct):
    trigger: Literal["operator", "startup", "printer_back", "wix_back"] = "operator"


class JobSelection(msgspec.Struct):
    # Empty: every job the action applies to (all failed / all held).
    job_ids: list[int] = msgspec.field(default_factory=list)


class ErrorBody(msgspec.Struct):
    """Litestar's error body, as every refusal here is shaped."""

    status_code: int
    detail: str
    extra: Any = None


def _spec(*codes: int) -> dict[int, ResponseSpec]:
    what = {400: "malformed request", 401: "no valid session or bearer token",
            403: "a session request without the CSRF token", 404: "no such job or no run yet",
            409: "a run is in progress, or a job is not in a state that allows this",
            503: "no print worker in this service"}
    return {c: ResponseSpec(ErrorBody, description=what[c]) for c in (401, 403, *codes)}


def _controller(services: ServicesDep) -> Any:
    if services.recovery is None:
        raise HTTPException(status_code=503, detail="recovery is not running (no printer worker)")
    return services.recovery


@post("/api/v1/recovery/start", status_code=202, summary="Start a recovery run", responses=_spec(400, 409, 503),
      description="Validates the printer and store, holds stale orders, then drains the backlog at the "
                  "configured pace. 409 while a run is in progress.")
async def start_recovery(services: ServicesDep, data: StartRecovery) -> dict[str, Any]:
    trigger = data.trigger
    if trigger not in TRIGGERS:
        raise HTTPException(status_code=400, detail=f"unknown trigger {trigger!r}; one of {', '.join(TRIGGERS)}")
    try:
        run_id = await _controller(services).start(trigger)
    except RecoveryBusy as e:
        raise HTTPException(status_code=409, detail=str(e), extra={"run_id": e.run_id}) from None
    return {"run_id": run_id, "state": "running"}


@get("/api/v1/recovery", summary="The running or the last recovery run", responses=_spec(404, 503))
async def get_recovery(services: ServicesDep) -> dict[str, Any]:
    runs = await services.store.recovery_runs(limit=1)
    if not runs:
        raise HTTPException(status_code=404, detail="no recovery has run yet")
    out = run_dict(runs[0])
    out["running"] = _controller(services).running == runs[0].id
    return out


@get("/api/v1/recovery/history", summary="Past recovery runs, newest first", responses=_spec(400))
async def get_recovery_history(
    services: ServicesDep,
    limit: int = Parameter(default=20, ge=1, le=100),
    offset: int = Parameter(default=0, ge=0),
) -> list[dict[str, Any]]:
    return [run_dict(r) for r in await services.store.recovery_runs(limit=limit, offset=offset)]


async def _each(job_ids: list[int], action: Any, services: ServicesDep) -> dict[str, Any]:
    done: list[int] = []
    for job_id in job_ids:
        try:
            done += (await action(services.store, job_id)).job_ids
        except operations.OperationError as e:
            raise HTTPException(status_code=e.status, detail=e.message, extra={"done": done}) from None
    services.worker_wake()
    return {"job_ids": done}


@post("/api/v1/recovery/retry-failed", status_code=200, summary="Queue failed jobs again",
      responses=_spec(400, 404, 409),
      description="Without job_ids: every failed job. 404 for an unknown job, 409 for one that is not failed.")
async def retry_failed_jobs(services: ServicesDep, data: JobSelection) -> dict[str, Any]:
    ids = data.job_ids
    if not ids:
        created = await operations.retry_all_failed(services.store)
        services.worker_wake()
        return {"job_ids": created.job_ids}
    return await _each(ids, operations.retry, services)


async def _dismiss_held(store: Any, job_id: int) -> operations.Created:
    return await operations.dismiss(store, job_id, "stale: dismissed by operator", states=("held",))


@post("/api/v1/recovery/dismiss-stale", status_code=200, summary="Dismiss orders held as stale",
      responses=_spec(400, 404, 409),
      description="Without job_ids: every held job. 404 for an unknown job, 409 for one that is not held.")
async def dismiss_stale_jobs(services: ServicesDep, data: JobSelection) -> dict[str, Any]:
    ids = data.job_ids or [j.id for j in await services.store.jobs_in_state("held", limit=10_000)]
    return await _each(ids, _dismiss_held, services)


ROUTES = [start_recovery, get_recovery, get_recovery_history, retry_failed_jobs, dismiss_stale_jobs]
