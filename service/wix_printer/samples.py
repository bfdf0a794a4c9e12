"""The embedded sample orders that the demo feeds through the real intake path."""

from __future__ import annotations

import json
import logging
from importlib import resources
from typing import Any

from .services import Services

log = logging.getLogger(__name__)


def sample_orders() -> dict[str, dict[str, Any]]:
    out = {}
    for entry in sorted(resources.files("wix_printer").joinpath("samples").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            out[entry.name.removesuffix(".json")] = json.loads(entry.read_text(encoding="utf-8"))
    return out


async def ingest_samples(services: Services) -> int:
    created = 0
    for name, raw in sample_orders().items():
        result = await services.intake.ingest(
            raw, event_id=f"sample:{raw['id']}", event_type="sample", order_id=raw["id"], sequence=None,
            source="sample",
        )
        created += result.jobs_created
        log.info("sample order %s (#%s): %s", name, raw.get("number"), result.outcome)
    if created:
        services.worker_wake()
    return created
