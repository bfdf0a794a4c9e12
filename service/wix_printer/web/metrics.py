"""GET /metrics: Prometheus text format, read from the store at scrape time.

Counts come from SQLite, not from in-process counters, so they survive restarts and a
`kill -9` and agree with /status. Counters are totals of rows still in the store: the
nightly prune lowers them, which Prometheus' rate() treats as a counter reset.
The latency histogram is fed incrementally: each scrape observes the receipts printed
since the previous one (the first scrape after a start reads the retention window).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import __version__
from ..printing.status import PrinterState
from ..services import Services
from ..store import queries
from ..store.db import JOB_STATES

# Seconds from the webhook's arrival to the printer's confirmation; the target is < 1 s.
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


class _Snapshot(Collector):
    """Yields what the async scrape gathered just before generate_latest() runs."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        return list(self.families)

    def describe(self) -> Iterable[Metric]:
        return []  # gathered per scrape: nothing to check for duplicates at registration


def last_backup_at(backup_dir: Path) -> float | None:
    try:
        times = [p.stat().st_mtime for p in backup_dir.glob("queue-*.db")]
    except OSError:
        return None
    return max(times, default=None)


class Metrics:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.registry = CollectorRegistry(auto_describe=False)
        self.snapshot = _Snapshot()
        self.registry.register(self.snapshot)
        self.latency = Histogram(
            "wixprinter_order_to_paper_seconds",
            "Seconds from receiving an order to the printer confirming its receipt (first prints only)",
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self._seen_at = 0.0  # printed_at of the newest receipt already observed
        self._seen_ids: set[int] = set()  # ids printed exactly at _seen_at (ties)

    async def _observe_new_prints(self) -> None:
        store = self.services.store
        after = self._seen_at or self.services.clock() - self.services.config.store.keep_days * 86400
        rows = await queries.printed_since(store, after)
        for job_id, printed_at, received_at in rows:
            if printed_at == self._seen_at and job_id in self._seen_ids:
                continue
            self.latency.observe(max(0.0, printed_at - received_at))
            if printed_at > self._seen_at:
                self._seen_at, self._seen_ids = printed_at, set()
            self._seen_ids.add(job_id)

    async def render(self) -> bytes:
        s = self.services
        now = s.clock()
        counts = await s.store.counts()
        by_source = await queries.orders_by_source(s.store)
        outbox = await queries.outbox_depth(s.store)
        await self._observe_new_prints()
        jobs = counts["jobs"]
        fams: list[Metric] = list(self._families(now, counts, jobs, by_source, outbox))
        self.snapshot.families = fams
        # No await between setting the snapshot and serialising it: two concurrent
        # scrapes cannot see each other's numbers.
        return generate_latest(self.registry)

    def _families(self, now: float, counts: dict[str, object], jobs: dict[str, int], by_source: dict[str, int],
                  outbox: int) -> Iterator[Metric]:
        s = self.services
        info = InfoMetricFamily("wixprinter_build", "Running release")
        info.add_metric([], {"version": __version__})
        yield info
        yield GaugeMetricFamily("wixprinter_uptime_seconds", "Seconds since the service started",
                                value=now - s.started_at)
        orders = CounterMetricFamily("wixprinter_orders_received", "Orders in the store by the way they arrived",
                                     labels=["source"])
        for source in sorted({"webhook", "search", *by_source}):
            orders.add_metric([source], by_source.get(source, 0))
        yield orders
        tickets = CounterMetricFamily("wixprinter_tickets", "Receipts that reached an outcome", labels=["outcome"])
        for outcome in ("printed", "failed", "uncertain", "cancelled"):
            tickets.add_metric([outcome], jobs.get(outcome, 0))
        yield tickets
        states = GaugeMetricFamily("wixprinter_jobs", "Print jobs per state", labels=["state"])
        for state in JOB_STATES:
            states.add_metric([state], jobs.get(state, 0))
        yield states
        yield GaugeMetricFamily("wixprinter_queue_depth", "Receipts waiting, printing or uncertain",
                                value=jobs["queued"] + jobs["sending"] + jobs["uncertain"])
        oldest = counts.get("oldest_queued_at")
        yield GaugeMetricFamily("wixprinter_queue_oldest_age_seconds", "Age of the oldest waiting receipt (0 = none)",
                                value=max(0.0, now - float(oldest)) if isinstance(oldest, int | float) else 0.0)
        printer = GaugeMetricFamily("wixprinter_printer_state", "1 for the printer's current state",
                                    labels=["state"])
        current = s.printer_monitor.state
        for st in PrinterState:
            printer.add_metric([str(st)], 1.0 if st is current else 0.0)
        yield printer
        yield GaugeMetricFamily("wixprinter_printer_up", "1 when the printer can print (online or paper low)",
                                value=1.0 if current in (PrinterState.ONLINE, PrinterState.PAPER_LOW) else 0.0)
        last_print = counts.get("last_printed_at")
        if isinstance(last_print, int | float):
            yield GaugeMetricFamily("wixprinter_last_print_timestamp_seconds", "When the last receipt was confirmed",
                                    value=float(last_print))
        if s.last_webhook_at is not None:
            yield GaugeMetricFamily("wixprinter_last_webhook_timestamp_seconds", "When the last webhook arrived",
                                    value=s.last_webhook_at)
        yield GaugeMetricFamily("wixprinter_notification_outbox_depth", "Notification mails not yet sent",
                                value=outbox)
        backup = last_backup_at(Path(s.config.store.backup_dir))
        yield GaugeMetricFamily("wixprinter_last_backup_age_seconds",
                                "Age of the newest backup (-1 = none found)",
                                value=now - backup if backup is not None else -1.0)
        catchup = s.catchup.as_dict() if s.catchup is not None else {}
        if catchup.get("last_catchup_at"):
            yield GaugeMetricFamily("wixprinter_last_catchup_timestamp_seconds", "When the last Wix catch-up ran",
                                    value=float(catchup["last_catchup_at"]))
