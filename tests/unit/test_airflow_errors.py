"""Our errors reach Airflow keeping their type: a DAG author catches them by their class."""

from __future__ import annotations

import json
import pickle

import pytest

from marketo_provider import api
from marketo_provider._compat import AirflowException, AirflowFailException
from marketo_provider.airflow_errors import airflow_class, airflow_error
from marketo_provider.api.errors import TransportFailure
from marketo_provider.importing import ImportAbortedError, ImportFailedError
from marketo_provider.importing.changes import StateDamagedError, StateLockedError
from marketo_provider.sources import SourceError

# One instance of every error class this provider raises, and whether retrying cannot help.
ERRORS: list[tuple[api.MarketoError, bool]] = [
    (api.MarketoError("something went wrong"), False),
    (api.MarketoValueError("max_failed_rows must be 0 or more, not -1"), True),
    (api.MarketoConnectionConfigError("the connection marketo_default has no host"), True),
    (api.MarketoAuthError("the identity service refused the client id or secret"), True),
    (api.MarketoAPIError("603", "Access denied"), True),
    (api.MarketoAPIError("502", "Bad gateway"), False),
    (api.MarketoTransientError("604", "Request timed out"), False),
    (api.MarketoTokenError("601", "Access token invalid"), False),
    (api.MarketoRateLimitError("606", "Max rate limit '100' exceeded with in '20' secs"), False),
    (api.MarketoConcurrencyError("615", "Concurrent access limit reached"), False),
    (api.MarketoQuotaExceededError("607", "Daily quota reached"), False),
    (api.MarketoQueueFullError("1016", "Too many imports"), False),
    (api.MarketoFileTooLargeError("413", "Request entity too large"), True),
    (api.MarketoNotFoundError("404", "Not found"), True),
    (api.MarketoAnswerError("the status of batch 1040", "is not Marketo's JSON envelope"), True),
    (api.MarketoSubmitOutcomeUnknownError("the upload of part 3 got no answer; not sent again"), False),
    (api.MarketoTransportError(TransportFailure.TLS, "identity", "example.mktorest.com"), True),
    (
        api.MarketoTransportError(TransportFailure.TIMEOUT, "status", "example.mktorest.com", "read"),
        False,
    ),
    (StateLockedError("another run is importing with the same state"), False),
    (StateDamagedError("pointer.json", "is not JSON", "delete the folder"), True),
    (SourceError("import source leads.csv does not exist"), True),
    (ImportAbortedError("submitting part 0 failed", permanent=True), True),
    (ImportAbortedError("the import did not finish within timeout=60 s"), False),
    (ImportFailedError(["a batch failed", "too many rows failed"], permanent=False), False),
    (ImportFailedError(["some parts may not have been imported"], permanent=True), True),
]


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        if sub.__module__ != "marketo_provider.airflow_errors":
            found |= {sub} | _subclasses(sub)
    return found


def test_every_error_class_is_mapped_here() -> None:
    assert _subclasses(api.MarketoError) | {api.MarketoError} == {type(e) for e, _ in ERRORS}


@pytest.mark.parametrize(("error", "permanent"), ERRORS, ids=lambda v: type(v).__name__)
def test_an_error_keeps_its_type_message_and_attributes(error: api.MarketoError, permanent: bool) -> None:
    mapped = airflow_error(error)
    assert isinstance(mapped, type(error)) and isinstance(mapped, AirflowException)
    assert isinstance(mapped, AirflowFailException) is permanent  # no Airflow retry can fix it
    assert str(mapped) == str(error) and mapped.args == error.args
    assert vars(mapped) == vars(error)
    assert mapped.permanent is error.permanent is permanent
    assert mapped.__cause__ is error
    with pytest.raises(type(error)):
        raise mapped


@pytest.mark.parametrize(("error", "permanent"), ERRORS, ids=lambda v: type(v).__name__)
def test_a_mapped_error_survives_pickling(error: api.MarketoError, permanent: bool) -> None:
    mapped = airflow_error(error)
    again = pickle.loads(pickle.dumps(mapped))
    assert type(again) is type(mapped)
    assert str(again) == str(mapped) and vars(again) == vars(mapped)
    assert isinstance(again, AirflowFailException) is permanent


def test_airflows_serialisation_keeps_its_class_and_the_message() -> None:
    serialized_objects = pytest.importorskip("airflow.serialization.serialized_objects")
    mapped = airflow_error(api.MarketoAPIError("1003", "Invalid value"))
    encoding = serialized_objects.BaseSerialization
    again = encoding.deserialize(encoding.serialize(mapped))
    assert type(again) is AirflowFailException and str(again) == str(mapped)


def test_one_class_per_error_class_and_kind() -> None:
    assert airflow_class(api.MarketoRateLimitError, False) is airflow_class(api.MarketoRateLimitError, False)
    assert airflow_class(api.MarketoRateLimitError, True) is not airflow_class(
        api.MarketoRateLimitError, False
    )
    assert type(airflow_error(api.MarketoRateLimitError("606", "a"))).__name__ == "MarketoRateLimitError"


def test_an_error_mapped_twice_keeps_the_same_class() -> None:
    once = airflow_error(api.MarketoAuthError("refused"))
    twice = airflow_error(once)
    assert type(twice) is type(once) and str(twice) == str(once) and twice.__cause__ is once


def test_an_error_not_ours_becomes_airflows_own() -> None:
    mapped = airflow_error(RuntimeError("disk full"))
    assert type(mapped) is AirflowException and str(mapped) == "disk full"


def test_an_error_a_trigger_carries_comes_back_as_its_class() -> None:
    from marketo_provider.api.errors import error_carried, error_from_carried

    for error, _permanent in ERRORS:
        carried = error_carried(error)
        assert carried is not None and json.loads(json.dumps(carried)) == carried
        back = error_from_carried(carried, "polling failed. 1 part submitted")
        assert type(back) is type(error) and str(back) == "polling failed. 1 part submitted"
        assert back.permanent == error.permanent
        mapped = airflow_error(error)
        assert type(error_from_carried(error_carried(mapped), "again")) is type(error)


def test_only_our_error_classes_are_rebuilt_from_an_event() -> None:
    from marketo_provider.api.errors import error_carried, error_from_carried

    assert error_carried(ValueError("not ours")) is None
    for carried in (None, "MarketoError", {"class": "SystemExit"}, {"class": "Path"}, {"class": 3}):
        assert error_from_carried(carried, "message") is None
    transport = {"class": "MarketoTransportError", "attributes": {"failure": "no such failure"}}
    assert error_from_carried(transport, "message") is None
