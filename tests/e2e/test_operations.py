"""Operator actions through the real queue and the real worker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Service, sample
from wix_printer import operations
from wix_printer.devprinter import VirtualPrinter
from wix_printer.fakewix.signing import WebhookSigner
from wix_printer.store import Store


async def test_test_print_cli_waits_for_the_printer(tmp_path: Path, service_factory: Any) -> None:
    async with VirtualPrinter(tmp_path / "paper") as vp:
        svc: Service = await asyncio.to_thread(service_factory, printer_port=vp.port)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wix_printer", "test-print", "--config", str(svc.config), "--wait", "20",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, (out, err)
        assert b"printed" in out
        jobs = await vp.wait_for_jobs(1, timeout=5)
        assert "TESTDRUCK" in jobs[0].text and "ÄÖÜ äöü ß € Ø" in jobs[0].text


async def test_test_print_cli_fails_without_printer(tmp_path: Path, service_factory: Any) -> None:
    svc: Service = await asyncio.to_thread(service_factory)  # nothing listens on its printer port
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wix_printer", "test-print", "--config", str(svc.config), "--wait", "2",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 1
    assert b"queued" in out or b"sending" in out


async def test_reprint_marks_copy_and_refusals(tmp_path: Path, service_factory: Any, signer: WebhookSigner) -> None:
    async with VirtualPrinter(tmp_path / "paper") as vp:
        svc: Service = await asyncio.to_thread(service_factory, printer_port=vp.port)
        order = sample()
        await asyncio.to_thread(svc.post, signer.sign_webhook(order, "approved", "object", "site-1", 1, None, 600,
                                                              "RS256"))
        await vp.wait_for_jobs(3, timeout=20)
        store = Store(svc.db)
        await store.open(migrate=False)
        try:
            created = await operations.reprint(store, order["id"], ["kitchen"], "KOPIE")
            assert len(created.job_ids) == 1
            with pytest.raises(operations.OperationError) as e:
                await operations.reprint(store, "nope", None, "KOPIE")
            assert e.value.status == 404
            with pytest.raises(operations.OperationError) as e:
                await operations.reprint(store, order["id"], ["receipt"], "KOPIE")
            assert e.value.status == 422
            with pytest.raises(operations.OperationError) as e:
                await operations.retry(store, created.job_ids[0])
            assert e.value.status == 409
            with pytest.raises(operations.OperationError) as e:
                await operations.dismiss(store, 99999)
            assert e.value.status == 404
        finally:
            await store.close()
        jobs = await vp.wait_for_jobs(4, timeout=10)
        assert "KOPIE" in jobs[3].text and "#10234" in jobs[3].text
