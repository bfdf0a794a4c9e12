"""The catch-up search client: the only path that recovers orders Wix gave up delivering.

Webhooks stop being retried after ~47 hours, so this client must keep working through
flaky restaurant internet: transient failures (429, 5xx, connect/DNS/timeout, a dropped
connection, a captive-portal HTML page) are retried with capped exponential backoff and
full jitter, then reported as `WixUnavailable`. Credentials problems (401/403) are
reported at once as `WixAuthError`: retrying a wrong API key only gets the key throttled
and hides the one thing the operator must fix.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Final, TypeVar

import msgspec

from wix_printer.config import WixConfig
from wix_printer.wix.http import HttpClient, Response, TransportError

log = logging.getLogger(__name__)

SEARCH_PATH: Final = "/ecom/v1/orders/search"
ORDER_PATH: Final = "/ecom/v1/orders/{id}"
PAGE_LIMIT: Final = 100  # Wix's maximum for cursorPaging.limit
SEARCH_STATUSES: Final = ("APPROVED", "CANCELED")
# 408 is what some proxies answer when the uplink stalls; it is as transient as a 503.
RETRY_STATUSES: Final = frozenset({408, 429})
_ERROR_TEXT_MAX = 300

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class WixError(Exception):
    """Base of everything this client raises."""


class WixAuthError(WixError):
    """401/403 (or no API key): the key or site id is wrong; never retried."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Wix rejected the credentials (HTTP {status}): {message}")
        self.status = status
        self.message = message


class WixUnavailable(WixError):
    """Wix could not be reached or kept failing after every retry."""

    def __init__(self, reason: str, attempts: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


class WixRequestError(WixError):
    """A non-retryable 4xx other than auth: our request is wrong, retrying cannot help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Wix answered HTTP {status}: {message}")
        self.status = status
        self.message = message


class WixNotFound(WixRequestError):
    """`get_order` for an id Wix does not know."""


class WixProtocolError(WixError):
    """A well-formed answer that breaks the paging contract (e.g. hasNext without a cursor)."""


@dataclass
class WixLinkState:
    """Wix connectivity as /status shows it; mutated only by the client.

    `consecutive_failures` counts failed HTTP attempts (each retry is one) since the
    last successful answer, so a slowly failing link is visible before it gives up.
    """

    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    requests: int = 0
    retries: int = 0

    @property
    def ok(self) -> bool:
        return self.last_success_at is not None and self.consecutive_failures == 0

    def to_dict(self) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return d.isoformat() if d else None

        return {
            "ok": self.ok,
            "last_success_at": iso(self.last_success_at),
            "last_error": self.last_error,
            "last_error_at": iso(self.last_error_at),
            "consecutive_failures": self.consecutive_failures,
            "requests": self.requests,
            "retries": self.retries,
        }


class _Cursors(msgspec.Struct):
    next: str | None = None
    prev: str | None = None


class _Metadata(msgspec.Struct, rename="camel"):
    count: int | None = None
    cursors: _Cursors = msgspec.field(default_factory=_Cursors)
    has_next: bool = False


class _SearchPage(msgspec.Struct):
    # Required on purpose: a 200 without `orders` is not a page, whatever else it holds.
    orders: list[dict[str, Any]]
    metadata: _Metadata = msgspec.field(default_factory=_Metadata)


class _GetOrderAnswer(msgspec.Struct):
    order: dict[str, Any]


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def iso_z(when: datetime) -> str:
    """Wix's timestamp form: UTC, milliseconds, `Z`. Naive datetimes are refused (ambiguous)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("search time must be timezone-aware")
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def search_body(since: datetime, cursor: str | None = None, limit: int = PAGE_LIMIT) -> dict[str, Any]:
    """The request body; a cursor carries the query, so filter and sort must not be repeated."""
    if cursor is not None:
        return {"search": {"cursorPaging": {"limit": limit, "cursor": cursor}}}
    return {
        "search": {
            "filter": {
                "updatedDate": {"$gte": iso_z(since)},
                "status": {"$in": list(SEARCH_STATUSES)},
            },
            "sort": [{"fieldName": "updatedDate", "order": "ASC"}],
            "cursorPaging": {"limit": limit},
        }
    }


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_TEXT_MAX else text[:_ERROR_TEXT_MAX] + "..."


def _error_message(resp: Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return _short(resp.text) or resp.reason_phrase
    if isinstance(data, dict):
        msg = data.get("message") or data.get("error") or data.get("details")
        if msg:
            return _short(str(msg))
    return _short(resp.text)


class WixSearchClient:
    """Async client for the order search and get endpoints.

    `http`, `sleep`, `clock` and `rng` are injectable so tests run against a local fake
    without waiting for real backoff. An injected `http` client is not closed by us.
    """

    def __init__(
        self,
        config: WixConfig,
        *,
        http: HttpClient | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = _utcnow,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        # Honour Retry-After, but not a misconfigured proxy's "come back in a day".
        max_retry_after: float = 300.0,
        page_limit: int = PAGE_LIMIT,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if not 1 <= page_limit <= PAGE_LIMIT:
            raise ValueError(f"page_limit must be 1..{PAGE_LIMIT}")
        self._config = config
        self._base_url = config.base_url.rstrip("/")
        self._own_http = http is None
        self._http = http or HttpClient(timeout=config.request_timeout)
        self._sleep = sleep
        self._clock = clock
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.page_limit = page_limit
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.state = WixLinkState()

    async def __aenter__(self) -> WixSearchClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": self._config.api_key,
            "wix-site-id": self._config.site_id,
            "Accept": "application/json",
        }

    async def search_orders(self, since: datetime) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield pages of raw order dicts updated at/after `since`, oldest first.

        Each page is fetched (with retries) only when the previous one has been consumed,
        so a consumer that commits page by page never loses a fetched order.
        """
        body = search_body(since, limit=self.page_limit)
        seen_cursors: set[str] = set()
        while True:
            page = await self._request("POST", SEARCH_PATH, body, _SearchPage)
            yield page.orders
            if not page.metadata.has_next:
                return
            cursor = page.metadata.cursors.next
            if not cursor:
                raise WixProtocolError("search page says hasNext but carries no next cursor")
            # A cursor seen twice would page forever; stop loudly instead.
            if cursor in seen_cursors:
                raise WixProtocolError("search returned a cursor it had already returned")
            seen_cursors.add(cursor)
            body = search_body(since, cursor=cursor, limit=self.page_limit)

    async def get_order(self, order_id: str) -> dict[str, Any]:
        """One order by id; raises WixNotFound for an unknown id."""
        if not order_id or "/" in order_id:
            raise ValueError(f"not an order id: {order_id!r}")
        answer = await self._request("GET", ORDER_PATH.format(id=order_id), None, _GetOrderAnswer)
        return answer.order

    def backoff_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Full jitter: uniform(0, min(cap, base * 2**attempt)); Retry-After wins when given."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.backoff_cap, self.backoff_base * (2**attempt))
        return self._rng.uniform(0.0, ceiling)

    async def _request(self, method: str, path: str, body: dict[str, Any] | None, kind: type[T]) -> T:
        if not self._config.api_key:
            err = WixAuthError(0, "no API key configured (wix.api_key)")
            self._record_failure(str(err))
            raise err
        url = self._base_url + path
        last_reason = ""
        for attempt in range(self.max_attempts):
            if attempt:
                self.state.retries += 1
            try:
                result = await self._attempt(method, url, body, kind)
            except _Retryable as e:
                last_reason = e.reason
                self._record_failure(e.reason)
                if attempt + 1 >= self.max_attempts:
                    break
                delay = self.backoff_delay(attempt, e.retry_after)
                log.warning(
                    "Wix %s %s failed (%s); retry %d/%d in %.2fs",
                    method, path, e.reason, attempt + 1, self.max_attempts - 1, delay,
                )
                await self._sleep(delay)
                continue
            except WixError as e:
                self._record_failure(str(e))
                raise
            self.state.last_success_at = self._clock()
            self.state.consecutive_failures = 0
            return result
        raise WixUnavailable(
            f"Wix unreachable after {self.max_attempts} attempts: {last_reason}", self.max_attempts
        )

    async def _attempt(self, method: str, url: str, body: dict[str, Any] | None, kind: type[T]) -> T:
        self.state.requests += 1
        try:
            if body is None:
                resp = await self._http.request(method, url, headers=self._headers())
            else:
                resp = await self._http.request(
                    method, url, headers=self._headers(), content=msgspec.json.encode(body),
                )
        except TransportError as e:
            raise _Retryable(f"{type(e).__name__}: {e or 'no detail'}") from e
        status = resp.status_code
        if status in (401, 403):
            raise WixAuthError(status, _error_message(resp))
        if status in RETRY_STATUSES or status >= 500:
            retry_after = self._retry_after(resp) if status == 429 else None
            raise _Retryable(f"HTTP {status}: {_error_message(resp)}", retry_after)
        if status == 404:
            raise WixNotFound(status, _error_message(resp))
        if status >= 400:
            raise WixRequestError(status, _error_message(resp))
        if not 200 <= status < 300:
            raise _Retryable(f"unexpected HTTP {status}")
        try:
            return msgspec.json.decode(resp.content, type=kind)
        except msgspec.DecodeError as e:
            # Typically a captive portal or proxy page on the restaurant's Wi-Fi: transient.
            raise _Retryable(f"invalid answer from Wix: {e}") from e

    def _retry_after(self, resp: Response) -> float | None:
        raw = resp.headers.get("Retry-After")
        if not raw:
            return None
        try:
            return max(float(raw), 0.0)
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max((when - self._clock()).total_seconds(), 0.0)

    def _record_failure(self, reason: str) -> None:
        self.state.last_error = reason
        self.state.last_error_at = self._clock()
        self.state.consecutive_failures += 1
