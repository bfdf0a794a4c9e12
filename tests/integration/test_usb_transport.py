"""The USB transport's plumbing (pump thread, timed writes, the shared Connection) against
the real virtual printer: a stand-in device forwards the bytes a USB printer would get
over a loopback socket. Only pyusb's own calls are not exercised (no USB bus here)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import msgspec

from tests.helpers import sample
from wix_printer.config import Config, PrinterConfig, StoreConfig
from wix_printer.devprinter import VirtualPrinter
from wix_printer.intake import Intake
from wix_printer.printing.render import diff_for_intake, make_renderer
from wix_printer.printing.worker import PrintWorker
from wix_printer.store import Store


class SocketDevice:
    """Behaves like a USB printer handle: blocking write, read with a timeout, OSError when gone."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=2)

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, size: int, timeout_ms: int) -> bytes:
        self.sock.settimeout(timeout_ms / 1000)
        try:
            data = self.sock.recv(size)
        except TimeoutError:
            return b""
        if not data:
            raise OSError("device gone")
        return data

    def close(self) -> None:
        self.sock.close()


async def test_usb_worker_prints_and_confirms(tmp_path: Path) -> None:
    async with VirtualPrinter(tmp_path / "paper", render_png=False) as vp:
        printer = PrinterConfig(kind="usb", usb_write_timeout=2.0, confirm_timeout=5.0)
        config = msgspec.structs.replace(Config(), printer=printer)
        store = Store(tmp_path / "q.db")
        await store.open()
        devices: list[SocketDevice] = []

        def factory() -> SocketDevice:
            devices.append(SocketDevice(vp.port))
            return devices[-1]

        worker = PrintWorker(store, printer, StoreConfig(), make_renderer(config), usb_device=factory)
        task = asyncio.create_task(worker.run())
        try:
            intake = Intake(store, config, diff_for_intake(config))
            await intake.ingest(sample(), event_id="e1", event_type="wix.ecom.v1.order_approved",
                                order_id=sample()["id"], sequence=1, source="webhook")
            worker.wake()
            jobs = await vp.wait_for_jobs(3, timeout=15)
            assert "Döner Teller" in jobs[0].text
            for _ in range(50):
                if (await store.counts())["jobs"]["printed"] == 3:
                    break
                await asyncio.sleep(0.1)
            assert (await store.counts())["jobs"]["printed"] == 3
            assert worker.monitor.state == "online"
            # Unplugged: the pump sees the device vanish and the worker reconnects.
            devices[-1].close()
            await asyncio.sleep(1.5)
            assert len(devices) >= 2
        finally:
            await worker.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await store.close()
