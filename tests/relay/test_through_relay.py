"""The integrator's tools through the relay, against boxes that take no inbound connection:
deploy.yml (canary first, health gate) and `fleet status`, both from the inventory
`fleet enrol` generated; and a box whose tunnel comes from its boot file's [tunnel]
section (the first-boot path, appliance/wix_appliance/tunnel.py)."""

from __future__ import annotations

import json
import re
import time

import pytest
from wix_fleet import remote, report
from wix_fleet.inventory import Target

from tests.relay import topology as topo

pytestmark = [pytest.mark.relay, pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(900)]

A, B = "wix-relay-a", "wix-relay-b"


def test_deploy_playbook_through_the_relay(fleet: topo.Fleet) -> None:
    for box in fleet.boxes.values():
        assert not topo.can_connect(box.ip, 22)
    since = fleet.relay.exec("date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
    res, secs = fleet.playbook("deploy.yml", *fleet.release_args())
    topo.ok(res)
    recap = {m.group(1): m.group(2) for m in re.finditer(r"^(\S+)\s+:\s+(ok=.*)$", res.stdout, re.M)}
    assert set(recap) == {A, B} and all("failed=0" in v and "unreachable=0" in v for v in recap.values()), recap
    log = fleet.relay.exec("journalctl", "-u", "ssh", "--since", since, "--no-pager").stdout
    assert "Accepted publickey for wixjump" in log
    print(f"\ndeploy.yml through the relay, two boxes (canary first, health gates): {secs:.1f} s")
    for b, box in fleet.boxes.items():
        assert box.get_json("/status")["version"] == fleet.release.versions["n"], b


def test_fleet_status_through_the_relay(fleet: topo.Fleet) -> None:
    for attempt in range(2):
        t0 = time.monotonic()
        res = fleet.fleet("status", "-i", str(fleet.inv), "--limit", "printers", "--json", "--timeout", "15",
                          "--refresh-inventory")
        secs = time.monotonic() - t0
        assert res.returncode in (0, 1), res.stdout + res.stderr
        data = json.loads(res.stdout)
        got = {b["name"]: b for b in data["boxes"]}
        if attempt == 0 and any(b.get("tunnel") == "connecting" for b in got.values()):
            time.sleep(16)  # a tunnel younger than 15 s is "connecting"; it has held by now
            continue
        break
    assert set(got) == {A, B}, got.keys()
    for b in (A, B):
        assert got[b]["reachable"], got[b]
        assert got[b]["version"] == fleet.release.versions["n"], got[b]
        assert got[b]["intake"] == "poll", got[b]
        # reached through its own tunnel, so the box must report that tunnel up
        assert got[b]["tunnel"] == "up" and got[b]["tunnel_age_s"] >= 15, got[b]
    print(f"\nfleet status through the relay, two boxes: {secs:.1f} s (gathered in {data['gathered_in_s']} s)")


def test_boot_file_tunnel_section_brings_the_tunnel_up(fleet: topo.Fleet) -> None:
    """Box B forgets its tunnel; the [tunnel] section `fleet enrol` printed, applied the way
    first boot applies it, brings it back."""
    box = fleet.boxes[B]
    b_http, _ = fleet.ports(B)
    box.exec("systemctl", "stop", "wix-tunnel")
    # What `fleet status` shows for a box it reaches some other way (on the shop's network).
    down = report.parse_probe(B, json.loads(box.exec("sh", "-c", remote.status_command(Target(B, B))).stdout))
    assert down.tunnel == "down" and down.cells["tunnel"] == report.Level.WARN, down
    box.exec("sh", "-c", "rm -f /etc/wix-tunnel/id_ed25519 /etc/wix-tunnel/ssh_config "
                         "/etc/wix-tunnel/known_hosts")
    topo.wait(lambda: not fleet.relay_listening(b_http), 30, "B's tunnel gone")
    section = fleet.enrolled[B]
    code = (
        "import grp, os, pwd, sys, tomllib\n"
        "from pathlib import Path\n"
        "from wix_appliance import tunnel\n"
        "t = tomllib.loads(sys.stdin.read())['tunnel']\n"
        "assert not tunnel.check(t, False), tunnel.check(t, False)\n"
        "ids = (pwd.getpwnam(tunnel.USER).pw_uid, grp.getgrnam(tunnel.USER).gr_gid)\n"
        "for rel, content, mode, own in tunnel.files(t):\n"
        "    p = Path('/') / rel\n"
        "    p.write_text(content)\n"
        "    os.chmod(p, mode)\n"
        "    if own:\n"
        "        os.chown(p, *ids)\n"
    )
    res = topo.sh("podman", "exec", "-i", box.name, "/opt/wix-printer/current/bin/python", "-c", code,
                  input=section, check=False)
    assert res.returncode == 0, res.stderr
    assert box.exec("stat", "-c", "%a %U", "/etc/wix-tunnel/id_ed25519").stdout.split() == ["600", "wixtunnel"]
    t0 = time.monotonic()
    box.exec("systemctl", "start", "wix-tunnel")
    topo.wait(lambda: fleet.relay_listening(b_http), 30, "B's tunnel from its boot file")
    print(f"\n[tunnel] section applied: tunnel up {time.monotonic() - t0:.1f} s after start")
    order = topo.new_order("boot-b")
    token = fleet.wix[B].signer().sign_webhook(order, instance_id=fleet.wix[B].instance_id)
    assert topo.https(fleet.ca, "POST", f"/{B}/webhooks/wix", token.encode()) == 200
    topo.wait(lambda: fleet.printed(B, order["number"]), 15, "B's webhook order")
