"""The only module with SQL: schema, migrations, the print queue, the outbox."""

from .db import (
    JOB_STATES,
    Job,
    OrderRow,
    RecoveryRun,
    Store,
    StoreError,
    SyncTx,
    Tx,
)
from .schema import LATEST, MIGRATIONS

__all__ = [
    "JOB_STATES", "LATEST", "MIGRATIONS", "Job", "OrderRow", "RecoveryRun", "Store", "StoreError", "SyncTx", "Tx",
]
