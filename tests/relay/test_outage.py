"""The tunnel heals itself: the box's link goes down for longer than both sides'
keep-alives, then the relay restarts. Each time the webhook path is back within 30 s,
and every order Wix took meanwhile prints exactly once (the box's search covers the gap)."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.ansible import boxes
from tests.relay import topology as topo

pytestmark = [pytest.mark.relay, pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(600)]

A, B = "wix-relay-a", "wix-relay-b"


def printed_once(fleet: topo.Fleet, box: str, order: dict[str, str]) -> bool:
    rows = fleet.order_rows(box, order["id"])
    pending = fleet.boxes[box].sql(f"SELECT count(*) FROM jobs WHERE order_id = '{order['id']}' "
                                   "AND state != 'printed'")
    return rows == 1 and pending == "0" and fleet.printed(box, order["number"])


def test_link_down_then_back_tunnel_heals_within_30s(fleet: topo.Fleet) -> None:
    assert topo.webhook_path_up(fleet, A)
    veth = fleet.host_veth(A)
    since = fleet.boxes[A].exec("date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
    orders = []
    topo.sh("ip", "link", "set", veth, "down")
    t_down = time.monotonic()
    try:
        for _ in range(3):
            o = topo.new_order("cut")
            fleet.wix[A].add(o)
            orders.append(o)
        # Wix's delivery of the first one fails: the relay cannot reach the box
        token = fleet.wix[A].signer().sign_webhook(orders[0], instance_id=fleet.wix[A].instance_id)
        assert topo.https(fleet.ca, "POST", f"/{A}/webhooks/wix", token.encode(), timeout=20) in (502, 504)
        # longer than either side's keep-alive limit (5 s x 3): both ends give the link up
        time.sleep(max(0.0, 22 - (time.monotonic() - t_down)))
        assert not any(fleet.printed(A, o["number"]) for o in orders)
    finally:
        topo.sh("ip", "link", "set", veth, "up")
    t_up = time.monotonic()
    back = topo.wait(lambda: topo.webhook_path_up(fleet, A), 40, "A's webhook path after the link came back", step=0.5)
    print(f"\nlink down {t_up - t_down:.1f} s; tunnel back {back:.1f} s after the link "
          f"({time.monotonic() - t_down:.1f} s after the cut)")
    assert back < 30
    # a new connection, not the old one surviving: the box's ssh gave the dead link up itself
    log = fleet.boxes[A].exec("journalctl", "-u", "wix-tunnel", "--since", since, "--no-pager").stdout
    assert "not responding" in log, log[-2000:]
    for o in orders:
        topo.wait(lambda o=o: printed_once(fleet, A, o), 30, f"order {o['number']} taken during the cut")
    # the box's first order after the outage still arrives by webhook as well
    o = topo.new_order("after-cut")
    token = fleet.wix[A].signer().sign_webhook(o, instance_id=fleet.wix[A].instance_id)
    assert topo.https(fleet.ca, "POST", f"/{A}/webhooks/wix", token.encode()) == 200
    topo.wait(lambda: printed_once(fleet, A, o), 15, "the webhook order after the cut")


def test_relay_restart_tunnels_heal_within_30s_polling_covers_the_gap(fleet: topo.Fleet) -> None:
    assert topo.webhook_path_up(fleet, A) and topo.webhook_path_up(fleet, B)
    ports = {b: fleet.ports(b)[0] for b in (A, B)}
    t0 = time.monotonic()
    restart = subprocess.Popen(["podman", "restart", "-t", "5", topo.RELAY[0]], env=boxes.env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        topo.wait(lambda: not topo.can_connect(topo.RELAY[1], 22, 0.5), 20, "the relay to go away", step=0.1)
        t_gone = time.monotonic()
        # Wix takes orders while the relay is away; both boxes' searches bring them in
        orders = {b: topo.new_order(f"restart-{b[-1]}") for b in (A, B)}
        for b, o in orders.items():
            fleet.wix[b].add(o)
        assert restart.wait(120) == 0
    finally:
        if restart.poll() is None:
            restart.kill()
            restart.wait()
    t_ssh = topo.wait_port(topo.RELAY[1], 22, 60, banner=b"SSH")
    for b in (A, B):
        topo.wait(lambda b=b: fleet.relay_listening(ports[b]), 40, f"{b}'s tunnel after the relay restart")
    for b in (A, B):
        topo.wait(lambda b=b: topo.webhook_path_up(fleet, b), 40, f"{b}'s webhook path")
    healed = time.monotonic() - t_ssh
    for b, o in orders.items():
        topo.wait(lambda b=b, o=o: printed_once(fleet, b, o), 15, f"{b}'s order during the relay restart")
    paper = {b: (fleet.printed_at(b, o["number"]) or 0) - (time.time() - (time.monotonic() - t_gone))
             for b, o in orders.items()}
    print(f"\nrelay restart: down {t_ssh - t_gone:.1f} s (sshd back {t_ssh - t0:.1f} s after the restart began); "
          f"both tunnels and webhook paths back {healed:.1f} s after sshd; orders Wix took while the relay "
          f"was down printed by polling {', '.join(f'{v:.1f}' for v in paper.values())} s after it went away")
    assert healed < 30
