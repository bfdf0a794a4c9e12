from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from wix_appliance import healthcheck, textfile

STATUS = {"version": "1.1.0", "jobs": {"queued": 2, "printed": 5}, "queue_depth": 2,
          "oldest_queued_age_seconds": 3.5, "orders": {"total": 7}}


def args(tmp_path: Path, alert_after: int = 3) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    healthcheck.add_arguments(ap)
    return ap.parse_args(["--textfile", str(tmp_path / "m" / "wix.prom"), "--state-file", str(tmp_path / "fail"),
                          "--backup-dir", str(tmp_path / "b"), "--alert-after", str(alert_after)])


def fetch_ok(url: str, timeout: float) -> tuple[int, bytes]:
    return (200, b'{"ok": true}') if url.endswith("/health") else (200, json.dumps(STATUS).encode())


def fetch_503(url: str, timeout: float) -> tuple[int, bytes]:
    return (503, b'{"reasons": ["worker stopped"]}') if url.endswith("/health") else (200, json.dumps(STATUS).encode())


def fetch_down(url: str, timeout: float) -> tuple[int, bytes]:
    raise ConnectionRefusedError("refused")


def test_healthy_writes_metrics(tmp_path: Path) -> None:
    assert healthcheck.run(args(tmp_path), fetch_ok, clock=lambda: 1000.0) == 0
    text = (tmp_path / "m" / "wix.prom").read_text()
    assert "wix_printer_up 1\n" in text
    assert 'wix_printer_info{version="1.1.0"} 1' in text
    assert 'wix_printer_jobs{state="queued"} 2' in text
    assert 'wix_printer_jobs{state="failed"} 0' in text
    assert "wix_printer_orders_total 7" in text
    assert "wix_printer_healthcheck_timestamp_seconds 1000" in text
    assert text.count("# TYPE wix_printer_jobs gauge") == 1


def test_alerts_only_after_consecutive_failures(tmp_path: Path) -> None:
    a = args(tmp_path, alert_after=3)
    assert [healthcheck.run(a, fetch_503) for _ in range(4)] == [0, 0, 1, 1]
    assert "wix_printer_healthcheck_consecutive_failures 4" in (tmp_path / "m" / "wix.prom").read_text()
    assert healthcheck.run(a, fetch_ok) == 0  # recovery resets the count
    assert (tmp_path / "fail").read_text().strip() == "0"


def test_service_down_is_up_zero(tmp_path: Path) -> None:
    assert healthcheck.run(args(tmp_path, alert_after=1), fetch_down) == 1
    text = (tmp_path / "m" / "wix.prom").read_text()
    assert "wix_printer_up 0" in text
    assert "wix_printer_health_http_status 0" in text


def test_backup_age_metric(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    f = tmp_path / "b" / "queue-20260101T000000Z.db"
    f.write_bytes(b"")
    os.utime(f, (1234.0, 1234.0))
    healthcheck.run(args(tmp_path), fetch_ok)
    assert "wix_printer_backup_last_timestamp_seconds 1234" in (tmp_path / "m" / "wix.prom").read_text()


def test_write_atomic_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "x.prom"
    textfile.write_atomic(target, "a 1\n")
    textfile.write_atomic(target, "a 2\n")
    assert target.read_text() == "a 2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.prom"]
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_label_values_are_escaped() -> None:
    out = textfile.render([("m", {"v": 'a"b\\c\nd'}, 1.0)])
    assert 'm{v="a\\"b\\\\c\\nd"} 1' in out
