"""The catch-up search client against the fake Wix over real loopback HTTP (no mocks)."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from wix_printer.config import WixConfig
from wix_printer.fakewix import FakeWix, WebhookSigner, generate_orders
from wix_printer.wix.http import Headers, Response
from wix_printer.wix.search import (
    WixAuthError,
    WixNotFound,
    WixRequestError,
    WixSearchClient,
    WixUnavailable,
    search_body,
)

START = datetime(2026, 3, 14, 11, 0, tzinfo=UTC)


class RecordingSleep:
    """Stands in for asyncio.sleep: remembers the backoff, waits for nothing."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
async def fake(signer: WebhookSigner) -> AsyncIterator[FakeWix]:
    # The session key from tests/conftest.py: RSA generation per test would dominate the run.
    async with FakeWix(api_key="test-key", site_id="site-1", signer=signer) as wix:
        yield wix


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


# The client's timeout is one budget for the whole request (wix/http.py): generous here, so
# a loaded CI machine serving a 100-order page slowly is not mistaken for a dead link.
def make_client(base_url: str, sleep: RecordingSleep, *, api_key: str = "test-key", site_id: str = "site-1",
                timeout: float = 10.0, **kw: Any) -> WixSearchClient:
    cfg = WixConfig(base_url=base_url, api_key=api_key, site_id=site_id, request_timeout=timeout)
    return WixSearchClient(cfg, sleep=sleep, **kw)


async def collect(client: WixSearchClient, since: datetime) -> list[list[dict[str, Any]]]:
    return [page async for page in client.search_orders(since)]


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_250_orders_come_in_three_pages_once_each_in_updated_order(
    fake: FakeWix, sleep: RecordingSleep
) -> None:
    orders = generate_orders(250, START, seed=7)
    fake.add_orders(orders)
    async with make_client(fake.base_url, sleep) as client:
        pages = await collect(client, START)

    assert [len(p) for p in pages] == [100, 100, 50]
    got = [o for p in pages for o in p]
    ids = [o["id"] for o in got]
    assert len(ids) == len(set(ids)) == 250
    assert set(ids) == {o["id"] for o in orders}
    stamps = [parse(o["updatedDate"]) for o in got]
    assert stamps == sorted(stamps)
    assert sleep.delays == []

    searches = fake.api_requests("/ecom/v1/orders/search")
    assert len(searches) == 3
    assert searches[0].json() == {
        "search": {
            "filter": {"updatedDate": {"$gte": "2026-03-14T11:00:00.000Z"},
                       "status": {"$in": ["APPROVED", "CANCELED"]}},
            "sort": [{"fieldName": "updatedDate", "order": "ASC"}],
            "cursorPaging": {"limit": 100},
        }
    }
    for later in searches[1:]:
        body = later.json()
        assert set(body["search"]) == {"cursorPaging"}
        assert body["search"]["cursorPaging"]["cursor"]
    for r in searches:
        assert r.headers["authorization"] == "test-key"
        assert r.headers["wix-site-id"] == "site-1"
    assert client.state.last_success_at is not None
    assert client.state.consecutive_failures == 0


async def test_filters_since_and_status(fake: FakeWix, sleep: RecordingSleep) -> None:
    orders = generate_orders(120, START, seed=3, canceled_share=0.2, initialized_share=0.2)
    fake.add_orders(orders)
    assert {o["status"] for o in orders} == {"APPROVED", "CANCELED", "INITIALIZED"}
    since_order = sorted(orders, key=lambda o: parse(o["updatedDate"]))[50]
    since = parse(since_order["updatedDate"])
    expected = {
        o["id"] for o in orders
        if o["status"] in ("APPROVED", "CANCELED") and parse(o["updatedDate"]) >= since
    }
    async with make_client(fake.base_url, sleep) as client:
        got = [o for p in await collect(client, since) for o in p]

    assert {o["id"] for o in got} == expected
    assert len(got) == len(expected)
    if since_order["status"] != "INITIALIZED":
        assert since_order["id"] in expected  # $gte: the boundary itself is included
    assert all(o["status"] != "INITIALIZED" for o in got)


async def test_since_in_another_zone_is_sent_as_utc_z() -> None:
    cet = datetime(2026, 3, 14, 12, 0, 0, 123456, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))
    body = search_body(cet)
    assert body["search"]["filter"]["updatedDate"] == {"$gte": "2026-03-14T12:00:00.123Z"}
    with pytest.raises(ValueError, match="timezone-aware"):
        search_body(datetime(2026, 3, 14, 12, 0))


async def test_no_orders_yields_one_empty_page(fake: FakeWix, sleep: RecordingSleep) -> None:
    async with make_client(fake.base_url, sleep) as client:
        assert await collect(client, START) == [[]]


async def test_429_with_retry_after_then_500_is_retried_and_nothing_lost(
    fake: FakeWix, sleep: RecordingSleep
) -> None:
    orders = generate_orders(150, START, seed=11)
    fake.add_orders(orders)
    fake.fail(429, retry_after=1)
    fake.fail(500)
    got: list[dict[str, Any]] = []
    async with make_client(fake.base_url, sleep) as client:
        async for page in client.search_orders(START):
            got.extend(page)
            if len(got) == 100:
                # Wix falls over between two pages: the next page must still arrive.
                fake.fail(503, times=2)

    assert sorted(o["id"] for o in got) == sorted(o["id"] for o in orders)
    statuses = [r.status for r in fake.api_requests()]
    assert statuses == [429, 500, 200, 503, 503, 200]
    assert sleep.delays[0] == 1.0  # Retry-After honoured, not the jittered backoff
    assert 0.0 <= sleep.delays[1] <= 1.0  # attempt 1: up to base * 2**1
    assert len(sleep.delays) == 4
    assert client.state.retries == 4
    assert client.state.consecutive_failures == 0
    assert client.state.last_error is not None
    assert "503" in client.state.last_error


async def test_dropped_connection_is_retried(fake: FakeWix, sleep: RecordingSleep) -> None:
    fake.add_orders(generate_orders(10, START, seed=1))
    fake.fail(mode="drop")
    async with make_client(fake.base_url, sleep) as client:
        pages = await collect(client, START)
    assert sum(len(p) for p in pages) == 10
    reqs = fake.api_requests()
    assert [r.injected for r in reqs] == ["drop", None]
    assert len(sleep.delays) == 1
    assert client.state.last_error is not None
    assert "RemoteProtocolError" in client.state.last_error


async def test_timeout_is_retried(fake: FakeWix, sleep: RecordingSleep) -> None:
    fake.add_orders(generate_orders(3, START, seed=2))
    fake.fail(mode="delay", delay=1.0)
    async with make_client(fake.base_url, sleep, timeout=0.2) as client:
        pages = await collect(client, START)
    assert sum(len(p) for p in pages) == 3
    assert client.state.last_error is not None
    assert "Timeout" in client.state.last_error


async def test_captive_portal_page_and_page_without_orders_are_retried(
    fake: FakeWix, sleep: RecordingSleep
) -> None:
    fake.add_orders(generate_orders(5, START, seed=4))
    fake.fail(mode="body", status=200, body="<html>Hotspot login</html>", content_type="text/html")
    fake.fail(mode="body", status=200, body='{"metadata": {"count": 0}}')
    async with make_client(fake.base_url, sleep) as client:
        pages = await collect(client, START)
    assert sum(len(p) for p in pages) == 5
    assert len(sleep.delays) == 2
    assert client.state.last_error is not None
    assert "orders" in client.state.last_error


async def test_exhaustion_raises_unavailable_with_the_reason(fake: FakeWix, sleep: RecordingSleep) -> None:
    fake.fail(503, times=10)
    async with make_client(fake.base_url, sleep, max_attempts=4) as client:
        with pytest.raises(WixUnavailable) as err:
            await collect(client, START)
    assert "HTTP 503" in err.value.reason
    assert "4 attempts" in err.value.reason
    assert err.value.attempts == 4
    assert len(fake.api_requests()) == 4
    assert len(sleep.delays) == 3
    assert all(0.0 <= d <= min(30.0, 0.5 * 2**i) for i, d in enumerate(sleep.delays))
    assert client.state.consecutive_failures == 4
    assert client.state.last_success_at is None
    assert client.state.last_error_at is not None
    assert client.state.to_dict()["ok"] is False


async def test_connection_refused_exhausts_into_unavailable(sleep: RecordingSleep) -> None:
    port = closed_port()
    async with make_client(f"http://127.0.0.1:{port}", sleep, max_attempts=3) as client:
        with pytest.raises(WixUnavailable, match="ConnectError"):
            await collect(client, START)
    assert len(sleep.delays) == 2
    assert client.state.consecutive_failures == 3


@pytest.mark.parametrize(("api_key", "site_id"), [("wrong-key", "site-1"), ("test-key", "other-site")])
async def test_wrong_credentials_raise_auth_error_without_retry(
    fake: FakeWix, sleep: RecordingSleep, api_key: str, site_id: str
) -> None:
    fake.add_orders(generate_orders(3, START, seed=5))
    async with make_client(fake.base_url, sleep, api_key=api_key, site_id=site_id) as client:
        with pytest.raises(WixAuthError) as err:
            await collect(client, START)
    assert err.value.status == 401
    assert len(fake.api_requests()) == 1
    assert sleep.delays == []
    assert client.state.last_error is not None
    assert "401" in client.state.last_error


async def test_missing_api_key_is_reported_without_a_request(fake: FakeWix, sleep: RecordingSleep) -> None:
    async with make_client(fake.base_url, sleep, api_key="") as client:
        with pytest.raises(WixAuthError, match="no API key"):
            await collect(client, START)
    assert fake.api_requests() == []


async def test_other_4xx_is_not_retried(fake: FakeWix, sleep: RecordingSleep) -> None:
    fake.fail(400)
    async with make_client(fake.base_url, sleep) as client:
        with pytest.raises(WixRequestError) as err:
            await collect(client, START)
    assert err.value.status == 400
    assert sleep.delays == []


async def test_get_order(fake: FakeWix, sleep: RecordingSleep) -> None:
    order = generate_orders(1, START, seed=9)[0]
    fake.add_order(order)
    fake.fail(502, path="/ecom/v1/orders/")
    async with make_client(fake.base_url, sleep) as client:
        assert await client.get_order(order["id"]) == order
        with pytest.raises(WixNotFound):
            await client.get_order("00000000-0000-4000-8000-000000000000")
    assert [r.status for r in fake.api_requests()] == [502, 200, 404]


async def test_backoff_is_capped_full_jitter(sleep: RecordingSleep) -> None:
    client = make_client("http://127.0.0.1:9", sleep, rng=random.Random(1))
    try:
        for attempt in range(12):
            ceiling = min(30.0, 0.5 * 2**attempt)
            delays = [client.backoff_delay(attempt) for _ in range(50)]
            assert all(0.0 <= d <= ceiling for d in delays)
        assert max(client.backoff_delay(10) for _ in range(200)) > 15.0  # jitter spans the range
        assert client.backoff_delay(0, retry_after=7) == 7
        assert client.backoff_delay(0, retry_after=10_000) == 300.0
    finally:
        await client.aclose()


async def test_retry_after_as_http_date(fake: FakeWix, sleep: RecordingSleep) -> None:
    now = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
    fake.fail(mode="body", status=429, body="{}")
    # The fake sends numbers; an HTTP date is exercised through the parser directly.
    client = make_client(fake.base_url, sleep, clock=lambda: now)
    try:
        resp = Response(429, Headers({"Retry-After": "Sat, 14 Mar 2026 12:00:05 GMT"}))
        assert client._retry_after(resp) == 5.0
        resp = Response(429, Headers({"Retry-After": "soon"}))
        assert client._retry_after(resp) is None
        pages = await collect(client, now - timedelta(days=1))
        assert pages == [[]]
        assert client.state.last_success_at == now
    finally:
        await client.aclose()


async def test_orders_changed_while_paging_are_not_lost(fake: FakeWix, sleep: RecordingSleep) -> None:
    orders = generate_orders(150, START, seed=13, canceled_share=0)
    fake.add_orders(orders)
    seen: list[str] = []
    async with make_client(fake.base_url, sleep) as client:
        async for page in client.search_orders(START):
            if not seen:
                # A cancellation lands between two pages: one order already seen, one not yet.
                fake.update_order(page[0]["id"], {"status": "CANCELED"})
                fake.update_order(orders[120]["id"], {"status": "CANCELED"})
            seen.extend(o["id"] for o in page)
    assert set(seen) == {o["id"] for o in orders}
    assert seen.count(orders[0]["id"]) == 2  # found again in its new state: intake dedupes
    assert set(seen[-2:]) == {orders[0]["id"], orders[120]["id"]}
