"""`python -m wix_printer.devprinter` as a real process: files, log lines, control, SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from wix_printer.devprinter.wire import CUT, ESC_INIT, LOOPBACK, id_reply, process_id

LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+), control http://127\.0\.0\.1:(\d+)")


class DevPrinterProcess:
    def __init__(self, out: Path, *flags: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wix_printer.devprinter",
                "--host",
                LOOPBACK,
                "--port",
                "0",
                "--control-port",
                "0",
                "--out",
                str(out),
                *flags,
            ],
            stderr=subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        self.startup = self.proc.stderr.readline()
        match = LISTENING.search(self.startup)
        assert match, self.startup
        self.port, self.control_port = int(match.group(1)), int(match.group(2))

    def stop(self) -> tuple[int, bytes]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, err


@pytest.fixture
def devprinter(tmp_path: Path) -> Iterator[DevPrinterProcess]:
    proc = DevPrinterProcess(tmp_path / "out", "--paper-near-end")
    yield proc
    if proc.proc.poll() is None:
        proc.stop()


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("printer closed the connection")
        data += chunk
    return data


def test_cli_prints_files_and_stops_cleanly(devprinter: DevPrinterProcess, tmp_path: Path) -> None:
    out = tmp_path / "out"
    receipt = (
        ESC_INIT
        + b"\x1bt\x13\x1ba\x01\x1d!\x11K\x9aCHE\n\x1d!\x00\x1ba\x00Gr\x81\xe1e 9,90 \xd5\n"
        + b"\x1d(k\x03\x001C\x06\x1d(k\x0a\x001P0geo:1,2\x1d(k\x03\x001Q0"
        + CUT
    )
    with socket.create_connection((LOOPBACK, devprinter.port), timeout=5) as sock:
        sock.sendall(b"\x10\x04\x04")
        assert recv_exactly(sock, 1) == b"\x1e"  # started with --paper-near-end
        sock.sendall(receipt + process_id(b"L001"))
        assert recv_exactly(sock, 7) == id_reply(b"L001")

    assert (out / "0001.bin").read_bytes() == receipt
    assert (out / "0001.txt").read_text(encoding="utf-8") == "KÜCHE\nGrüße 9,90 €\n[QR: geo:1,2]\n"
    with Image.open(out / "0001.png") as png:
        assert png.width == 576

    url = f"http://{LOOPBACK}:{devprinter.control_port}/state"
    with urllib.request.urlopen(url, timeout=5) as response:
        state = json.load(response)
    assert state["jobs_printed"] == 1
    assert state["faults"]["paper-near-end"] is True

    code, err = devprinter.stop()
    assert code == 0
    assert b"printed 0001.txt (" + str(len(receipt)).encode() + b" bytes)" in err


def test_cli_numbering_continues_after_restart(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for expected in ("0001", "0002"):
        proc = DevPrinterProcess(out)
        try:
            with socket.create_connection((LOOPBACK, proc.port), timeout=5) as sock:
                sock.sendall(ESC_INIT + b"x\n" + CUT + process_id(b"M001"))
                assert recv_exactly(sock, 7) == id_reply(b"M001")
        finally:
            code, err = proc.stop()
        assert code == 0
        assert f"printed {expected}.txt".encode() in err
    assert sorted(p.name for p in out.glob("*.txt")) == ["0001.txt", "0002.txt"]
