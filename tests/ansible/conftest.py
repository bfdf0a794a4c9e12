from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ansible import boxes


@pytest.fixture(scope="session")
def box_image() -> str:
    why = boxes.missing_tools()
    if why:
        pytest.skip(why)
    img = boxes.image()
    boxes.ensure_network()
    return img


@pytest.fixture(scope="session")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three releases built from this checkout: N, N+1 (one more expand-only migration)
    and a broken N+2 (migrates, then its service never comes up)."""
    base = tmp_path_factory.mktemp("releases")
    return {
        "n": boxes.project_variant(base / "n", "1.0.0"),
        "next": boxes.project_variant(base / "next", "1.1.0", migration=True),
        "broken": boxes.project_variant(base / "broken", "1.2.0", migration=True, broken=True),
    }


@pytest.fixture(scope="module")
def fleet(box_image: str) -> Iterator[list[boxes.Box]]:
    started = [boxes.start(box_image, name, ip) for name, ip in boxes.HOSTS.items()]
    yield started
    for b in started:
        boxes.stop(b.name)
