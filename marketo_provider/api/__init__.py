"""What this project knows about Marketo's bulk import API, with no I/O, by concern:

``errors``      the errors raised, each saying whether a retry can help; the error for each code
``codes``       what to do about each of Marketo's error codes
``retries``     whether a failed call is made again, and after how long a pause
``redaction``   the secrets this process holds, and text cleaned of them before it is shown
``targets``     object types, file formats, :class:`ImportTarget`, paths, required columns, the
                header rules
``import_spec`` :class:`ImportSpec` (what an import sends besides the file) and the keywords that
                build it, :class:`ImportKeywords`
``protocol``    :class:`Call`, :class:`Answer` and :func:`call_flow` (how a call is made)
``answers``     the readers of Marketo's answers (errors in HTTP 200 bodies), :class:`BatchStatus`
``connection``  :class:`ConnectionSettings` from an Airflow connection; :class:`Token`
``limits``      file size, queue, rate window and timeouts; pacing and backoff
``fields``      Marketo's field types and the values each takes (a value's problem)
``columns``     a column of values checked against its field's rule at once

This face lists what a DAG author and the provider's other packages use: the error classes, what an
import targets and sends, a batch's status and a connection's settings (docs/api.rst). The rest is
each concern module's own face (its ``__all__``): the hooks read ``protocol``, ``answers``,
``connection`` and ``limits``; the sources read ``fields``,
``columns`` and ``targets``; nothing outside a
module's ``__all__`` is used by another package (tests/unit/test_faces.py).
"""

from marketo_provider.api.answers import BatchStatus
from marketo_provider.api.connection import ConnectionSettings
from marketo_provider.api.errors import (
    MarketoAnswerError,
    MarketoAPIError,
    MarketoAuthError,
    MarketoConcurrencyError,
    MarketoConnectionConfigError,
    MarketoError,
    MarketoFileTooLargeError,
    MarketoNotFoundError,
    MarketoQueueFullError,
    MarketoQuotaExceededError,
    MarketoRateLimitError,
    MarketoSubmitOutcomeUnknownError,
    MarketoTokenError,
    MarketoTransientError,
    MarketoTransportError,
    MarketoValueError,
    TransportFailure,
)
from marketo_provider.api.import_spec import ImportKeywords, ImportSpec
from marketo_provider.api.targets import FileFormat, ImportTarget, ObjectType

__all__ = [
    "BatchStatus",
    "ConnectionSettings",
    "FileFormat",
    "ImportKeywords",
    "ImportSpec",
    "ImportTarget",
    "MarketoAPIError",
    "MarketoAnswerError",
    "MarketoAuthError",
    "MarketoConcurrencyError",
    "MarketoConnectionConfigError",
    "MarketoError",
    "MarketoFileTooLargeError",
    "MarketoNotFoundError",
    "MarketoQueueFullError",
    "MarketoQuotaExceededError",
    "MarketoRateLimitError",
    "MarketoSubmitOutcomeUnknownError",
    "MarketoTokenError",
    "MarketoTransientError",
    "MarketoTransportError",
    "MarketoValueError",
    "ObjectType",
    "TransportFailure",
]
