from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.helpers import free_port
from tests.image import vm

WIX_PRINTER = vm.ROOT / ".venv" / "bin" / "wix-printer"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rpi: builds and boots the rpi-arm64 image under emulation (build 36 min, "
                                       "boot 5 min here; WIX_TEST_RPI=1 to run)")
    config.addinivalue_line("markers", "repro: builds the pc-amd64 image again from a clean worktree of HEAD and "
                                       "compares the bytes (3-6 min)")


@pytest.fixture(scope="session")
def pc_image() -> vm.Built:
    """The pc-amd64 image of this checkout, built once per input hash (var/images/pc-amd64)."""
    why = vm.missing_tools("pc-amd64")
    if why:
        pytest.skip(why)
    return vm.build("pc-amd64")


@pytest.fixture(scope="session")
def rpi_image() -> vm.Built:
    if os.environ.get("WIX_TEST_RPI") != "1":
        pytest.skip("the rpi-arm64 image takes long under emulation: WIX_TEST_RPI=1 pytest -m rpi tests/image")
    why = vm.missing_tools("rpi-arm64")
    if why:
        pytest.skip(why)
    return vm.build("rpi-arm64")


@pytest.fixture(scope="module")
def host_peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """The virtual printer and the fake Wix on the host's loopback."""
    tmp_path = tmp_path_factory.mktemp("peers")
    printer_port, wix_port = free_port(), free_port()
    paper = tmp_path / "paper"
    keys = tmp_path / "wixkeys"
    procs = [
        subprocess.Popen([str(WIX_PRINTER), "devprinter", "--host", "127.0.0.1", "--port", str(printer_port),
                          "--out", str(paper)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([str(WIX_PRINTER), "fakewix", "--port", str(wix_port), "--key-out", str(keys),
                          "--api-key", "test-api-key", "--site-id", "site-1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    deadline = time.monotonic() + 30
    while not (keys / "wix.pub.pem").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        yield {"printer_port": printer_port, "wix_port": wix_port, "paper": paper, "keys": keys}
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
