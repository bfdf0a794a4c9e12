"""Raw ESC/POS bytes and a raw TCP client for talking to a printer in tests and demos.

No ESC/POS library on purpose: tests must see exactly which bytes go over the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

LOOPBACK = "127.0.0.1"

ESC_INIT = b"\x1b@"
CUT = b"\x1dVB\x00"
CLEAR = b"\x10\x14\x08\x01\x03\x14\x01\x06\x02\x08"


def dle_eot(n: int) -> bytes:
    return bytes([0x10, 0x04, n])


def process_id(ident: bytes) -> bytes:
    assert len(ident) == 4
    return b"\x1d(H\x06\x0000" + ident


def id_reply(ident: bytes) -> bytes:
    return b"\x37\x22" + ident + b"\x00"


def job(text: str, *, page: int = 16, codec: str = "cp1252") -> bytes:
    return ESC_INIT + bytes([0x1B, 0x74, page]) + text.encode(codec) + b"\n" + CUT


class RawClient:
    """One raw TCP session to the printer; every byte sent and read is explicit."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self, n: int, timeout: float = 2.0) -> bytes:
        async with asyncio.timeout(timeout):
            return await self.reader.readexactly(n)

    async def query(self, n: int) -> int:
        await self.send(dle_eot(n))
        return (await self.recv(1))[0]

    async def expect_silence(self, seconds: float = 0.3) -> None:
        try:
            async with asyncio.timeout(seconds):
                data = await self.reader.read(100)
        except TimeoutError:
            return
        raise AssertionError(f"expected no reply, got {data!r}")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
