"""Fleet lifecycle against three real boxes (systemd containers over SSH): converge,
deploy N+1 with queued orders, a broken release rolled back at the canary, a fast
rollback, and a backup -> wipe -> restore drill. Times are printed for BENCHMARKS."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.ansible import boxes
from tests.ansible.boxes import Box

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(1800)]

# Orders come from a fake Wix inside each box (the service's catch-up search).
WIX = {
    "printer_service_wix_base_url": "http://127.0.0.1:9200",
    "printer_service_wix_api_key": "test-api-key",
    "printer_service_wix_site_id": "test-site",
    "printer_service_wix_poll_interval": 2,
}


def ok(res: object) -> None:
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]  # type: ignore[attr-defined]


def start_fakewix(box: Box, orders: int) -> None:
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


def test_converge_fleet_on_release_n(fleet: list[Box], releases: dict[str, Path]) -> None:
    res, secs = boxes.playbook("site.yml", extra={"wheelhouse_project_dir": str(releases["n"]), **WIX})
    ok(res)
    print(f"site.yml, 3 boxes, release N: {secs:.1f} s")
    for b in fleet:
        assert b.exec("systemctl", "is-active", "wix-printer").stdout.strip() == "active"
        assert b.http_status("/health") == 200
        assert b.get_json("/status")["version"] == "1.0.0"
        # the health gate's test page came out of the virtual printer inside the box
        assert b.exec("ls", "/var/lib/wix-devprinter").stdout.count(".txt") >= 1
        assert b.exec("stat", "-c", "%a %U", "/etc/wix-printer/secrets.toml").stdout.split() == ["600", "wixprint"]
        assert b.exec("systemctl", "is-enabled", "wix-printer-healthcheck.timer").stdout.strip() == "enabled"


def test_site_is_idempotent(fleet: list[Box], releases: dict[str, Path]) -> None:
    res, _ = boxes.playbook("site.yml", limit="wix-test-1", extra={"wheelhouse_project_dir": str(releases["n"]), **WIX})
    ok(res)
    # the controller rebuilds the wheel every run (localhost); the box must not change
    assert boxes.recap(res)["wix-test-1"]["changed"] == 0, res.stdout[-4000:]


def test_healthcheck_timer_writes_metrics(fleet: list[Box]) -> None:
    box = fleet[0]
    box.exec("systemctl", "start", "wix-printer-healthcheck.service", "wix-printer-perfmon.service")
    prom = box.exec("cat", "/var/lib/prometheus/node-exporter/wix_printer.prom").stdout
    assert "wix_printer_up 1" in prom
    assert 'wix_printer_info{version="1.0.0"} 1' in prom
    perf = box.exec("cat", "/var/lib/prometheus/node-exporter/wix_printer_perf.prom").stdout
    assert "wix_printer_process_resident_bytes" in perf


def test_deploy_next_release_with_queued_orders(fleet: list[Box], releases: dict[str, Path]) -> None:
    box = fleet[0]
    box.post("http://127.0.0.1:9101/fault/offline")  # printer offline: orders queue up
    start_fakewix(box, 12)
    wait(lambda: box.get_json("/status")["orders"]["total"] >= 12, 60, "12 orders caught up")
    before = box.get_json("/status")
    assert before["jobs"]["queued"] + before["jobs"].get("held", 0) > 0
    order_ids = set(box.sql("SELECT id FROM orders").split())
    box.exec("systemd-run", "--unit=healthpoll", "--collect", "/usr/bin/python3", "-c", POLLER)
    box.post("http://127.0.0.1:9101/reset")  # the printer comes back as the deploy starts

    res, secs = boxes.playbook("deploy.yml", limit="wix-test-1",
                               extra={"wheelhouse_project_dir": str(releases["next"]), **WIX})
    ok(res)
    box.exec("systemctl", "stop", "healthpoll")
    gap = downtime(box)
    print(f"deploy N -> N+1 (warm wheelhouse, one box): {secs:.1f} s, /health downtime {gap:.2f} s")
    assert box.get_json("/status")["version"] == "1.1.0"
    assert box.sql("PRAGMA user_version") == "4"
    wait(lambda: box.get_json("/status")["jobs"]["queued"] == 0, 60, "queue drained")
    after = box.get_json("/status")
    assert order_ids <= set(box.sql("SELECT id FROM orders").split()), "orders lost in the deploy"
    assert after["jobs"]["failed"] == 0
    assert box.sql("SELECT count(*) FROM jobs WHERE state != 'printed' AND kind != 'test'") in ("0",)
    assert gap < 30


def test_broken_release_stops_at_canary_and_rolls_back(fleet: list[Box], releases: dict[str, Path]) -> None:
    b1, b2, b3 = fleet
    # bring the other two boxes to N+1 as well (a normal rolling deploy)
    res, _ = boxes.playbook("deploy.yml", limit="wix-test-2,wix-test-3",
                            extra={"wheelhouse_project_dir": str(releases["next"]), **WIX})
    ok(res)
    orders_before = b1.sql("SELECT count(*) FROM orders")
    res, secs = boxes.playbook("deploy.yml", extra={"wheelhouse_project_dir": str(releases["broken"]), **WIX})
    print(f"broken release: play failed after {secs:.1f} s")
    assert res.returncode != 0
    assert "failed its health gate on wix-test-1" in res.stdout
    # the canary is back on N+1, with its database restored to the schema N+1 knows
    assert b1.get_json("/status")["version"] == "1.1.0"
    assert b1.sql("PRAGMA user_version") == "4"
    assert b1.sql("SELECT count(*) FROM orders") == orders_before
    assert b1.exec("runuser", "-u", "wixprint", "--", "/opt/wix-printer/current/bin/wix-printer", "test-print",
                   "--config", "/etc/wix-printer/config.toml", "--wait", "20").returncode == 0
    # the other two never saw the broken release
    for b in (b2, b3):
        assert b.exec("test", "-e", "/opt/wix-printer/releases/1.2.0", check=False).returncode != 0
        assert b.get_json("/status")["version"] == "1.1.0"


def test_rollback_to_previous_release(fleet: list[Box]) -> None:
    box = fleet[1]
    res, secs = boxes.playbook("rollback.yml", limit="wix-test-2")
    ok(res)
    print(f"rollback.yml N+1 -> N (schema newer: database restored): {secs:.1f} s")
    assert box.get_json("/status")["version"] == "1.0.0"
    assert box.sql("PRAGMA user_version") == "3"
    assert box.http_status("/health") == 200


def test_backup_wipe_restore_drill(fleet: list[Box], tmp_path: Path) -> None:
    box = fleet[0]
    total = int(box.sql("SELECT count(*) FROM orders"))
    assert total >= 12
    res, _ = boxes.playbook("backup.yml", limit="wix-test-1",
                            extra={"backup_controller_dir": str(tmp_path)})
    ok(res)
    copies = list((tmp_path / "wix-test-1").glob("queue-*.db"))
    assert len(copies) == 1
    # wipe: the box loses its database
    box.exec("systemctl", "stop", "wix-printer")
    box.exec("sh", "-c", "rm -f /var/lib/wix-printer/queue.db*")
    box.exec("systemctl", "stop", "fakewix", check=False)
    box.exec("systemctl", "start", "wix-printer")
    wait(lambda: box.http_status("/health") == 200, 30, "empty service up")
    assert box.get_json("/status")["orders"]["total"] == 0
    res, secs = boxes.playbook("restore.yml", limit="wix-test-1", extra={"backup_restore_file": str(copies[0])})
    ok(res)
    print(f"restore drill: {secs:.1f} s")
    assert box.get_json("/status")["orders"]["total"] == total
