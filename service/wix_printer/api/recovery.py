"""Operator endpoints for recovery (behind the status page's access control)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import get, post
from litestar.exceptions import HTTPException
from litestar.params import Parameter

from .. import operations
from ..recovery import TRIGGERS, RecoveryBusy, run_dict
from ..services import ServicesDep


class StartRecovery(msgspec.Struct, forbid_unknown_fields=True):
    trigger: str = "operator"


class JobSelection(msgspec.Struct, forbid_unknown_fields=True):
    # Empty: every job the action applies to (all failed / all held).
    job_ids: list[int] = msgspec.field(default_factory=list)


def _controller(services: ServicesDep) -> Any:
    if services.recovery is None:
        raise HTTPException(status_code=503, detail="recovery is not running (no printer worker)")
    return services.recovery


@post("/api/v1/recovery", status_code=202, summary="Start a recovery run",
      description="Validates the printer and store, holds stale orders, then drains the backlog at the "
                  "configured pace. 409 while a run is in progress.")
async def start_recovery(services: ServicesDep, data: StartRecovery | None = None) -> dict[str, Any]:
    trigger = (data or StartRecovery()).trigger
    if trigger not in TRIGGERS:
        raise HTTPException(status_code=400, detail=f"unknown trigger {trigger!r}; one of {', '.join(TRIGGERS)}")
    try:
        run_id = await _controller(services).start(trigger)
    except RecoveryBusy as e:
        raise HTTPException(status_code=409, detail=str(e), extra={"run_id": e.run_id}) from None
    return {"run_id": run_id, "state": "running"}


@get("/api/v1/recovery", summary="The running or the last recovery run")
async def get_recovery(services: ServicesDep) -> dict[str, Any]:
    runs = await services.store.recovery_runs(limit=1)
    if not runs:
        raise HTTPException(status_code=404, detail="no recovery has run yet")
    out = run_dict(runs[0])
    out["running"] = _controller(services).running == runs[0].id
    return out


@get("/api/v1/recovery/history", summary="Past recovery runs, newest first")
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
      description="Without job_ids: every failed job. 404 for an unknown job, 409 for one that is not failed.")
async def retry_failed_jobs(services: ServicesDep, data: JobSelection | None = None) -> dict[str, Any]:
    ids = (data or JobSelection()).job_ids
    if not ids:
        created = await operations.retry_all_failed(services.store)
        services.worker_wake()
        return {"job_ids": created.job_ids}
    return await _each(ids, operations.retry, services)


async def _dismiss_held(store: Any, job_id: int) -> operations.Created:
    return await operations.dismiss(store, job_id, "stale: dismissed by operator", states=("held",))


@post("/api/v1/recovery/dismiss-stale", status_code=200, summary="Dismiss orders held as stale",
      description="Without job_ids: every held job. 404 for an unknown job, 409 for one that is not held.")
async def dismiss_stale_jobs(services: ServicesDep, data: JobSelection | None = None) -> dict[str, Any]:
    ids = (data or JobSelection()).job_ids or [j.id for j in await services.store.jobs_in_state("held", limit=10_000)]
    return await _each(ids, _dismiss_held, services)


ROUTES = [start_recovery, get_recovery, get_recovery_history, retry_failed_jobs, dismiss_stale_jobs]
