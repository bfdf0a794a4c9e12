"""Orders reach boxes behind NAT: by their own search (poll) and by webhooks through the
relay's HTTPS endpoint to the right box only; nothing else of a box is reachable."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.relay import topology as topo

pytestmark = [pytest.mark.relay, pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(900)]

A, B = "wix-relay-a", "wix-relay-b"


def test_boxes_take_no_inbound_connection(fleet: topo.Fleet) -> None:
    for box in fleet.boxes.values():
        for port in (22, 8080):
            assert not topo.can_connect(box.ip, port), f"{box.name}:{port} answers from the internet"
    # ... and yet both tunnels are up: the relay listens on each box's two ports, on loopback only
    for b in fleet.boxes:
        for port in fleet.ports(b):
            assert fleet.relay_listening(port)
            assert not topo.can_connect(topo.RELAY[1], port), f"relay exposes {b}'s port {port}"


def test_poll_mode_prints_within_interval_plus_a_second(fleet: topo.Fleet) -> None:
    status = fleet.boxes[A].get_json("/status")
    assert status["wix"]["intake"] == "poll"
    latencies = []
    for _ in range(3):
        order = topo.new_order("poll")
        t0 = time.time()
        fleet.wix[A].add(order)
        topo.wait(lambda o=order: fleet.printed(A, o["number"]), topo.POLL_INTERVAL + 10, "the polled order")
        at = fleet.printed_at(A, order["number"])
        assert at is not None
        latencies.append(at - t0)
    print(f"\npoll mode, box without inbound route: order to paper {', '.join(f'{x:.2f}' for x in latencies)} s "
          f"(interval {topo.POLL_INTERVAL} s)")
    assert max(latencies) < topo.POLL_INTERVAL + 1.0, latencies


def test_signed_webhook_through_the_relay_prints_on_its_box_only(fleet: topo.Fleet) -> None:
    # Orders Wix's search does not know: only the webhook can bring them.
    order_a, order_b = topo.new_order("hook-a"), topo.new_order("hook-b")
    token_a = fleet.wix[A].signer().sign_webhook(order_a, instance_id=fleet.wix[A].instance_id)
    token_b = fleet.wix[B].signer().sign_webhook(order_b, instance_id=fleet.wix[B].instance_id)
    t0 = time.monotonic()
    assert topo.https(fleet.ca, "POST", f"/{A}/webhooks/wix", token_a.encode()) == 200
    topo.wait(lambda: fleet.printed(A, order_a["number"]), 15, "A's webhook order on A's printer")
    print(f"\nwebhook through the relay to paper: {time.monotonic() - t0:.2f} s")
    assert topo.https(fleet.ca, "POST", f"/{B}/webhooks/wix", token_b.encode()) == 200
    topo.wait(lambda: fleet.printed(B, order_b["number"]), 15, "B's webhook order on B's printer")
    # A's webhook sent to B's URL is refused by B (not B's Wix app's signature)
    assert topo.https(fleet.ca, "POST", f"/{B}/webhooks/wix", token_a.encode()) == 401
    time.sleep(topo.POLL_INTERVAL + 1)
    assert not fleet.printed(B, order_a["number"]) and fleet.order_rows(B, order_a["id"]) == 0
    assert not fleet.printed(A, order_b["number"]) and fleet.order_rows(A, order_b["id"]) == 0


def test_every_other_path_on_the_relay_is_refused(fleet: topo.Fleet) -> None:
    refused = {
        ("GET", f"/{A}/webhooks/wix"): 403,
        ("PUT", f"/{A}/webhooks/wix"): 403,
        ("GET", f"/{A}/status"): 404,
        ("POST", f"/{A}/status"): 404,
        ("GET", f"/{A}/"): 404,
        ("GET", f"/{A}/health"): 404,
        ("POST", f"/{A}/api/v1/jobs"): 404,
        ("GET", "/"): 404,
        ("POST", "/webhooks/wix"): 404,
        ("POST", f"/{A}/webhooks/wix/"): 404,
        ("POST", f"/{A}/webhooks/wix/../../status"): 404,
        ("POST", "/nobox/webhooks/wix"): 404,
    }
    got = {k: topo.https(fleet.ca, k[0], k[1], b"x" if k[0] in ("POST", "PUT") else None) for k in refused}
    assert got == refused
    # the service's body limit holds at the relay already
    assert topo.https(fleet.ca, "POST", f"/{A}/webhooks/wix", b"x" * (2 * 1024 * 1024 + 1)) == 413
    # nothing but HTTPS and SSH answers on the relay
    assert not topo.can_connect(topo.RELAY[1], 80)


def test_a_flood_at_one_box_is_held_at_the_relay(fleet: topo.Fleet) -> None:
    """nginx passes on 10 webhooks a second per box after a burst of 50; the rest get 429
    and never reach the box, and the other box's path is not affected."""
    for box in (A, B):  # both services answer through their tunnels before the flood
        topo.wait(lambda box=box: topo.webhook_path_up(fleet, box), 60, f"{box}'s webhook path")
    time.sleep(5.5)  # what those probes took from the burst has come back
    n = 150
    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        codes = Counter(pool.map(lambda _: topo.https(fleet.ca, "POST", f"/{A}/webhooks/wix", b"flood"), range(n)))
        during = topo.https(fleet.ca, "POST", f"/{B}/webhooks/wix", b"not-a-token")
    secs = time.monotonic() - t0
    passed = codes[400] + codes[401]
    print(f"\n{n} webhooks at one box in {secs:.1f} s: {dict(codes)}")
    assert set(codes) <= {400, 401, 429}, codes
    assert codes[429] > 0 and passed <= 51 + 10 * secs + 2, codes
    assert during in (400, 401)  # the service of B answered, not nginx's limit
    time.sleep(1.0)
    assert topo.https(fleet.ca, "POST", f"/{A}/webhooks/wix", b"not-a-token") in (400, 401)


def test_the_relay_serves_webhooks_on_ipv6_too(fleet: topo.Fleet) -> None:
    code = (
        "import ssl, urllib.request, urllib.error\n"
        "ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n"
        f"req = urllib.request.Request('https://[::1]/{A}/webhooks/wix', data=b'x', method='POST')\n"
        "try:\n"
        "    print(urllib.request.urlopen(req, context=ctx, timeout=10).status)\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code)\n"
    )
    assert fleet.relay.exec("python3", "-c", code).stdout.strip() in ("400", "401")
