"""How one import runs, below the Airflow classes.

``state``       :class:`ImportState`: which parts became which batches, each batch's final status,
                the calls made; JSON that travels across deferrals and task retries
``waiting``     which batches a poll asks about and when a wait is over (:class:`Wait`), shared by
                the worker and the trigger (the sensor shares the polls)
``options``     :class:`ImportOptions`, how an import runs, checked before the first call; the
                batch ids a sensor watches
``errors``      :class:`ImportAbortedError` (the import stopped) and :class:`ImportFailedError`
                (it ran but must not look like success)
``batch_watch`` :class:`BatchWatch`: watching an import's batches and concluding it (the sensor's
                whole job)
``checking``    every check before the first upload, and the ``validate_only`` plan
``submitting``  uploading the parts while Marketo's queue has room
``run``         :class:`BulkImport`: one import from the first check to the published results

The operator, the sensor and the trigger only map these to Airflow.
"""

from marketo_provider.importing.batch_watch import BatchWatch
from marketo_provider.importing.changes import renew_lease
from marketo_provider.importing.conclusion import HandedOver
from marketo_provider.importing.errors import ImportAbortedError, ImportFailedError, past_deadline
from marketo_provider.importing.journal import Journal
from marketo_provider.importing.options import (
    DEFAULT_IMPORT_TIMEOUT_SECONDS,
    DEFAULT_POLL_INTERVAL_SECONDS,
    ImportOptions,
    parse_batch_ids,
)
from marketo_provider.importing.plan import plan_line
from marketo_provider.importing.run import BulkImport
from marketo_provider.importing.state import STATE_KEY, ImportState
from marketo_provider.importing.waiting import Wait, WaitEnd, WaitFor, apoll

__all__ = [
    "DEFAULT_IMPORT_TIMEOUT_SECONDS",
    "DEFAULT_POLL_INTERVAL_SECONDS",
    "STATE_KEY",
    "BatchWatch",
    "BulkImport",
    "HandedOver",
    "ImportAbortedError",
    "ImportFailedError",
    "ImportOptions",
    "ImportState",
    "Journal",
    "Wait",
    "WaitEnd",
    "WaitFor",
    "apoll",
    "parse_batch_ids",
    "past_deadline",
    "plan_line",
    "renew_lease",
]
