"""The same end-to-end print, against the independent emulator emupos (not our code)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, Service, free_port, sample
from wix_printer.fakewix.signing import WebhookSigner

EMUPOS = Path(os.environ.get("EMUPOS", ROOT / ".venv-emupos" / "bin" / "emupos"))
WANT = ["10234", "Döner Teller", "ohne Zwiebeln", "Extra Feta", "Pizza Margherita", "Größe", "Club-Mate",
        "Chiliöl", "Simon-Dach-Straße", "Hinterhaus", "Müller-Lüdenscheidt", "+49 30 12345678", "Besteck",
        "41,65", "€"]

pytestmark = [
    pytest.mark.emupos,
    pytest.mark.skipif(not EMUPOS.exists(), reason="emupos not installed (./dev setup needs a Python >= 3.13)"),
]


class Emupos:
    def __init__(self, d: Path) -> None:
        self.dir = d
        self.port, self.api = free_port(), free_port()
        self.receipts = d / "emupos-receipts"
        (d / "emupos.yaml").write_text(f"""schema: 1
api: {{ host: 127.0.0.1, port: {self.api} }}
devices:
  - id: front
    type: printer
    profile: epson-tm-t20iii
    connections:
      - tcp: {{ port: {self.port} }}
    receipts_dir: {self.receipts}
""")
        self.log = (d / "emupos.log").open("wb")
        self.proc = subprocess.Popen([str(EMUPOS), "run"], cwd=d, stdout=self.log, stderr=subprocess.STDOUT)
        import socket

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("emupos did not start: " + (d / "emupos.log").read_text()[-500:])

    def fault(self, action: str, name: str) -> None:
        subprocess.run([str(EMUPOS), "--api", f"http://127.0.0.1:{self.api}", "fault", action, "front", name],
                       check=True, capture_output=True, timeout=30)

    def texts(self) -> list[str]:
        return [p.read_text(encoding="utf-8") for p in sorted(self.receipts.glob("**/*.txt"))]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture
def emupos(tmp_path: Path) -> Any:
    e = Emupos(tmp_path)
    yield e
    e.stop()


def wait_texts(e: Emupos, n: int, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        texts = e.texts()
        if len(texts) >= n:
            return texts
        time.sleep(0.2)
    return e.texts()


def start_service(tmp_path: Path, signer: WebhookSigner, port: int) -> Service:
    # emupos never answers GS ( H, so the job is confirmed by GS r plus a clean DLE EOT.
    return Service(tmp_path, signer=signer, printer=(
        f'kind = "network"\nhost = "127.0.0.1"\nport = {port}\nconfirm = "status"\n'
        "connect_timeout = 1.0\nstatus_timeout = 2.0\nconfirm_timeout = 10.0\n")).start()


def test_sample_order_on_emupos(tmp_path: Path, emupos: Emupos, signer: WebhookSigner) -> None:
    svc = start_service(tmp_path, signer, emupos.port)
    try:
        code, _ = svc.post(signer.sign_webhook(sample(), "approved", "object", "site-1", 1, None, 600, "RS256"))
        assert code == 200
        texts = wait_texts(emupos, 3)
        assert len(texts) == 3, texts
        joined = "\n".join(texts)
        assert [w for w in WANT if w not in joined] == []
        assert "\ufffd" not in joined
        deadline = time.monotonic() + 15
        while svc.status()["jobs"]["printed"] < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert svc.status()["jobs"]["printed"] == 3
    finally:
        svc.stop()


def test_paper_out_on_emupos_holds_then_prints_once(tmp_path: Path, emupos: Emupos, signer: WebhookSigner) -> None:
    emupos.fault("set", "paper-out")
    svc = start_service(tmp_path, signer, emupos.port)
    try:
        code, _ = svc.post(signer.sign_webhook(sample(), "approved", "object", "site-1", 1, None, 600, "RS256"))
        assert code == 200
        deadline = time.monotonic() + 10
        while svc.status()["printer"]["state"] != "paper_out" and time.monotonic() < deadline:
            time.sleep(0.2)
        st = svc.status()
        assert st["printer"]["state"] == "paper_out"
        assert st["jobs"]["queued"] == 3  # nothing sent to a printer without paper
        emupos.fault("clear", "paper-out")
        texts = wait_texts(emupos, 3)
        time.sleep(1.0)
        assert len(emupos.texts()) == 3
        assert all("NACHDRUCK" not in t for t in texts)
    finally:
        svc.stop()

