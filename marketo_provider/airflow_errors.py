"""Our errors as Airflow's, keeping their type: the one place the operator, the sensor and the
trigger's resumption map errors.

Airflow fails a task without its retries only for an ``AirflowFailException``. Each of our error
classes gets two subclasses here, made once: one deriving also from ``AirflowFailException`` (for
errors no retry can fix, ``permanent``) and one from ``AirflowException``. The error raised is an
instance of both our class and Airflow's, with the same message and attributes, so a DAG author
catches ``MarketoRateLimitError`` or ``StateLockedError`` (or checks ``context["exception"]`` in
an ``on_failure_callback``) while Airflow decides about retries as before."""

from __future__ import annotations

import threading
from typing import Any

from marketo_provider._compat import AirflowException, AirflowFailException
from marketo_provider.api import MarketoError

__all__ = ["airflow_class", "airflow_error"]

_CLASSES: dict[tuple[type[MarketoError], bool], type[MarketoError]] = {}
_LOCK = threading.Lock()


def airflow_class(cls: type[MarketoError], permanent: bool) -> type[MarketoError]:
    """The subclass of ``cls`` that is also ``AirflowFailException`` (``permanent``) or
    ``AirflowException``; made once per class and kind."""
    key = (cls, bool(permanent))
    with _LOCK:
        found = _CLASSES.get(key)
        if found is None:
            airflow = AirflowFailException if permanent else AirflowException
            found = type(
                cls.__name__,
                (cls, airflow),
                {
                    "__module__": __name__,
                    "__qualname__": cls.__qualname__,
                    "__doc__": cls.__doc__,
                    "__reduce__": _reduce,
                    "serialize": _serialize,
                },
            )
            _CLASSES[key] = found
    return found


def airflow_error(exc: BaseException) -> Exception:
    """Our error as Airflow's: an ``AirflowFailException`` (no task retry) when retrying cannot
    help (bad input or set-up, refused credentials, codes like 603 or 1003), an
    ``AirflowException`` otherwise. One of our errors keeps its class, message and attributes;
    its cause is ``exc``."""
    permanent = bool(getattr(exc, "permanent", False))
    if not isinstance(exc, MarketoError):
        return (AirflowFailException if permanent else AirflowException)(str(exc))
    cls = _original(type(exc)) if type(exc).__module__ == __name__ else type(exc)  # mapped twice
    mapped = _rebuild(cls, permanent, exc.args, vars(exc))
    mapped.__cause__ = exc
    mapped.__suppress_context__ = True
    return mapped


def _rebuild(
    cls: type[MarketoError], permanent: bool, args: tuple[Any, ...], attributes: dict[str, Any]
) -> Any:
    """An instance of ``cls``'s Airflow subclass with ``args`` and ``attributes``, made without
    calling ``cls``'s constructor (its arguments are not the message it made)."""
    mapped = airflow_class(cls, permanent)
    error = mapped.__new__(mapped, *args)
    error.args = args
    error.__dict__.update(attributes)
    return error


def _reduce(self: MarketoError) -> tuple[Any, ...]:
    """Pickled as the original class and the kind (a class made here is not found by its name in
    another process)."""
    original = _original(type(self))
    return _rebuild, (original, isinstance(self, AirflowFailException), self.args, dict(vars(self)))


def _original(mapped: type[MarketoError]) -> type[MarketoError]:
    """The error class a class made here derives from."""
    original: type[MarketoError] = mapped.__mro__[1]
    return original


def _serialize(self: MarketoError) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """What Airflow's own serialisation keeps: the Airflow class and the message (it rebuilds an
    exception only from a class it finds by name)."""
    airflow = AirflowFailException if isinstance(self, AirflowFailException) else AirflowException
    return f"{airflow.__module__}.{airflow.__name__}", (str(self),), {}
