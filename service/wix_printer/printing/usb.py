"""USB printers, behind the same Connection as the network ones.

python-escpos 3.1 finds and claims the device (detaching usblp); we only borrow its
pyusb handle and do the I/O ourselves, with timeouts on both directions: its own write
has none by default, and a USB printer that stops reading would block forever. A pump
thread turns the IN endpoint into an asyncio stream, so status replies, ASB and process
ids are parsed by exactly the code that parses them from a network printer.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, Protocol

from ..config import PrinterConfig
from .connection import Connection, PrinterGone
from .status import Status


class UsbDevice(Protocol):
    def write(self, data: bytes) -> None:
        """Send all of `data`; raise OSError when the device is gone or stuck."""

    def read(self, size: int, timeout_ms: int) -> bytes:
        """Up to `size` bytes; b"" when nothing came within the timeout; OSError when gone."""

    def close(self) -> None: ...


class EscposUsbDevice:
    """A printer on the USB bus, found by vendor and product id."""

    def __init__(self, cfg: PrinterConfig) -> None:
        from escpos.exceptions import DeviceNotFoundError
        from escpos.printer import Usb

        self._timeout_ms = int(cfg.usb_write_timeout * 1000)
        # TM-T20II: same 48 columns / 576 dots as a TM-m30III, which 3.1's profiles lack.
        self._printer: Any = Usb(cfg.usb_vendor, cfg.usb_product, timeout=self._timeout_ms,
                                 in_ep=cfg.usb_in_ep, out_ep=cfg.usb_out_ep, profile="TM-T20II")
        try:
            self._printer.open()
        except DeviceNotFoundError as e:
            raise PrinterGone(f"USB printer {cfg.usb_vendor:04x}:{cfg.usb_product:04x} not found: {e}") from e
        self._dev = self._printer.device

    def write(self, data: bytes) -> None:
        import usb.core

        try:
            self._dev.write(self._printer.out_ep, data, self._timeout_ms)
        except usb.core.USBError as e:
            raise OSError(f"USB write failed: {e}") from e

    def read(self, size: int, timeout_ms: int) -> bytes:
        import usb.core

        try:
            return bytes(self._dev.read(self._printer.in_ep, size, timeout_ms))
        except usb.core.USBTimeoutError:
            return b""
        except usb.core.USBError as e:
            raise OSError(f"USB read failed: {e}") from e

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._printer.close()


class _DeviceWriter:
    """The writer half of a Connection: buffered writes go out on a thread, with a deadline."""

    def __init__(self, device: UsbDevice, stop: threading.Event, timeout: float) -> None:
        self._device = device
        self._stop = stop
        self._timeout = timeout
        self._buf = bytearray()

    def write(self, data: bytes) -> None:
        self._buf += data

    async def drain(self) -> None:
        data, self._buf = bytes(self._buf), bytearray()
        if not data:
            return
        try:
            await asyncio.wait_for(asyncio.to_thread(self._device.write, data), self._timeout + 1.0)
        except TimeoutError as e:
            raise OSError("USB printer did not take the data in time") from e

    def close(self) -> None:
        self._stop.set()

    async def wait_closed(self) -> None:
        await asyncio.to_thread(self._device.close)


async def open_usb(
    factory: Callable[[], UsbDevice], write_timeout: float, on_status: Callable[[Status], None] | None = None
) -> Connection:
    try:
        device = await asyncio.to_thread(factory)
    except OSError as e:
        raise PrinterGone(f"cannot open USB printer: {e}") from e
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            try:
                data = device.read(64, 200)
            except OSError:
                break
            if data:
                loop.call_soon_threadsafe(reader.feed_data, data)
        with contextlib.suppress(RuntimeError):  # the loop may be gone at shutdown
            loop.call_soon_threadsafe(reader.feed_eof)

    threading.Thread(target=pump, name="usb-reader", daemon=True).start()
    return Connection(reader, _DeviceWriter(device, stop, write_timeout), on_status)
