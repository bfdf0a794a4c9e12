"""The fake's HTTP surface, driven with plain httpx over loopback."""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from wix_printer.fakewix import FakeWix, WebhookSigner, decode_unverified, generate_orders
from wix_printer.fakewix.cli import configure_parser

START = datetime(2026, 3, 14, 11, 0, tzinfo=UTC)
AUTH = {"Authorization": "test-key", "wix-site-id": "site-1"}


@pytest.fixture
async def fake(signer: WebhookSigner) -> AsyncIterator[FakeWix]:
    async with FakeWix(signer=signer) as wix:
        yield wix


@pytest.fixture
async def http(fake: FakeWix) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=5) as client:
        yield client


async def search(http: httpx.AsyncClient, search: dict[str, Any],
                 headers: dict[str, str] | None = None) -> httpx.Response:
    return await http.post("/ecom/v1/orders/search", json={"search": search},
                           headers=AUTH if headers is None else headers)


async def test_serves_on_loopback_only(fake: FakeWix) -> None:
    assert fake.base_url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "test-key"},
                                     {"Authorization": "nope", "wix-site-id": "site-1"}])
async def test_auth_headers_are_checked(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    r = await search(http, {}, headers)
    assert r.status_code == 401
    assert "message" in r.json()
    r = await http.get("/ecom/v1/orders/x", headers=headers)
    assert r.status_code == 401


async def test_cursor_paging_default_sort_and_prev(fake: FakeWix, http: httpx.AsyncClient) -> None:
    orders = generate_orders(25, START, seed=1, canceled_share=0)
    fake.add_orders(orders)
    r = await search(http, {"cursorPaging": {"limit": 10}})
    body = r.json()
    # No sort given: newest first, like Wix.
    assert [o["id"] for o in body["orders"]] == [o["id"] for o in reversed(orders)][:10]
    assert body["metadata"]["count"] == 10
    assert body["metadata"]["hasNext"] is True
    assert body["metadata"]["cursors"]["prev"] is None
    second = (await search(http, {"cursorPaging": {"limit": 10,
                                                   "cursor": body["metadata"]["cursors"]["next"]}})).json()
    assert [o["id"] for o in second["orders"]] == [o["id"] for o in reversed(orders)][10:20]
    back = (await search(http, {"cursorPaging": {"limit": 10,
                                                 "cursor": second["metadata"]["cursors"]["prev"]}})).json()
    assert [o["id"] for o in back["orders"]] == [o["id"] for o in body["orders"]]
    last = (await search(http, {"cursorPaging": {"limit": 10,
                                                 "cursor": second["metadata"]["cursors"]["next"]}})).json()
    assert last["metadata"] == last["metadata"] | {"count": 5, "hasNext": False}
    assert last["metadata"]["cursors"]["next"] is None


async def test_updated_and_status_filters(fake: FakeWix, http: httpx.AsyncClient) -> None:
    orders = generate_orders(40, START, seed=2, canceled_share=0.3, initialized_share=0.2)
    fake.add_orders(orders)
    cut = sorted(o["updatedDate"] for o in orders)[20]
    r = await search(http, {"filter": {"updatedDate": {"$gte": cut}, "status": {"$in": ["CANCELED"]}},
                            "sort": [{"fieldName": "updatedDate", "order": "ASC"}],
                            "cursorPaging": {"limit": 100}})
    got = r.json()["orders"]
    want = sorted((o for o in orders if o["status"] == "CANCELED" and o["updatedDate"] >= cut),
                  key=lambda o: o["updatedDate"])
    assert [o["id"] for o in got] == [o["id"] for o in want]
    # INITIALIZED never comes out of search, even when asked for.
    r = await search(http, {"filter": {"status": "INITIALIZED"}})
    assert r.json()["orders"] == []


async def test_strictness_400s(fake: FakeWix, http: httpx.AsyncClient) -> None:
    fake.add_orders(generate_orders(3, START, seed=3))
    assert (await search(http, {"cursorPaging": {"limit": 101}})).status_code == 400
    assert (await search(http, {"filter": {"buyerNote": "x"}})).status_code == 400
    assert (await search(http, {"filter": {"status": {"$regex": "A"}}})).status_code == 400
    first = (await search(http, {"cursorPaging": {"limit": 1}})).json()
    mixed = await search(http, {"filter": {"status": "APPROVED"},
                                "cursorPaging": {"limit": 1, "cursor": first["metadata"]["cursors"]["next"]}})
    assert mixed.status_code == 400
    assert (await search(http, {"cursorPaging": {"cursor": "!!garbage"}})).status_code == 400
    bad_json = await http.post("/ecom/v1/orders/search", content=b"{", headers=AUTH)
    assert bad_json.status_code == 400


async def test_get_order_and_404(fake: FakeWix, http: httpx.AsyncClient) -> None:
    order = generate_orders(1, START, seed=4)[0]
    fake.add_order(order)
    r = await http.get(f"/ecom/v1/orders/{order['id']}", headers=AUTH)
    assert r.json() == {"order": order}
    r = await http.get("/ecom/v1/orders/unknown", headers=AUTH)
    assert r.status_code == 404


async def test_control_endpoints(fake: FakeWix, http: httpx.AsyncClient) -> None:
    orders = generate_orders(3, START, seed=5)
    r = await http.post("/_fake/orders", json=orders)
    assert r.json() == {"stored": 3, "total": 3}
    r = await http.post("/_fake/orders", json=orders[0] | {"status": "CANCELED"})
    assert fake.get_order(orders[0]["id"])["status"] == "CANCELED"  # type: ignore[index]

    r = await http.post("/_fake/fail", json={"status": 429, "times": 1, "retry_after": 1})
    assert r.status_code == 200
    assert (await http.post("/_fake/fail", json={"status": 500, "times": 2})).json() == {"pending": 3}
    assert (await http.post("/_fake/fail", json={"colour": "red"})).status_code == 400
    r = await search(http, {})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    assert [(await search(http, {})).status_code for _ in range(3)] == [500, 500, 200]

    await http.post("/_fake/fail", json={"mode": "drop"})
    with pytest.raises(httpx.RemoteProtocolError):
        await search(http, {})
    assert (await search(http, {})).status_code == 200

    recorded = (await http.get("/_fake/requests")).json()
    api = [r for r in recorded if r["path"].startswith("/ecom/")]
    assert [r["status"] for r in api] == [429, 500, 500, 200, 200, 200]
    assert [r["injected"] for r in api][-2:] == ["drop", None]
    pem = (await http.get("/_fake/public-key")).text
    assert pem == fake.public_key_pem()
    await http.post("/_fake/reset")
    assert fake.requests == [] or all(r.path == "/_fake/reset" for r in fake.requests)


async def test_fault_path_filter_and_python_api(fake: FakeWix, http: httpx.AsyncClient) -> None:
    order = generate_orders(1, START, seed=6)[0]
    fake.add_order(order)
    fake.fail(503, path="/ecom/v1/orders/search")
    assert (await http.get(f"/ecom/v1/orders/{order['id']}", headers=AUTH)).status_code == 200
    assert fake.pending_failures == 1
    assert (await search(http, {})).status_code == 503
    with pytest.raises(ValueError, match="4xx or 5xx"):
        fake.fail(200)
    updated = fake.update_order(order["id"], {"buyerNote": "neu"})
    assert updated["updatedDate"] > order["updatedDate"]


async def test_deliver_posts_the_raw_token(fake: FakeWix, http: httpx.AsyncClient) -> None:
    order = generate_orders(1, START, seed=7)[0]
    fake.add_order(order)
    token = fake.sign_webhook(order)
    # Any endpoint will do as receiver: what matters is what arrived on the wire.
    status = await fake.deliver(f"{fake.base_url}/_fake/orders", token)
    assert status == 400
    assert fake.requests[-1].body == token.encode()

    r = await http.post("/_fake/deliver", json={"url": f"{fake.base_url}/_fake/orders",
                                                "orderId": order["id"], "slug": "canceled", "seq": 3})
    assert r.json() == {"status": 400}
    delivered = fake.requests[-1].body.decode()
    _, claims = decode_unverified(delivered)
    assert json.loads(claims["data"])["eventType"] == "wix.ecom.v1.order_canceled"


async def test_deliver_to_nobody_reports_status_zero(fake: FakeWix, http: httpx.AsyncClient) -> None:
    fake.add_orders(generate_orders(1, START, seed=8))
    oid = fake.orders[0]["id"]
    r = await http.post("/_fake/deliver", json={"url": "http://127.0.0.1:9/webhooks/wix", "orderId": oid})
    assert r.json()["status"] == 0


async def test_start_stop_twice_on_a_fixed_port(signer: WebhookSigner) -> None:
    fake = FakeWix(signer=signer)
    url = await fake.start()
    port = int(url.rsplit(":", 1)[1])
    await fake.stop()
    again = FakeWix(signer=signer, port=port)
    async with again:
        assert again.base_url == url
    with pytest.raises(RuntimeError, match="not serving"):
        _ = again.base_url


def test_cli_parser_defaults() -> None:
    p = argparse.ArgumentParser()
    configure_parser(p)
    args = p.parse_args(["--port", "8099", "--orders", "/tmp/o", "--key-out", "/tmp/k"])
    assert (args.host, args.port, args.api_key, args.site_id) == ("127.0.0.1", 8099, "test-key", "site-1")
    assert str(args.orders) == "/tmp/o"
    assert str(args.key_out) == "/tmp/k"
