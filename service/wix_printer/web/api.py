"""The operator API (/api/v1): JSON for integrators and scripts.

Authenticated by `Authorization: Bearer <[api] token>` or the page's session cookie
(then with the X-CSRF-Token header on POST), enforced in access.py. Orders come
without their personal data; the raw Wix payload never leaves the box through here.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Router, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter, QueryParameter
from litestar.response import Response

from .. import operations
from ..store import queries
from ..store.db import JOB_STATES
from .pages import copy_banner
from .state import WebDep

JobState = Literal["queued", "sending", "printed", "uncertain", "failed", "cancelled", "held"]
JobKind = Literal["kitchen", "driver", "customer", "cancel", "change", "test"]
assert set(JobState.__args__) == set(JOB_STATES)  # type: ignore[attr-defined]

Limit = Annotated[int, Parameter(ge=1, le=500, description="page size")]
Offset = Annotated[int, Parameter(ge=0, le=1_000_000, description="rows to skip")]
# Epoch seconds; any float is harmless (before 1970 or after 2300 simply finds nothing), and
# bounds would make fuzzers trip over float rounding at the edge.
Epoch = Annotated[float | None, Parameter(description="epoch seconds")]
# A string of digits rather than an int route type: a path that is not a number then gets our
# own 404 body (documented) instead of the router's bare "Not Found". 15 digits fit SQLite's INTEGER.
JobId = Annotated[str, Parameter(pattern=r"^[0-9]{1,15}$", description="job id (digits)")]
OrderId = Annotated[str, Parameter(min_length=1, max_length=200)]


class ApiError(msgspec.Struct):
    error: str


class OrderPage(msgspec.Struct):
    items: list[queries.OrderInfo]
    limit: int
    offset: int


class JobPage(msgspec.Struct):
    items: list[queries.JobInfo]
    limit: int
    offset: int


class OrderDetail(msgspec.Struct):
    order: queries.OrderInfo
    jobs: list[queries.JobInfo]


class ReprintRequest(msgspec.Struct):
    # Which receipts; omitted or null = every receipt the order printed.
    kinds: list[Literal["kitchen", "driver", "customer"]] | None = None


class Created(msgspec.Struct):
    job_ids: list[int]


def _refused(e: operations.OperationError) -> Response[Created | ApiError]:
    return Response(ApiError(e.message), status_code=e.status)


# Documented for every operator endpoint: the access layer answers these before a handler runs.
_AUTH = {401: ResponseSpec(ApiError, description="no valid session or bearer token"),
         403: ResponseSpec(ApiError, description="a session request without the CSRF token")}
_NOT_FOUND = {**_AUTH, 404: ResponseSpec(ApiError, description="no such order or job")}
_REFUSED = {**_NOT_FOUND, 409: ResponseSpec(ApiError, description="not in a state that allows this")}


@get("/orders", summary="List orders, newest first", responses=_AUTH)
async def list_orders(web: WebDep, since: Epoch = None, until: Epoch = None,
                      status: Annotated[str | None, Parameter(max_length=40)] = None,
                      limit: Limit = 50, offset: Offset = 0) -> OrderPage:
    items = await queries.orders(web.services.store, since=since, until=until, status=status, limit=limit,
                                 offset=offset)
    return OrderPage(items, limit, offset)


@get("/orders/{order_id:str}", summary="One order and its print jobs", responses=_NOT_FOUND)
async def get_order(web: WebDep, order_id: OrderId) -> Response[OrderDetail | ApiError]:
    order = await queries.order(web.services.store, order_id)
    if order is None:
        return Response(ApiError(f"no order {order_id!r}"), status_code=404)
    return Response(OrderDetail(order, await queries.jobs(web.services.store, order_id=order_id, limit=500)))


@get("/jobs", summary="List print jobs, newest first", responses=_AUTH)
async def list_jobs(web: WebDep, job_state: Annotated[JobState | None, QueryParameter(name="state")] = None,
                    kind: JobKind | None = None,
                    order_id: Annotated[str | None, Parameter(max_length=200)] = None,
                    limit: Limit = 100, offset: Offset = 0) -> JobPage:
    items = await queries.jobs(web.services.store, order_id=order_id, state=job_state, kind=kind, limit=limit,
                               offset=offset)
    return JobPage(items, limit, offset)


@get("/jobs/{job_id:str}", summary="One print job", responses=_NOT_FOUND)
async def get_job(web: WebDep, job_id: JobId) -> Response[queries.JobInfo | ApiError]:
    job = await queries.job(web.services.store, int(job_id))
    if job is None:
        return Response(ApiError(f"no job {job_id}"), status_code=404)
    return Response(job)


@post("/orders/{order_id:str}/reprint", status_code=201, summary="Reprint receipts, marked as a copy on paper",
      responses={**_REFUSED, 422: ResponseSpec(ApiError, description="unknown receipt kind")})
async def reprint_order(web: WebDep, order_id: OrderId,
                        data: ReprintRequest | None = None) -> Response[Created | ApiError]:
    try:
        created = await operations.reprint(web.services.store, order_id, data.kinds if data else None,
                                           copy_banner(web))
    except operations.OperationError as e:
        return _refused(e)
    web.services.worker_wake()
    web.changed()
    return Response(Created(created.job_ids), status_code=201)


@post("/test-print", status_code=201, summary="Queue a test page through the real print path",
      responses=_AUTH)
async def print_test_page(web: WebDep) -> Created:
    created = await operations.test_print(web.services.store)
    web.services.worker_wake()
    web.changed()
    return Created(created.job_ids)


@post("/jobs/{job_id:str}/retry", status_code=200, summary="Print a failed or held job again", responses=_REFUSED)
async def retry_job(web: WebDep, job_id: JobId) -> Response[Created | ApiError]:
    try:
        created = await operations.retry(web.services.store, int(job_id))
    except operations.OperationError as e:
        return _refused(e)
    web.services.worker_wake()
    web.changed()
    return Response(Created(created.job_ids))


@post("/jobs/retry-failed", status_code=200, summary="Print every failed job again", responses=_AUTH)
async def retry_failed_jobs(web: WebDep) -> Created:
    created = await operations.retry_all_failed(web.services.store)
    web.services.worker_wake()
    web.changed()
    return Created(created.job_ids)


@post("/jobs/{job_id:str}/dismiss", status_code=200, summary="Do not print a queued, held or failed job",
      responses=_REFUSED)
async def dismiss_job(web: WebDep, job_id: JobId) -> Response[Created | ApiError]:
    try:
        created = await operations.dismiss(web.services.store, int(job_id))
    except operations.OperationError as e:
        return _refused(e)
    web.changed()
    return Response(Created(created.job_ids))


def api_router() -> Router:
    return Router(
        path="/api/v1", tags=["operator"],
        route_handlers=[list_orders, get_order, list_jobs, get_job, reprint_order, print_test_page, retry_job,
                        retry_failed_jobs, dismiss_job],
    )
