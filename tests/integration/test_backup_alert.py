"""A failing backup (run by its timer, apart from the service) queues a mail for the owner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import write_config
from wix_printer.store import Store
from wix_printer.store.outbox import list_rows


async def test_failing_backup_queues_an_alert_and_a_working_one_resolves_it(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    store = Store(db)
    await store.open()
    await store.close()
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the backup folder should be")
    cfg = write_config(tmp_path, f"""
[store]
path = "{db}"
backup_dir = "{blocked}"
[mail]
enabled = true
host = "127.0.0.1"
port = 2525
security = "none"
sender = "box@example.org"
recipients = ["owner@example.org"]
[restaurant]
name = "Imbiss am Boxi"
""")
    r = subprocess.run([sys.executable, "-m", "wix_printer", "backup", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "backup" in r.stderr and "failed" in r.stderr
    store = Store(db)
    await store.open()
    try:
        rows = await list_rows(store)
        assert [row.kind for row in rows] == ["backup_failing"]
        assert rows[0].state == "pending"
    finally:
        await store.close()
    r = subprocess.run([sys.executable, "-m", "wix_printer", "backup", "--config", str(cfg), str(tmp_path / "ok")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
