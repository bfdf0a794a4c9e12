"""Fleet lifecycle against real systemd boxes over SSH, in order on one shared box:
converge and metrics, deploy N+1 with queued orders (no loss, downtime
measured), rollback.yml with a database restore, a backup -> wipe -> restore drill; then
a broken release stopped at the canary of a three-box fleet. Times are printed (-s) for
docs/operations.md and bench/BENCHMARKS.md. Idempotence (a second converge changes
nothing) is checked per role by the Molecule scenarios (test_molecule.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.ansible import boxes
from tests.ansible.boxes import Box, Releases
from tests.ansible.conftest import WIX
from wix_printer.store.schema import LATEST

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(900)]

DB = "/var/lib/wix-printer/queue.db"
# Orders the box had before the deploy (the pre-migration backup has every one of them).
BEFORE_DEPLOY: set[str] = set()


def ok(res: object) -> None:
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]  # type: ignore[attr-defined]


def start_fakewix(box: Box, orders: int) -> None:
    box.exec("systemctl", "stop", "fakewix", check=False)
    box.exec("systemd-run", "--unit=fakewix", "--collect", "/opt/wix-printer/current/bin/wix-printer", "fakewix",
             "--port", "9200", "--generate", str(orders), "--seed", "7", "--api-key", "test-api-key",
             "--site-id", "test-site")


def wait(cond, timeout: float = 60, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


POLLER = r"""
import time, urllib.request
out = open('/root/health.log', 'w', buffering=1)
while True:
    t = time.time()
    try:
        code = urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=1).status
    except Exception:
        code = 0
    out.write(f'{t:.3f} {code}\n')
    time.sleep(0.05)
"""


def downtime(box: Box) -> float:
    """Longest stretch without a 200 from /health in the poller's log."""
    lines = [ln.split() for ln in box.exec("cat", "/root/health.log").stdout.splitlines() if ln.strip()]
    worst, down_since = 0.0, None
    for t, code in ((float(a), b) for a, b in lines):
        if code != "200":
            down_since = t if down_since is None else down_since
        elif down_since is not None:
            worst, down_since = max(worst, t - down_since), None
    return worst


def test_converge_and_metrics(box: Box, releases: Releases) -> None:
    assert box.exec("systemctl", "is-active", "wix-printer").stdout.strip() == "active"
    assert box.http_status("/health") == 200
    assert box.get_json("/status")["version"] == releases.versions["n"]
    # the health gate's test page came out of the virtual printer inside the box
    assert box.exec("ls", "/var/lib/wix-devprinter").stdout.count(".txt") >= 1
    assert box.exec("stat", "-c", "%a %U", "/etc/wix-printer/secrets.toml").stdout.split() == ["600", "wixprint"]
    unit = box.exec("systemctl", "show", "wix-printer", "-p", "WatchdogUSec", "-p", "StartLimitBurst",
                    "-p", "OnFailure", "-p", "Restart").stdout
    assert "WatchdogUSec=30s" in unit and "StartLimitBurst=10" in unit and "Restart=on-failure" in unit
    assert "OnFailure=wix-printer-alert@wix-printer.service.service" in unit
    for timer in ("healthcheck", "perfmon", "backup"):
        assert box.exec("systemctl", "is-enabled", f"wix-printer-{timer}.timer").stdout.strip() == "enabled"
    box.exec("systemctl", "start", "wix-printer-healthcheck.service", "wix-printer-perfmon.service")
    prom = box.exec("cat", "/var/lib/prometheus/node-exporter/wix_printer.prom").stdout
    assert "wix_printer_up 1" in prom
    assert f'wix_printer_info{{version="{releases.versions["n"]}"}} 1' in prom
    perf = box.exec("cat", "/var/lib/prometheus/node-exporter/wix_printer_perf.prom").stdout
    assert "wix_printer_process_resident_bytes" in perf


def test_deploy_next_release_with_queued_orders(box: Box, releases: Releases) -> None:
    box.post("http://127.0.0.1:9101/fault/offline")  # printer offline: orders queue up
    start_fakewix(box, 12)
    wait(lambda: box.get_json("/status")["orders"]["total"] >= 12, 60, "12 orders caught up")
    before = box.get_json("/status")
    assert before["jobs"]["queued"] + before["jobs"].get("held", 0) > 0
    order_ids = set(box.sql("SELECT id FROM orders").split())
    BEFORE_DEPLOY.update(order_ids)
    box.exec("systemd-run", "--unit=healthpoll", "--collect", "/usr/bin/python3", "-c", POLLER)
    box.post("http://127.0.0.1:9101/reset")  # the printer comes back as the deploy starts

    res, secs = boxes.playbook("deploy.yml", limit=box.name, release=releases, version=releases.versions["next"],
                               extra=WIX)
    ok(res)
    box.exec("systemctl", "stop", "healthpoll")
    gap = downtime(box)
    print(f"deploy N -> N+1 (prebuilt release, one box, {len(order_ids)} orders queued): {secs:.1f} s, "
          f"/health downtime {gap:.2f} s")
    assert box.get_json("/status")["version"] == releases.versions["next"]
    assert box.sql("PRAGMA user_version") == str(LATEST + 1)
    wait(lambda: box.get_json("/status")["jobs"]["queued"] == 0, 90, "queue drained")
    after = box.get_json("/status")
    assert order_ids <= set(box.sql("SELECT id FROM orders").split()), "orders lost in the deploy"
    assert after["jobs"]["failed"] == 0
    assert box.sql("SELECT count(*) FROM jobs WHERE state != 'printed' AND kind != 'test'") == "0"
    assert gap < 30


def test_rollback_restores_the_database(box: Box, releases: Releases) -> None:
    order_ids = set(box.sql("SELECT id FROM orders").split())
    res, secs = boxes.playbook("rollback.yml", limit=box.name)
    ok(res)
    print(f"rollback.yml N+1 -> N (schema newer: database restored): {secs:.1f} s")
    assert box.get_json("/status")["version"] == releases.versions["n"]
    assert box.sql("PRAGMA user_version") == str(LATEST)
    assert box.http_status("/health") == 200
    # every order the box had before the deploy is in the restored database; those that
    # arrived after the pre-migration backup are the catch-up search's to fetch again
    after = set(box.sql("SELECT id FROM orders").split())
    assert after >= BEFORE_DEPLOY, f"lost in the rollback: {sorted(BEFORE_DEPLOY - after)}"
    print(f"rollback: {len(order_ids)} orders before, {len(after)} right after the restore, "
          f"{len(order_ids - after)} newer than the backup")


def test_backup_wipe_restore_drill(box: Box, tmp_path: Path) -> None:
    total = int(box.sql("SELECT count(*) FROM orders"))
    assert total >= 12
    res, _ = boxes.playbook("backup.yml", limit=box.name, extra={"backup_controller_dir": str(tmp_path)})
    ok(res)
    copies = list((tmp_path / box.name).glob("queue-*.db"))
    assert len(copies) == 1
    # wipe: the box loses its database
    box.exec("systemctl", "stop", "fakewix", check=False)
    box.exec("systemctl", "stop", "wix-printer")
    box.exec("sh", "-c", f"rm -f {DB}*")
    box.exec("systemctl", "start", "wix-printer")
    wait(lambda: box.http_status("/health") == 200, 30, "empty service up")
    assert box.get_json("/status")["orders"]["total"] == 0
    res, secs = boxes.playbook("restore.yml", limit=box.name, extra={"backup_restore_file": str(copies[0])})
    ok(res)
    print(f"restore drill (restore.yml): {secs:.1f} s")
    assert box.get_json("/status")["orders"]["total"] == total


def test_broken_release_stops_at_the_canary(box: Box, releases: Releases) -> None:
    """Three boxes on N (two of them cloned from the converged first one); a release whose
    service never comes up fails the canary's health gate: the canary migrates, fails,
    gets its database and release back, the play fails, and the other two never see it."""
    img = boxes.snapshot(box, "canary")
    others = [boxes.start(img, name, boxes.HOSTS[name]) for name in ("wix-test-2", "wix-test-3")]
    try:
        for b in others:
            wait(lambda b=b: b.http_status("/health") == 200, 60, f"{b.name} up")
        orders_before = box.sql("SELECT count(*) FROM orders")
        res, secs = boxes.playbook("deploy.yml", release=releases, version=releases.versions["broken"], extra=WIX)
        print(f"broken release, 3 boxes: play failed after {secs:.1f} s")
        assert res.returncode != 0
        assert f"failed its health gate on {box.name}" in res.stdout
        # the canary is back on N, with its database restored to the schema N knows
        assert box.get_json("/status")["version"] == releases.versions["n"]
        assert box.sql("PRAGMA user_version") == str(LATEST)
        assert box.sql("SELECT count(*) FROM orders") == orders_before
        assert box.exec("runuser", "-u", "wixprint", "--", "/opt/wix-printer/current/bin/wix-printer", "test-print",
                        "--config", "/etc/wix-printer/config.toml", "--wait", "20").returncode == 0
        # the other two never saw the broken release
        recap = boxes.recap(res)
        for b in others:
            assert b.exec("test", "-e", f"/opt/wix-printer/releases/{releases.versions['broken']}",
                          check=False).returncode != 0
            assert b.get_json("/status")["version"] == releases.versions["n"]
            assert recap.get(b.name, {}).get("changed", 0) == 0, res.stdout[-3000:]
    finally:
        for b in others:
            boxes.stop(b.name)
        boxes.sh("podman", "rmi", "-f", img, check=False)
