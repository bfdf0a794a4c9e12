"""README command 1: `wix-printer demo` prints the two sample orders (a delivery: kitchen,
driver, customer; a pickup: kitchen, customer) on the built-in
virtual printer with no Wix account, says where the receipts and the status page are,
stops cleanly, and starts empty again on the next run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import free_port, http, kind_of


def run_demo(tmp: Path, *extra: str) -> tuple[dict[str, object], list[str], str]:
    port, printer_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wix_printer", "demo", "--dir", str(tmp), "--port", str(port),
         "--printer-port", str(printer_port), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp.parent,
    )
    status: dict[str, object] = {}
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                code, body = http("GET", f"http://127.0.0.1:{port}/status", timeout=2)
            except OSError:
                code = 0
            if code == 200:
                status = json.loads(body)
                jobs = status["jobs"]
                assert isinstance(jobs, dict)
                if jobs["printed"] >= 5 and jobs["queued"] == 0 and jobs["sending"] == 0:
                    break
            assert proc.poll() is None, proc.communicate()[0].decode()
            time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out = proc.communicate(timeout=30)[0].decode()
    texts = [p.read_text(encoding="utf-8") for p in sorted((tmp / "paper").glob("*.txt"))]
    return status, texts, out


def test_demo_prints_the_sample_orders_and_says_where(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    status, texts, out = run_demo(demo)
    jobs = status["jobs"]
    assert isinstance(jobs, dict) and jobs["printed"] == 5, status
    assert sorted(kind_of(t) for t in texts) == ["customer", "customer", "driver", "kitchen", "kitchen"]
    assert f"receipts land in {demo / 'paper'}" in out and "/status" in out
    assert "Traceback" not in out, out[-3000:]
    assert (demo / "paper" / "0001.png").exists() and (demo / "paper" / "0001.bin").exists()

    # A second run starts from an empty queue and roll: the samples print again.
    status2, texts2, out2 = run_demo(demo)
    jobs2 = status2["jobs"]
    assert isinstance(jobs2, dict) and jobs2["printed"] == 5 and len(texts2) == 5, (status2, out2[-2000:])

    # --keep continues the previous one: nothing new to print.
    status3, texts3, _ = run_demo(demo, "--keep")
    jobs3 = status3["jobs"]
    assert isinstance(jobs3, dict) and jobs3["printed"] == 5 and len(texts3) == 5
