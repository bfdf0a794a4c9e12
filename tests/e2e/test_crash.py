"""kill -9 at random moments while clients post orders: every order that was answered
200 is in the store afterwards, and the database stays intact."""

from __future__ import annotations

import http.client
import random
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import Service, sample
from wix_printer.fakewix.signing import WebhookSigner


@pytest.mark.slow
def test_kill9_loses_no_acknowledged_order(tmp_path: Path, signer: WebhookSigner) -> None:
    rng = random.Random(2026)
    base = sample()
    tokens = []
    for i in range(3000):
        o = dict(base, id=f"crash-{i:05d}", number=str(70000 + i))
        tokens.append((o["id"], signer.sign_webhook(o, "approved", "object", "site-1", 1, None, 3600, "RS256")))
    svc = Service(tmp_path, signer=signer)
    acked: set[str] = set()
    lock = threading.Lock()
    nxt = iter(tokens)
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            with lock:
                item = next(nxt, None)
            if item is None:
                return
            order_id, token = item
            # Like Wix: resend until acknowledged (or the test ends).
            while not stop.is_set():
                try:
                    code, _ = svc.post(token)
                except (OSError, ValueError, http.client.HTTPException):
                    time.sleep(0.02)  # down or cut mid-answer: not acknowledged
                    continue
                if code == 200:
                    with lock:
                        acked.add(order_id)
                    break

    kills = 0
    svc.start()
    workers = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        while kills < 50:
            time.sleep(rng.uniform(0.02, 0.4))
            svc.kill(signal.SIGKILL)
            kills += 1
            svc.start()
    finally:
        stop.set()
        for w in workers:
            w.join(10)
        svc.stop()
    assert len(acked) > 100, "the clients barely got through; the test proved little"
    with sqlite3.connect(svc.db) as c:
        stored = {r[0] for r in c.execute("SELECT id FROM orders")}
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        per_order = c.execute("SELECT order_id, COUNT(*) FROM jobs GROUP BY order_id HAVING COUNT(*) != 3").fetchall()
    missing = acked - stored
    assert not missing, f"{len(missing)} acknowledged orders lost, e.g. {sorted(missing)[:5]}"
    assert per_order == [], "an order has other than its three receipts"
