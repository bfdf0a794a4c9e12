"""Probe JSON -> a row; what needs attention; the table and the JSON; the remote commands."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from wix_fleet import remote
from wix_fleet.inventory import Target
from wix_fleet.report import (
    Level,
    as_json,
    fmt_age,
    fmt_bytes,
    mark_version_drift,
    parse_probe,
    table,
    unreachable,
    visible_len,
)

NOW = 1_800_000_000.0


def probe(**over: Any) -> dict[str, Any]:
    status = {
        "version": "1.0.0", "uptime_seconds": 100.0, "jobs": {"queued": 0, "sending": 0, "printed": 9, "failed": 0,
                                                              "uncertain": 0, "held": 0, "cancelled": 0},
        "queue_depth": 0, "oldest_queued_age_seconds": None, "last_event_at": NOW - 300, "last_printed_at": NOW - 90,
        "printer": {"state": "online", "since": NOW - 1000, "paper_near_end": False, "last_ok_at": NOW - 1,
                    "last_error": None},
        "wix": {"intake": "poll", "polling": True, "last_webhook_at": None, "last_catchup_at": NOW - 3,
                "last_catchup_error": None},
    }
    status.update(over.pop("status", {}))
    p = {"now": NOW, "release": "1.0.0", "uptime_s": 3 * 86400 + 7200, "service": "active", "status": status,
         "last_backup_at": NOW - 3600, "disk_free_bytes": 10 * 2**30, "disk_total_bytes": 30 * 2**30,
         "model": None}
    p.update(over)
    return p


def test_a_healthy_box() -> None:
    b = parse_probe("a", probe(), 0.4)
    assert b.level == Level.OK and b.attention == [] and b.cells == {}
    assert (b.version, b.queue_depth, b.printer_state, b.paper_low) == ("1.0.0", 0, "online", False)
    assert (b.last_print_age_s, b.last_wix_event_age_s, b.backup_age_s) == (90, 300, 3600)


def test_paper_out_is_bad_and_named() -> None:
    b = parse_probe("a", probe(status={"printer": {"state": "paper_out", "paper_near_end": True}}))
    assert b.level == Level.BAD and b.cells["printer"] == Level.BAD and b.cells["paper"] == Level.BAD
    assert b.attention == ["printer paper out"]
    low = parse_probe("a", probe(status={"printer": {"state": "paper_low", "paper_near_end": True}}))
    assert low.cells["paper"] == Level.WARN and low.attention == ["printer paper low"]


def test_a_stuck_queue() -> None:
    b = parse_probe("a", probe(status={"queue_depth": 4, "oldest_queued_age_seconds": 400}))
    assert b.cells["queue"] == Level.BAD and b.attention == ["4 queued, oldest 6m"]
    b = parse_probe("a", probe(status={"queue_depth": 1, "oldest_queued_age_seconds": 2}))
    assert b.cells["queue"] == Level.INFO and b.level == Level.INFO and b.attention == []


def test_service_down_but_the_box_answers() -> None:
    p = probe(service="failed", status_error="URLError: refused")
    del p["status"]
    b = parse_probe("a", p)
    assert b.level == Level.BAD and b.version is None and b.release == "1.0.0"
    assert b.attention == ["service failed", "/status not answering (URLError: refused)"]


@pytest.mark.parametrize(("over", "cell", "level"), [
    ({"last_backup_at": NOW - 30 * 3600}, "backup", Level.WARN),
    ({"last_backup_at": NOW - 60 * 3600}, "backup", Level.BAD),
    ({"last_backup_at": None}, "backup", Level.WARN),
    ({"last_backup_at": None, "uptime_s": 600}, "backup", Level.INFO),
    ({"disk_free_bytes": 2**30}, "disk", Level.BAD),
    ({"disk_free_bytes": 4 * 2**30}, "disk", Level.WARN),
    ({"temp_c": 83.0, "model": "Raspberry Pi 4 Model B Rev 1.5"}, "temp", Level.BAD),
    ({"temp_c": 72.0}, "temp", Level.WARN),
    ({"status": {"wix": {"polling": True, "last_catchup_at": NOW - 3600, "last_catchup_error": None}}},
     "wix", Level.WARN),
    ({"status": {"wix": {"polling": True, "last_catchup_at": NOW - 3, "last_catchup_error": "401"}}},
     "wix", Level.WARN),
    ({"status": {"jobs": {"failed": 2}}}, "queue", Level.WARN),
])
def test_attention_rules(over: dict[str, Any], cell: str, level: Level) -> None:
    assert parse_probe("a", probe(**over)).cells[cell] == level


def test_the_tunnel_column() -> None:
    """A box without a tunnel shows nothing; one whose ssh has held for a while is up; a
    young ssh is still connecting (autossh retries); a stopped unit needs a look."""
    plain = parse_probe("a", probe())
    assert plain.tunnel is None and "tunnel" not in plain.cells
    up = parse_probe("a", probe(tunnel={"active": "active", "ssh_age_s": 7300.0}))
    assert (up.tunnel, up.tunnel_age_s, up.level) == ("up", 7300.0, Level.OK)
    young = parse_probe("a", probe(tunnel={"active": "active", "ssh_age_s": 3.0}))
    assert young.tunnel == "connecting" and young.cells["tunnel"] == Level.INFO and young.attention == []
    no_ssh = parse_probe("a", probe(tunnel={"active": "active", "ssh_age_s": None}))
    assert no_ssh.tunnel == "connecting"
    down = parse_probe("a", probe(tunnel={"active": "failed", "ssh_age_s": None}))
    assert down.tunnel == "down" and down.cells["tunnel"] == Level.WARN
    assert down.attention == ["relay tunnel down: webhooks and the relay's SSH cannot reach the box"]
    lines = table([plain, up, down], colour=False).splitlines()
    col = lines[0].index("TUNNEL")
    assert [ln[col:].split()[0] for ln in lines[1:4]] == ["-", "up", "down"]
    assert "up 2h01m" in lines[2]
    assert json.loads(as_json([up]))["boxes"][0]["tunnel"] == "up"


def test_version_drift() -> None:
    bs = [parse_probe(n, probe(release=r)) for n, r in (("a", "1.0.0"), ("b", "1.0.0"), ("c", "0.9.0"))]
    bs.append(unreachable("d", "timed out"))
    mark_version_drift(bs)
    assert [b.cells.get("release") for b in bs] == [None, None, Level.WARN, None]
    assert bs[2].attention == ["release 0.9.0, most boxes run 1.0.0"]


def test_table_lists_every_box_and_colours_only_what_needs_attention() -> None:
    bs = [parse_probe("ok-box", probe(), 0.4),
          parse_probe("paper-box", probe(status={"printer": {"state": "paper_out"}}), 0.5),
          unreachable("gone-box", "Could not connect (timed out)", 2.0)]
    text = table(bs, colour=True)
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["BOX", "REACH", "RELEASE", "UPTIME"]
    ok_line = next(ln for ln in lines if ln.startswith("ok-box"))
    assert "\033[" not in ok_line and "online" in ok_line and "1m ago" in ok_line and "3d2h" in ok_line
    paper = next(ln for ln in lines if "paper-box" in ln and "[" in ln and "ok 0.5s" in ln)
    assert "\033[1;31mpaper out" in paper
    gone = next(ln for ln in lines if "gone-box" in ln and "UNREACHABLE" in ln)
    assert gone.startswith("\033[1;31m")
    assert "  paper-box: printer paper out" in text and "  gone-box: unreachable: Could not connect" in text
    assert lines[-1] == "3 boxes: 1 ok, 1 unreachable, 1 need attention"
    # columns line up whatever the colours
    plain = table(bs, colour=False).splitlines()
    assert "\033[" not in "\n".join(plain)
    starts = {ln.index("ok ") if "ok " in ln else ln.index("UNREACHABLE") for ln in plain[1:4]}
    assert len(starts) == 1
    assert visible_len(lines[1]) == len(plain[1])


def test_json_has_every_box() -> None:
    data = json.loads(as_json([parse_probe("a", probe()), unreachable("b", "refused")], gathered_in_s=1.2))
    assert data["gathered_in_s"] == 1.2
    assert [(b["name"], b["reachable"], b["level"]) for b in data["boxes"]] == [("a", True, "ok"),
                                                                                ("b", False, "bad")]
    assert data["boxes"][0]["disk_free_ratio"] == 0.333


def test_formatting() -> None:
    assert [fmt_age(s) for s in (None, 5, 125, 3 * 3600 + 300, 2 * 86400 + 5 * 3600)] == [
        "-", "5s", "2m", "3h05m", "2d5h"]
    assert [fmt_bytes(n) for n in (None, 512, 2048, 5 * 2**30)] == ["-", "512B", "2K", "5.0G"]


def test_rc_marker_and_since() -> None:
    assert remote.split_rc("line 1\nline 2\n\n__wix_fleet_rc=3\n") == ("line 1\nline 2", 3)
    assert remote.split_rc("no marker") == ("no marker", None)
    assert [remote.journal_since(s) for s in ("1h", "30min", "2d", "2024-05-01 10:00", "today")] == [
        "-1h", "-30min", "-2d", "2024-05-01 10:00", "today"]
    t = Target("b", "h", user="ops", paths={"printer_service_root": "/srv/w", "printer_service_config_dir": "/etc/w",
                                             "printer_service_user": "svc", "printer_service_unit": "w.service"})
    assert remote.test_print_command(t, 20).startswith(
        "runuser -u svc -- /srv/w/current/bin/wix-printer test-print --config /etc/w/config.toml --wait 20")


def test_the_status_probe_runs_on_a_bare_machine(tmp_path: Any) -> None:
    """The probe's Python on this machine (no service here): it still says what it can."""
    t = Target("b", "h", paths={"printer_service_root": str(tmp_path), "printer_service_config_dir": str(tmp_path),
                                "printer_service_user": "x", "printer_service_unit": "wix-fleet-test-none.service"})
    (tmp_path / "config.toml").write_text(f'[http]\nport = 9\n[store]\nbackup_dir = "{tmp_path}"\n'
                                          f'path = "{tmp_path}/q.db"\n')
    cmd = remote.status_command(t, http_timeout=0.5).replace(remote.PYTHON, sys.executable, 1)
    out = json.loads(subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=True).stdout)
    assert out["release"] is None and "status_error" in out and out["disk_free_bytes"] > 0
    assert out["last_backup_at"] is not None  # config.toml itself is the newest file in backup_dir
    assert "tunnel" not in out  # no wix-tunnel.service enabled here
    b = parse_probe("b", out)
    assert b.level == Level.BAD and b.version is None
