from __future__ import annotations

import os

import pytest

from tests.image import vm


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rpi: builds and boots the rpi-arm64 image under emulation (about an hour; "
                                       "WIX_TEST_RPI=1 to run)")


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
