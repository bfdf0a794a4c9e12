"""One relay and two boxes for the whole tier (building them is most of its time); the
test modules use them in order: intake (poll, webhooks, refused paths), keys (a stolen
key), outage (link down, relay restart), through_relay (deploy.yml, fleet status, the
boot file's [tunnel] section).

WIX_KEEP_BOXES=1 keeps the containers and var/ansible/relay-work; the next run with it
set reuses them instead of building the fleet again (for working on the tests)."""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.ansible import boxes
from tests.relay import topology as topo


def _running(name: str) -> bool:
    res = topo.sh("podman", "container", "inspect", "-f", "{{.State.Running}}", name, check=False)
    return res.stdout.strip() == "true"


def build(work: Path, wix: dict[str, topo.Wix], started: list[str]) -> topo.Fleet:
    t0 = time.monotonic()
    img = boxes.image()
    topo.ensure_network()
    with ThreadPoolExecutor(4) as pool:
        rel_f = pool.submit(topo.release_n, work)
        starts = {name: pool.submit(topo.start, img, name, ip) for name, ip in [topo.RELAY, *topo.BOXES.items()]}
        nodes = {}
        for name, fut in starts.items():
            nodes[name], cid = fut.result()
            started.append(cid)
        release = rel_f.result()
    timings = {"boot_and_release_s": time.monotonic() - t0}
    # The bridge (and so the gateway address the fakes bind) exists once a container runs.
    for w in wix.values():
        w.start(work / f"fakewix-{w.box}.log")
    relay = nodes[topo.RELAY[0]]
    # The image bakes one set of host keys; the relay gets its own, which the boxes pin.
    relay.exec("sh", "-c", "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A -q && systemctl restart ssh")
    host_key = relay.exec("cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.strip()
    cert, key, ca = topo.make_tls(work)
    (work / "keys").mkdir()
    inv, bench = topo.write_inventory(work, cert, key, wix)
    enrolled = {b: topo.enrol(work, inv, b, host_key) for b in topo.BOXES}
    for b, text in enrolled.items():
        (work / f"{b}.tunnel.toml").write_text(text)
    f = topo.Fleet(img=img, work=work, inv=inv, boot_inv=bench, keys=work / "keys", ca=ca, release=release,
                   relay=relay, boxes={b: nodes[b] for b in topo.BOXES}, wix=wix, enrolled=enrolled, timings=timings)
    # The relay and the boxes converge side by side; a tunnel that starts before the relay
    # is ready just retries (at most 5 s apart).
    with ThreadPoolExecutor(2) as pool:
        relay_run = pool.submit(f.playbook, "relay.yml")
        boxes_run = pool.submit(f.playbook, "site.yml", *f.release_args(), "--limit", "printers", direct=True,
                                timeout=900)
        for what, fut in (("relay_converge_s", relay_run), ("boxes_converge_s", boxes_run)):
            res, secs = fut.result()
            topo.ok(res)
            f.timings[what] = secs
    for box in f.boxes.values():
        box.exec("sh", "-c", f"cat > /etc/nftables-nat-sim.conf <<'EOF'\n{topo.NAT}EOF\n"
                 "nft -f /etc/nftables-nat-sim.conf")
    return f


def reuse(work: Path, wix: dict[str, topo.Wix]) -> topo.Fleet:
    for w in wix.values():
        w.start(work / f"fakewix-{w.box}.log")
    node = {name: boxes.Box(name, ip) for name, ip in [topo.RELAY, *topo.BOXES.items()]}
    return topo.Fleet(img="", work=work, inv=work / "inventory", boot_inv=work / "bench.yml", keys=work / "keys",
                      ca=work / "ca.pem", release=topo.release_n(work), relay=node[topo.RELAY[0]],
                      boxes={b: node[b] for b in topo.BOXES}, wix=wix,
                      enrolled={b: (work / f"{b}.tunnel.toml").read_text() for b in topo.BOXES})


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[topo.Fleet]:
    why = topo.missing_tools()
    if why:
        pytest.skip(why)
    # One relay tier at a time on a machine: the containers, network and ports have fixed
    # names, and a second run would take them from under the first.
    boxes.CACHE.mkdir(parents=True, exist_ok=True)
    lock = (boxes.CACHE / "relay-tier.lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    t0 = time.monotonic()
    keep = bool(os.environ.get("WIX_KEEP_BOXES"))
    work = boxes.CACHE / "relay-work" if keep else tmp_path_factory.mktemp("relay")
    reusing = keep and (work / "ready").exists() and all(_running(n) for n in [topo.RELAY[0], *topo.BOXES])
    if keep and not reusing:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    wix = {b: topo.Wix(b, port, work / f"wix-{b}") for b, port in topo.WIX_PORTS.items()}
    started: list[str] = []
    try:
        f = reuse(work, wix) if reusing else build(work, wix, started)
        for b in f.boxes:
            http_port, _ = f.ports(b)
            topo.wait(lambda p=http_port: f.relay_listening(p), 30, f"{b}'s tunnel on the relay")
        f.timings["setup_s"] = time.monotonic() - t0
        (work / "ready").write_text("")
        print(f"\nrelay tier set-up{' (reused)' if reusing else ''}: "
              f"{', '.join(f'{k} {v:.1f}' for k, v in f.timings.items())}")
        yield f
    finally:
        for w in wix.values():
            w.stop()
        if not keep:
            for cid in started:
                topo.sh("podman", "rm", "-f", "-t", "0", cid, check=False)
            topo.remove_network()
        lock.close()
