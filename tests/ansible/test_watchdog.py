"""What only real systemd can show, on the converged box: a hung print worker (fault
injected) gets the service killed by the watchdog and restarted, and it prints again;
a crash loop ends in a clear failed state (start limit) and the OnFailure= alert runs."""

from __future__ import annotations

import re
import time

import pytest

from tests.ansible.boxes import Box

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(300)]

UNIT = "wix-printer.service"
DROPIN_DIR = "/etc/systemd/system/wix-printer.service.d"
WATCHDOG_SEC = 10
HANG_AFTER = 3
# EnvironmentFile= is read at every start: the test removes the file once the hanging
# process runs, so the process systemd starts after the watchdog kill is a normal one.
HANG_ENV = "/run/wix-printer-test-hang.env"


def show(box: Box, *props: str) -> dict[str, str]:
    out = box.exec("systemctl", "show", UNIT, *[f"-p{p}" for p in props]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def journal_since(box: Box, since: float) -> list[tuple[float, str]]:
    out = box.exec("journalctl", "-o", "short-unix", "--no-pager", f"--since=@{since:.0f}").stdout
    lines = []
    for ln in out.splitlines():
        m = re.match(r"^(\d+\.\d+) (.*)$", ln)
        if m:
            lines.append((float(m.group(1)), m.group(2)))
    return lines


def first(lines: list[tuple[float, str]], needle: str, after: float = 0.0) -> float | None:
    return next((t for t, text in lines if needle in text and t >= after), None)


def wait_active(box: Box, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if box.http_status("/health") == 200:
            return
        time.sleep(0.5)
    raise AssertionError("service did not come back")


def dropin(box: Box, name: str, text: str | None) -> None:
    path = f"{DROPIN_DIR}/{name}"
    if text is None:
        box.exec("rm", "-f", path)
    else:
        box.exec("sh", "-c", f"mkdir -p {DROPIN_DIR} && cat > {path} <<'EOF'\n{text}EOF\n")
    box.exec("systemctl", "daemon-reload")


def test_hung_worker_is_restarted_by_the_watchdog(box: Box) -> None:
    dropin(box, "90-test-watchdog.conf",
           f"[Service]\nWatchdogSec={WATCHDOG_SEC}\nEnvironmentFile=-{HANG_ENV}\n")
    try:
        box.exec("sh", "-c", f"echo WIX_PRINTER_TEST_HANG_WORKER_AFTER={HANG_AFTER} > {HANG_ENV}")
        t0 = float(box.exec("date", "+%s.%N").stdout) - 1
        box.exec("systemctl", "restart", UNIT)  # returns on READY=1
        box.exec("rm", "-f", HANG_ENV)
        before = show(box, "MainPID", "NRestarts")
        deadline = time.monotonic() + HANG_AFTER + 3 * WATCHDOG_SEC + 30
        while time.monotonic() < deadline:
            now = show(box, "MainPID", "NRestarts", "ActiveState")
            if int(now["NRestarts"]) > int(before["NRestarts"]) and now["ActiveState"] == "active" \
                    and now["MainPID"] not in ("0", before["MainPID"]):
                break
            time.sleep(1)
        else:
            raise AssertionError(f"no watchdog restart: {show(box, 'MainPID', 'NRestarts', 'ActiveState')}")
        wait_active(box)
        log = journal_since(box, t0)
        hung = first(log, "fault injection: print worker hangs now")
        withheld = first(log, "withholding the watchdog ping")
        timeout = first(log, "Watchdog timeout")
        assert hung is not None and timeout is not None, "\n".join(t for _, t in log[-60:])
        ready = first(log, "Started wix-printer", after=timeout)
        assert ready is not None, "\n".join(t for _, t in log[-60:])
        print(f"watchdog: worker hung at +0, pings withheld at +{(withheld or hung) - hung:.1f} s, "
              f"watchdog timeout at +{timeout - hung:.1f} s (WatchdogSec={WATCHDOG_SEC}), "
              f"service ready again {ready - timeout:.1f} s later")
        # The last ping goes out at most WatchdogSec after the hang (the worker is judged
        # by the same period), the kill at most WatchdogSec after that.
        assert timeout - hung <= 2 * WATCHDOG_SEC + 6
        if withheld is not None:
            assert timeout - withheld <= WATCHDOG_SEC + 1
        # and it prints again
        res = box.exec("runuser", "-u", "wixprint", "--", "/opt/wix-printer/current/bin/wix-printer", "test-print",
                       "--config", "/etc/wix-printer/config.toml", "--wait", "60", check=False)
        status = box.exec("/opt/wix-printer/current/bin/wix-printer", "status", "--config",
                          "/etc/wix-printer/config.toml", check=False).stdout
        assert res.returncode == 0, res.stdout + res.stderr + status[-3000:]
    finally:
        box.exec("rm", "-f", HANG_ENV)
        dropin(box, "90-test-watchdog.conf", None)
        box.exec("systemctl", "restart", UNIT)


def test_crash_loop_ends_failed_and_alerts(box: Box) -> None:
    """Exit code 75 (what the service does when its store stays unwritable) restarts the
    unit; a loop of them hits the start limit, the unit stays failed and OnFailure= runs
    the alert unit, which writes the alert metric."""
    alerts = "/var/lib/prometheus/node-exporter/wix_printer_alerts.prom"
    box.exec("rm", "-f", alerts, "/var/lib/wix-printer-monitor/alerts.count")
    dropin(box, "90-test-crashloop.conf",
           "[Unit]\nStartLimitIntervalSec=60\nStartLimitBurst=3\n"
           "[Service]\nType=simple\nExecStart=\nExecStart=/bin/sh -c 'sleep 0.2; exit 75'\nRestartSec=0.5\n")
    try:
        box.exec("systemctl", "restart", UNIT, check=False)
        deadline = time.monotonic() + 30
        state: dict[str, str] = {}
        while time.monotonic() < deadline:
            state = show(box, "ActiveState", "Result", "NRestarts")
            if state["ActiveState"] == "failed":
                break
            time.sleep(0.5)
        # systemd 252 keeps Result=exit-code of the last run and logs the start limit
        assert state["ActiveState"] == "failed", state
        log = box.exec("journalctl", "-u", UNIT, "--no-pager", "-n", "30").stdout
        assert "Start request repeated too quickly" in log, log
        deadline = time.monotonic() + 20
        while box.exec("test", "-s", alerts, check=False).returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        prom = box.exec("cat", alerts).stdout
        count = re.search(r"^wix_printer_alerts_total (\S+)$", prom, re.M)
        assert count is not None, prom
        print(f"crash loop: failed for good after {state['NRestarts']} automatic restarts (start limit), "
              f"OnFailure alerts raised: {float(count.group(1)):.0f}")
        journal = box.exec("journalctl", "-u", "wix-printer-alert@wix-printer.service.service", "--no-pager").stdout
        assert "wix-printer alert: wix-printer.service failed" in journal
    finally:
        dropin(box, "90-test-crashloop.conf", None)
        box.exec("systemctl", "reset-failed", UNIT, check=False)
        box.exec("systemctl", "start", UNIT)
    wait_active(box)
