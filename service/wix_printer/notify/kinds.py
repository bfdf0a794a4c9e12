"""The incident kinds the owner is mailed about, and what the printer monitor's states mean."""

from __future__ import annotations

import enum
from typing import Literal

from ..printing.status import PrinterState

Severity = Literal["info", "warning", "critical"]


class Kind(enum.StrEnum):
    PRINTER_OFFLINE = "printer_offline"
    PAPER_LOW = "paper_low"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    INTERNET_DOWN = "internet_down"
    RECOVERY_FAILED = "recovery_failed"
    ORDERS_STUCK = "orders_stuck"
    SERVICE_RESTARTED = "service_restarted"
    STORAGE_PROBLEM = "storage_problem"
    BACKUP_FAILING = "backup_failing"
    TEST = "test"


SEVERITY: dict[Kind, Severity] = {
    Kind.PRINTER_OFFLINE: "warning",
    Kind.PAPER_LOW: "info",
    Kind.PAPER_OUT: "critical",
    Kind.COVER_OPEN: "critical",
    Kind.INTERNET_DOWN: "warning",
    Kind.RECOVERY_FAILED: "critical",
    Kind.ORDERS_STUCK: "critical",
    Kind.SERVICE_RESTARTED: "warning",
    Kind.STORAGE_PROBLEM: "critical",
    Kind.BACKUP_FAILING: "warning",
    Kind.TEST: "info",
}

# One-shot kinds have nothing to resolve: the event is over when it is reported.
ONE_SHOT: frozenset[Kind] = frozenset({Kind.SERVICE_RESTARTED, Kind.TEST})

PRINTER_KINDS: tuple[Kind, ...] = (Kind.PRINTER_OFFLINE, Kind.PAPER_LOW, Kind.PAPER_OUT, Kind.COVER_OPEN)

# UNKNOWN maps to None: at start-up the monitor knows nothing yet, which is no reason to
# open or close anything.
PRINTER_STATE_KINDS: dict[PrinterState, frozenset[Kind] | None] = {
    PrinterState.ONLINE: frozenset(),
    PrinterState.PAPER_LOW: frozenset({Kind.PAPER_LOW}),
    PrinterState.PAPER_OUT: frozenset({Kind.PAPER_OUT}),
    PrinterState.COVER_OPEN: frozenset({Kind.COVER_OPEN}),
    PrinterState.OFFLINE: frozenset({Kind.PRINTER_OFFLINE}),
    PrinterState.ERROR: frozenset({Kind.PRINTER_OFFLINE}),
    PrinterState.UNREACHABLE: frozenset({Kind.PRINTER_OFFLINE}),
    PrinterState.UNKNOWN: None,
}


def kind_of(value: str | Kind) -> Kind:
    try:
        return Kind(value)
    except ValueError:
        raise ValueError(f"unknown notification kind {value!r}; known: {', '.join(Kind)}") from None
