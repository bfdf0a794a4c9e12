"""The catch-up search: finds what webhooks missed (outages longer than Wix's 47 h of
retries, a box without a public URL, lost deliveries) and feeds it through intake.

Runs at start-up, every `poll_interval`, and at once when `trigger()` is called (the
internet monitor does when connectivity to Wix returns).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .services import Services

if TYPE_CHECKING:
    from .wix.search import WixSearchClient

log = logging.getLogger(__name__)

LAST_SYNC_KEY = "wix_last_sync"


class Catchup:
    def __init__(self, services: Services, client: WixSearchClient) -> None:
        self.services = services
        self.client = client
        self.cfg = services.config.wix
        self._trigger = asyncio.Event()
        self.last_run_at: float | None = None
        self.last_found = 0
        self.last_error: str | None = None
        self.runs = 0

    def trigger(self) -> None:
        self._trigger.set()

    def as_dict(self) -> dict[str, Any]:
        return {"intake": self.cfg.intake, "poll_interval": self.cfg.effective_poll_interval,
                "last_catchup_at": self.last_run_at, "last_catchup_found": self.last_found,
                "last_catchup_error": self.last_error, "link": self.client.state.to_dict()}

    async def _since(self, started: datetime) -> datetime:
        raw = await self.services.store.get_sync(LAST_SYNC_KEY)
        last = datetime.fromisoformat(raw) if raw else started
        # From the last sync minus a margin, so late approvals and cancellations whose
        # updatedDate lies just before our last look are still seen.
        return last - timedelta(seconds=self.cfg.catchup_margin)

    async def sync_once(self) -> int:
        """One search pass; returns how many orders it fed to intake (new or not)."""
        started = datetime.now(UTC)
        since = await self._since(started)
        seen = 0
        woke = False
        async for page in self.client.search_orders(since):
            for raw in page:
                if not isinstance(raw, dict) or not isinstance(raw.get("id") or raw.get("_id"), str):
                    continue
                order_id = str(raw.get("id") or raw.get("_id"))
                # One event per distinct state: the same state found again dedupes.
                key = f"search:{order_id}:{raw.get('updatedDate') or raw.get('_updatedDate')}:{raw.get('status')}"
                result = await self.services.intake.ingest(
                    raw, event_id=key, event_type="search", order_id=order_id, sequence=None, source="search",
                )
                seen += 1
                if result.jobs_created and not woke:
                    self.services.worker_wake()
                    woke = True
        await self.services.store.write(lambda tx: tx.set_sync(LAST_SYNC_KEY, started.isoformat()))
        return seen

    async def run(self) -> None:
        from .wix.search import WixAuthError, WixError

        failing = False
        while True:
            self._trigger.clear()
            try:
                self.last_found = await self.sync_once()
                self.last_error = None
                if failing:
                    # The search that just succeeded was the catch-up; now drain.
                    log.info("Wix reachable again; catch-up found %d orders", self.last_found)
                    self.services.wix_back()
                failing = False
            except WixAuthError as e:
                self.last_error = f"Wix refused the API key: {e}"
                log.error("catch-up: %s", self.last_error)
                failing = True
            except WixError as e:
                self.last_error = str(e)
                log.warning("catch-up failed: %s", e)
                failing = True
            self.last_run_at = self.services.clock()
            self.runs += 1
            # In webhook mode nothing periodic: the next search comes from trigger()
            # (an outage ending) or the next start.
            interval = self.cfg.effective_poll_interval or 24 * 3600.0
            if failing:
                # While Wix is away, look again soon (the client already backed off inside
                # its retries), so the catch-up runs shortly after the line is back.
                interval = min(interval, 15.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._trigger.wait(), interval)


def start_catchup(services: Services) -> asyncio.Task[None] | None:
    cfg = services.config.wix
    if not (cfg.api_key and cfg.site_id) or cfg.poll_interval == 0:
        return None
    # Only boxes that search Wix load the client; its TLS context (the system CA store,
    # about 1 MB) is made at the first HTTPS request.
    from .wix.search import WixSearchClient

    catchup = Catchup(services, WixSearchClient(cfg, max_attempts=max(1, cfg.request_attempts)))
    services.catchup = catchup
    return asyncio.create_task(catchup.run(), name="wix-catchup")
