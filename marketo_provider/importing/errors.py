"""The errors of an import as a whole: stopped (:class:`ImportAbortedError`) or ran but must not
look like success (:class:`ImportFailedError`)."""

from __future__ import annotations

from collections.abc import Sequence

from marketo_provider.api import MarketoError, MarketoTransportError
from marketo_provider.api.errors import TransportFailure


class ImportAbortedError(MarketoError):
    """The import stopped on an error; the message says which parts were submitted and which not."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ImportFailedError(MarketoError):
    """The import ran but must not look like success (a batch failed, too many rows failed, parts
    may be missing, the results could not be written); the summary is in XCom all the same."""

    def __init__(self, problems: Sequence[str], *, permanent: bool) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)
        self.permanent = permanent


def past_deadline(exc: BaseException) -> bool:
    """Whether a call ended because the import's deadline passed."""
    return isinstance(exc, MarketoTransportError) and exc.failure in (
        TransportFailure.DEADLINE,
        TransportFailure.DEADLINE_PASSED,
    )
