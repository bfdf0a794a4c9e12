"""A local stand-in for Wix: order search/get over real HTTP, signed webhooks, injectable faults.

It follows the documented Wix behaviour the service relies on (auth headers, filter and
sort semantics, cursor paging with a 100 limit, INITIALIZED orders never searchable) and
is deliberately strict where a lenient fake would hide client bugs: a cursor combined
with a filter, a limit above 100 or an unsupported filter is a 400, not silently served.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

import httpx
import msgspec
import uvicorn
from litestar import Litestar, Request, Response, get, post
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.params import FromPath
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from wix_printer.fakewix.signing import Alg, BadKind, Form, WebhookSigner

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
_DATE_FIELDS = frozenset({"updatedDate", "createdDate"})
_FILTER_FIELDS = frozenset({"updatedDate", "createdDate", "status", "paymentStatus", "fulfillmentStatus",
                            "id", "number"})
_SORT_FIELDS = frozenset({"updatedDate", "createdDate", "number"})
_OPS = frozenset({"$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte"})


FaultMode = Literal["status", "drop", "delay", "body"]


class FailureSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One queued fault for the next `times` Wix API requests (control endpoints excluded).

    mode "status": answer `status` (with Retry-After when given); "drop": send the
    response head, then close the connection mid-answer; "delay": stall `delay` seconds,
    then answer normally (to trip client timeouts); "body": answer `status` (may be 200)
    with `body` verbatim, e.g. a captive portal's HTML or JSON missing `orders`.
    """

    status: int = 500
    times: int = 1
    retry_after: float | None = None
    mode: FaultMode = "status"
    delay: float = 0.0
    body: str | None = None
    content_type: str = "application/json"
    # Only requests whose path starts with this prefix consume the fault.
    path: str | None = None


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int | None = None
    injected: str | None = None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def to_dict(self) -> dict[str, Any]:
        try:
            body: Any = self.json()
        except ValueError:
            body = self.body.decode("utf-8", "replace")
        return {"method": self.method, "path": self.path, "status": self.status,
                "injected": self.injected, "at": self.at, "body": body}


class FakeWixError(Exception):
    """Why a request is refused; becomes a Wix-shaped error answer."""

    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def _wix_error(status: int, message: str, code: str = "") -> Response[bytes]:
    body: dict[str, Any] = {"message": message, "details": {}}
    if code:
        body["details"] = {"applicationError": {"code": code, "description": message}}
    return _json_response(body, status)


def _json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(content=msgspec.json.encode(body), status_code=status,
                    media_type="application/json", headers=headers)


def _date_key(value: Any) -> str:
    """A sortable UTC string for an ISO timestamp; "" when missing or unparsable."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return ""
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _field_key(order: dict[str, Any], name: str) -> Any:
    value = order.get(name)
    if name in _DATE_FIELDS:
        return _date_key(value)
    if name == "number":
        # Order numbers are strings on the wire but sort numerically in Wix.
        try:
            return f"{int(str(value)):020d}"
        except ValueError:
            return str(value)
    return value


def _compare(op: str, have: Any, want: Any) -> bool:
    match op:
        case "$eq":
            return bool(have == want)
        case "$ne":
            return bool(have != want)
        case "$in":
            return have in want
        case "$nin":
            return have not in want
    if have is None:
        return False
    match op:
        case "$gt":
            return bool(have > want)
        case "$gte":
            return bool(have >= want)
        case "$lt":
            return bool(have < want)
        case "$lte":
            return bool(have <= want)
    raise FakeWixError(400, f"unsupported operator {op!r}", "INVALID_FILTER")


def _match(order: dict[str, Any], filt: dict[str, Any]) -> bool:
    for name, cond in filt.items():
        have = _field_key(order, name)
        ops = cond if isinstance(cond, dict) else {"$eq": cond}
        for op, want_raw in ops.items():
            if name in _DATE_FIELDS:
                want: Any = ([_date_key(v) for v in want_raw] if isinstance(want_raw, list)
                             else _date_key(want_raw))
            else:
                want = want_raw
            ok = _compare(op, have, want)
            if not ok:
                return False
    return True


def _validate_query(filt: Any, sort: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if filt is None:
        filt = {}
    if not isinstance(filt, dict):
        raise FakeWixError(400, "search.filter must be an object", "INVALID_FILTER")
    for name, cond in filt.items():
        if name not in _FILTER_FIELDS:
            raise FakeWixError(400, f"filter on {name!r} is not supported by the fake", "INVALID_FILTER")
        if isinstance(cond, dict):
            for op, val in cond.items():
                if op not in _OPS:
                    raise FakeWixError(400, f"unsupported operator {op!r} on {name!r}", "INVALID_FILTER")
                if op in ("$in", "$nin") and not isinstance(val, list):
                    raise FakeWixError(400, f"{op} on {name!r} needs a list", "INVALID_FILTER")
    if sort is None:
        sort = []
    if not isinstance(sort, list) or len(sort) > 1:
        raise FakeWixError(400, "the fake supports at most one sort field", "INVALID_SORT")
    for s in sort:
        if not isinstance(s, dict) or s.get("fieldName") not in _SORT_FIELDS \
                or s.get("order", "ASC") not in ("ASC", "DESC"):
            raise FakeWixError(400, f"unsupported sort {s!r}", "INVALID_SORT")
    return filt, sort


def _encode_cursor(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise FakeWixError(400, "invalid cursor", "INVALID_CURSOR") from None
    if not isinstance(state, dict) or "q" not in state:
        raise FakeWixError(400, "invalid cursor", "INVALID_CURSOR")
    return state


class _InProcessServer(uvicorn.Server):
    """uvicorn without its signal handlers: the host (pytest, our CLI) owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _RecordAndFault(ASGIMiddleware):
    """Records every request and applies queued faults before the route runs."""

    def __init__(self, fake: FakeWix) -> None:
        self.fake = fake

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["type"] != ScopeType.HTTP:
            await next_app(scope, receive, send)
            return
        http_scope = scope
        chunks: list[bytes] = []
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        rec = RecordedRequest(
            method=http_scope["method"],
            path=scope["path"],
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            body=body,
            at=time.time(),
        )
        self.fake.requests.append(rec)
        replayed = False

        async def replay() -> ReceiveMessage:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                rec.status = message["status"]
            await send(message)

        fault = self.fake._take_failure(scope["path"]) if scope["path"].startswith("/ecom/") else None
        if fault is None:
            await next_app(scope, replay, recording_send)
            return
        rec.injected = fault.mode
        if fault.mode == "delay":
            await asyncio.sleep(fault.delay)
            await next_app(scope, replay, recording_send)
        elif fault.mode == "drop":
            # ASGI cannot close a socket directly; a declared but never sent body makes
            # uvicorn close the connection, which the client sees as a dropped link.
            await recording_send({
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            })
        else:
            headers = [(b"content-type", fault.content_type.encode("latin-1"))]
            if fault.retry_after is not None:
                headers.append((b"retry-after", f"{fault.retry_after:g}".encode()))
            if fault.mode == "body":
                payload = (fault.body or "").encode()
            else:
                payload = msgspec.json.encode(
                    {"message": f"injected failure: HTTP {fault.status}", "details": {}}
                )
            await recording_send({"type": "http.response.start", "status": fault.status, "headers": headers})
            await send({"type": "http.response.body", "body": payload, "more_body": False})


class FakeWix:
    """In-memory Wix with a real HTTP server on loopback.

    Use as `async with FakeWix() as wix:` (serves on `wix.base_url`), or call
    `start()`/`stop()`. Orders are held in memory; `requests` records every request.
    """

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        site_id: str = "site-1",
        instance_id: str = "site-1",
        signer: WebhookSigner | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        orders: Iterable[dict[str, Any]] = (),
    ) -> None:
        self.api_key = api_key
        self.site_id = site_id
        self.instance_id = instance_id
        self.signer = signer or WebhookSigner()
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self._orders: dict[str, dict[str, Any]] = {}
        self._failures: list[FailureSpec] = []
        self._app: Litestar | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None
        self.add_orders(orders)

    # -- keys and webhooks ---------------------------------------------------------

    def public_key_pem(self) -> str:
        return self.signer.public_key_pem()

    def sign_webhook(
        self,
        order: dict[str, Any],
        slug: str = "approved",
        form: Form = "object",
        instance_id: str | None = None,
        seq: int = 1,
        event_id: str | None = None,
        exp_in: float = 600,
        alg: Alg = "RS256",
        *,
        modified_fields: dict[str, Any] | None = None,
    ) -> str:
        return self.signer.sign_webhook(
            order, slug, form, instance_id or self.instance_id, seq, event_id, exp_in, alg,
            modified_fields=modified_fields,
        )

    def bad_token(self, kind: BadKind, order: dict[str, Any], **kw: Any) -> str:
        kw.setdefault("instance_id", self.instance_id)
        return self.signer.bad_token(kind, order, **kw)

    async def deliver(self, url: str, token: str, *, request_timeout: float = 5.0) -> int:
        """POST the token as Wix does (raw JWS body); returns the receiver's status code."""
        async with httpx.AsyncClient(timeout=request_timeout) as client:
            resp = await client.post(url, content=token.encode("ascii"),
                                     headers={"Content-Type": "text/plain; charset=utf-8"})
            return resp.status_code

    # -- orders ----------------------------------------------------------------------

    def add_order(self, order: dict[str, Any]) -> None:
        """Insert or replace by id (a deep copy: later changes by the caller do not leak in)."""
        if not isinstance(order, dict) or not isinstance(order.get("id"), str) or not order["id"]:
            raise ValueError("an order needs a string `id`")
        self._orders[order["id"]] = copy.deepcopy(order)

    def add_orders(self, orders: Iterable[dict[str, Any]]) -> None:
        for order in orders:
            self.add_order(order)

    def update_order(self, order_id: str, changes: dict[str, Any], *, touch: bool = True) -> dict[str, Any]:
        """Merge top-level `changes`; `touch` moves updatedDate to now, as any Wix change does."""
        order = self._orders[order_id]
        order.update(copy.deepcopy(changes))
        if touch and "updatedDate" not in changes:
            now = datetime.now(UTC)
            order["updatedDate"] = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        return copy.deepcopy(order)

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        order = self._orders.get(order_id)
        return copy.deepcopy(order) if order is not None else None

    def remove_order(self, order_id: str) -> None:
        self._orders.pop(order_id, None)

    @property
    def orders(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for o in self._orders.values()]

    # -- faults and records ----------------------------------------------------------

    def fail(
        self,
        status: int = 500,
        times: int = 1,
        retry_after: float | None = None,
        mode: FaultMode = "status",
        delay: float = 0.0,
        path: str | None = None,
        body: str | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Queue a fault for the next `times` Wix API requests; see FailureSpec."""
        self.queue_failure(FailureSpec(status=status, times=times, retry_after=retry_after, mode=mode,
                                       delay=delay, path=path, body=body, content_type=content_type))

    def queue_failure(self, spec: FailureSpec) -> None:
        if spec.times < 1:
            raise ValueError("times must be >= 1")
        if spec.mode == "status" and not 400 <= spec.status <= 599:
            raise ValueError("an injected status must be 4xx or 5xx")
        if spec.mode == "body" and not 200 <= spec.status <= 599:
            raise ValueError("an injected status must be 200..599")
        self._failures.append(spec)

    def clear_failures(self) -> None:
        self._failures.clear()

    @property
    def pending_failures(self) -> int:
        return sum(f.times for f in self._failures)

    def _take_failure(self, path: str) -> FailureSpec | None:
        for spec in self._failures:
            if spec.path is None or path.startswith(spec.path):
                spec.times -= 1
                if spec.times <= 0:
                    self._failures.remove(spec)
                return spec
        return None

    def api_requests(self, path_prefix: str = "/ecom/") -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    # -- the Wix API -------------------------------------------------------------------

    def _check_auth(self, request: Request[Any, Any, Any]) -> None:
        if request.headers.get("authorization") != self.api_key:
            raise FakeWixError(401, "invalid API key", "UNAUTHENTICATED")
        if request.headers.get("wix-site-id") != self.site_id:
            raise FakeWixError(401, "unknown site id", "UNAUTHENTICATED")

    def search(self, search: dict[str, Any]) -> dict[str, Any]:
        """The search semantics, callable without HTTP; raises FakeWixError on a bad query."""
        if not isinstance(search, dict):
            raise FakeWixError(400, "search must be an object", "INVALID_ARGUMENT")
        paging = search.get("cursorPaging") or {}
        if not isinstance(paging, dict):
            raise FakeWixError(400, "cursorPaging must be an object", "INVALID_ARGUMENT")
        limit = paging.get("limit", DEFAULT_LIMIT)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            raise FakeWixError(400, f"cursorPaging.limit must be 1..{MAX_LIMIT}", "INVALID_ARGUMENT")
        cursor = paging.get("cursor")
        after: list[Any] | None = None
        before: list[Any] | None = None
        if cursor:
            # Like Wix: the cursor carries the query; repeating it is a client bug.
            if search.get("filter") or search.get("sort"):
                raise FakeWixError(
                    400, "filter and sort cannot be combined with a cursor", "INVALID_ARGUMENT"
                )
            state = _decode_cursor(str(cursor))
            query = state["q"]
            after, before = state.get("after"), state.get("before")
        else:
            query = {"filter": search.get("filter"), "sort": search.get("sort")}
        filt, sort = _validate_query(query.get("filter"), query.get("sort"))
        query = {"filter": filt, "sort": sort}

        # Wix's default order for this endpoint is newest first.
        sort_field = sort[0]["fieldName"] if sort else "createdDate"
        descending = (sort[0].get("order", "ASC") if sort else "DESC") == "DESC"

        def key(o: dict[str, Any]) -> list[Any]:
            return [_field_key(o, sort_field), o["id"]]

        matches = sorted(
            (o for o in self._orders.values() if o.get("status") != "INITIALIZED" and _match(o, filt)),
            key=key, reverse=descending,
        )

        def is_after(o: dict[str, Any], mark: list[Any]) -> bool:
            return key(o) < mark if descending else key(o) > mark

        if after is not None:
            rest = [o for o in matches if is_after(o, after)]
            page = rest[:limit]
            has_next = len(rest) > limit
            has_prev = len(rest) < len(matches)
        elif before is not None:
            head = [o for o in matches if not is_after(o, before) and key(o) != before]
            page = head[-limit:]
            has_next = True
            has_prev = len(head) > limit
        else:
            page = matches[:limit]
            has_next = len(matches) > limit
            has_prev = False
        next_cursor = _encode_cursor({"q": query, "after": key(page[-1])}) if has_next and page else None
        prev_cursor = _encode_cursor({"q": query, "before": key(page[0])}) if has_prev and page else None
        return {
            "orders": [copy.deepcopy(o) for o in page],
            "metadata": {"count": len(page), "cursors": {"next": next_cursor, "prev": prev_cursor},
                         "hasNext": bool(next_cursor)},
        }

    def _build_app(self) -> Litestar:
        fake = self

        @post("/ecom/v1/orders/search", status_code=200)
        async def search_orders(request: Request[Any, Any, Any]) -> Response[bytes]:
            try:
                fake._check_auth(request)
                raw = await request.body()
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    raise FakeWixError(400, "body is not JSON", "INVALID_ARGUMENT") from None
                if not isinstance(body, dict):
                    raise FakeWixError(400, "body must be an object", "INVALID_ARGUMENT")
                return _json_response(fake.search(body.get("search") or {}))
            except FakeWixError as e:
                return _wix_error(e.status, e.message, e.code)

        @get("/ecom/v1/orders/{order_id:str}")
        async def get_order(request: Request[Any, Any, Any], order_id: FromPath[str]) -> Response[bytes]:
            try:
                fake._check_auth(request)
            except FakeWixError as e:
                return _wix_error(e.status, e.message, e.code)
            order = fake._orders.get(order_id)
            if order is None:
                return _wix_error(404, f"order {order_id} not found", "ORDER_NOT_FOUND")
            return _json_response({"order": order})

        @post("/_fake/orders", status_code=200)
        async def put_orders(request: Request[Any, Any, Any]) -> Response[bytes]:
            try:
                data = json.loads(await request.body())
                items = data if isinstance(data, list) else [data]
                for order in items:
                    fake.add_order(order)
            except (ValueError, TypeError) as e:
                return _wix_error(400, f"bad order payload: {e}")
            return _json_response({"stored": len(items), "total": len(fake._orders)})

        @post("/_fake/fail", status_code=200)
        async def queue_fail(request: Request[Any, Any, Any]) -> Response[bytes]:
            try:
                spec = msgspec.json.decode(await request.body(), type=FailureSpec)
                fake.queue_failure(spec)
            except (msgspec.DecodeError, ValueError) as e:
                return _wix_error(400, f"bad failure spec: {e}")
            return _json_response({"pending": fake.pending_failures})

        @get("/_fake/requests")
        async def list_requests() -> Response[bytes]:
            return _json_response([r.to_dict() for r in fake.requests])

        @post("/_fake/reset", status_code=200)
        async def reset() -> Response[bytes]:
            fake.requests.clear()
            fake.clear_failures()
            return _json_response({"ok": True})

        @get("/_fake/public-key")
        async def public_key() -> Response[str]:
            return Response(content=fake.public_key_pem(), media_type="application/x-pem-file")

        @post("/_fake/deliver", status_code=200)
        async def deliver(request: Request[Any, Any, Any]) -> Response[bytes]:
            try:
                spec = msgspec.json.decode(await request.body(), type=_DeliverSpec)
            except msgspec.DecodeError as e:
                return _wix_error(400, f"bad deliver spec: {e}")
            order = fake._orders.get(spec.order_id)
            if order is None:
                return _wix_error(404, f"order {spec.order_id} not found", "ORDER_NOT_FOUND")
            token = fake.sign_webhook(order, spec.slug, spec.form, spec.instance_id, spec.seq)
            try:
                status = await fake.deliver(spec.url, token)
            except httpx.HTTPError as e:
                return _json_response({"status": 0, "error": f"{type(e).__name__}: {e}"})
            return _json_response({"status": status})

        return Litestar(
            route_handlers=[search_orders, get_order, put_orders, queue_fail, list_requests, reset,
                            public_key, deliver],
            middleware=[_RecordAndFault(fake)],
            openapi_config=None,
            request_max_body_size=16 * 1024 * 1024,
        )

    @property
    def app(self) -> Litestar:
        if self._app is None:
            self._app = self._build_app()
        return self._app

    # -- serving -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._sock is None:
            raise RuntimeError("FakeWix is not serving; use `async with FakeWix()` or start()")
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self, *, log_config: dict[str, Any] | None = None) -> str:
        """Bind (port 0 = a free one), serve in a task of the running loop, return base_url."""
        if self._task is not None:
            raise RuntimeError("already serving")
        app = self.app
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        config = uvicorn.Config(
            app, lifespan="off", access_log=False, log_config=log_config,
            log_level="info" if log_config else "warning", timeout_graceful_shutdown=2,
            timeout_keep_alive=5,
        )
        self._server = _InProcessServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="fakewix")
        try:
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                    raise RuntimeError("fakewix server exited during start-up")
                await asyncio.sleep(0.01)
        except BaseException:
            await self.stop()
            raise
        return self.base_url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            try:
                await self._task
            finally:
                self._task = None
                self._server = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def wait_closed(self) -> None:
        """Until the server stops (after stop() or a set should_exit)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    def request_stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True

    async def __aenter__(self) -> FakeWix:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class _DeliverSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    url: str
    order_id: str
    slug: str = "approved"
    form: Form = "object"
    instance_id: str | None = None
    seq: int = 1

