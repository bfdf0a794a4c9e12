"""Test helpers: sample orders, loopback HTTP, a real `wix-printer serve` process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

from wix_printer.fakewix.signing import WebhookSigner

ROOT = Path(__file__).resolve().parent.parent


def sample(name: str = "delivery-berlin") -> dict[str, Any]:
    text = resources.files("wix_printer").joinpath("samples", f"{name}.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def kind_of(text: str) -> str:
    """Which receipt a printed text is: the customer receipt has the total, the driver
    slip the navigation QR, the kitchen ticket neither."""
    if "GESAMT" in text:
        return "customer"
    if "[QR:" in text or "Navigation" in text:
        return "driver"
    return "kitchen"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http(method: str, url: str, body: bytes | None = None, timeout: float = 5.0,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()


def write_config(d: Path, text: str, name: str = "config.toml") -> Path:
    p = d / name
    p.write_text(text, encoding="utf-8")
    return p


class Service:
    """`wix-printer serve` as a real process on a free loopback port."""

    def __init__(self, tmp: Path, *, signer: WebhookSigner, printer_port: int | None = None,
                 extra: str = "", printer: str | None = None, wix: str = "", http: str = "") -> None:
        self.tmp = tmp
        self.port = free_port()
        self.db = tmp / "queue.db"
        pem = tmp / "wix.pub.pem"
        pem.write_text(signer.public_key_pem())
        printer_section = printer or (
            f'kind = "network"\nhost = "127.0.0.1"\nport = {printer_port or free_port()}\n'
            "connect_timeout = 0.5\nconfirm_timeout = 5.0\nlate_confirm_wait = 0.3\n"
        )
        self.config = write_config(tmp, f"""
[http]
host = "127.0.0.1"
port = {self.port}
{http}
[store]
path = "{self.db}"
backup_dir = "{tmp / 'backups'}"
[wix]
public_key = "{pem}"
instance_id = "site-1"
{wix}
[printer]
{printer_section}
[restaurant]
name = "Testküche"
timezone = "Europe/Berlin"
{extra}
""")
        self.log = tmp / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Service:
        if getattr(self, "_fh", None) is not None:
            self._fh.close()
        self._fh = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wix_printer", "serve", "--config", str(self.config)],
            stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                code, _ = http("GET", f"{self.url}/status", timeout=1)
                if code == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"service did not come up: {self.log.read_text()[-2000:]}")

    def post(self, token: str | bytes) -> tuple[int, dict[str, Any]]:
        body = token.encode() if isinstance(token, str) else token
        code, raw = http("POST", f"{self.url}/webhooks/wix", body)
        return code, json.loads(raw) if raw else {}

    def status(self) -> dict[str, Any]:
        code, raw = http("GET", f"{self.url}/status")
        # The service's own log says why a 500 happened; the body never does.
        assert code == 200, (raw[-500:], self.log.read_text(errors="replace")[-4000:])
        data: dict[str, Any] = json.loads(raw)
        return data

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        if hasattr(self, "_fh"):
            self._fh.close()


