"""Session fixtures for the fleet tests: the box image, the release archives (built once
per session, cached by a hash of the sources) and one converged box that the tests share
in a fixed order (test_fleet.py, then test_watchdog.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.ansible import boxes

# Orders come from a fake Wix inside each box (the service's catch-up search). Every run
# passes the same values so config.toml does not change between runs.
WIX = {
    "printer_service_wix_base_url": "http://127.0.0.1:9200",
    "printer_service_wix_api_key": "test-api-key",
    "printer_service_wix_site_id": "test-site",
    "printer_service_wix_poll_interval": 2,
    # fakewix --generate N dates its orders up to 2N minutes back
    "printer_service_wix_catchup_margin": 3600,
}


@pytest.fixture(scope="session")
def box_image() -> str:
    why = boxes.missing_tools()
    if why:
        pytest.skip(why)
    img = boxes.image()
    boxes.ensure_network()
    return img


@pytest.fixture(scope="session")
def releases(box_image: str, tmp_path_factory: pytest.TempPathFactory) -> boxes.Releases:
    rel = boxes.build_releases(tmp_path_factory.mktemp("releases"))
    print(f"release archives ready in {rel.build_seconds:.1f} s")
    return rel


@pytest.fixture(scope="session")
def box(box_image: str, releases: boxes.Releases) -> Iterator[boxes.Box]:
    """wix-test-1, converged with site.yml on release N."""
    name = "wix-test-1"
    b = boxes.start(box_image, name, boxes.HOSTS[name])
    t0 = time.monotonic()
    res, secs = boxes.playbook("site.yml", limit=name, release=releases, version=releases.versions["n"], extra=WIX)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]
    b.converge_seconds = secs
    print(f"site.yml, one fresh box, release N: {secs:.1f} s (boot + converge {time.monotonic() - t0:.1f} s)")
    yield b
    if not os.environ.get("WIX_KEEP_BOXES"):  # keep it for a look: WIX_KEEP_BOXES=1
        boxes.stop(name)
