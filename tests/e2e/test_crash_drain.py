"""kill -9 at 100 random moments while a backlog drains: every order prints, and a
receipt that comes out twice is marked as a possible duplicate."""

from __future__ import annotations

import asyncio
import random
import re
import signal
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import Service, kind_of, sample
from wix_printer.devprinter import VirtualPrinter
from wix_printer.fakewix.signing import WebhookSigner


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_kill9_during_drain(tmp_path: Path, signer: WebhookSigner) -> None:
    rng = random.Random(100)
    n_orders = 40
    async with VirtualPrinter(tmp_path / "paper", render_png=False) as vp:
        # A slow printer keeps the drain going across many kills.
        vp.set_fault("slow", 0.2)
        svc = Service(tmp_path, signer=signer, printer=(
            f'kind = "network"\nhost = "127.0.0.1"\nport = {vp.port}\nconnect_timeout = 0.5\n'
            "status_timeout = 0.5\nconfirm_timeout = 5.0\nlate_confirm_wait = 0.3\n"),
            extra="[recovery]\nmax_print_attempts = 50\n")
        await asyncio.to_thread(svc.start)
        for i in range(n_orders):
            o = dict(sample(), id=f"kd-{i:03d}", number=str(80000 + i))
            code, _ = await asyncio.to_thread(svc.post, signer.sign_webhook(o, "approved", "object", "site-1", 1,
                                                                             None, 600, "RS256"))
            assert code == 200
        try:
            for _ in range(100):
                await asyncio.sleep(rng.uniform(0.0, 0.6))
                await asyncio.to_thread(svc.kill, signal.SIGKILL)
                await asyncio.to_thread(svc.start)
            vp.clear_fault("slow")
            deadline = asyncio.get_running_loop().time() + 120
            while asyncio.get_running_loop().time() < deadline:
                st = await asyncio.to_thread(svc.status)
                if st["jobs"]["printed"] == 3 * n_orders and st["jobs"]["queued"] + st["jobs"]["uncertain"] == 0:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)
        finally:
            await asyncio.to_thread(svc.stop)
    with sqlite3.connect(svc.db) as c:
        states = dict(c.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
    assert states == {"printed": 3 * n_orders}, states
    seen: Counter[tuple[str, str]] = Counter()
    unmarked: Counter[tuple[str, str]] = Counter()
    for job in vp.jobs:
        if "Druck unterbrochen" in job.text:
            continue  # the cut-off rest of an interrupted job
        numbers = set(re.findall(r"#(8\d{4})", job.text))
        assert len(numbers) == 1, job.text[:300]
        key = (numbers.pop(), kind_of(job.text))
        seen[key] += 1
        unmarked[key] += "NACHDRUCK" not in job.text
    assert len(seen) == 3 * n_orders
    # At most one unmarked copy of each receipt: every further copy says it may be a duplicate.
    assert max(unmarked.values()) <= 1, [k for k, v in unmarked.items() if v > 1]
