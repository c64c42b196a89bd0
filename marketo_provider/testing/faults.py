"""Fault injection and the record of every call, with secrets removed."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

# Parameters whose values are secrets: the record keeps that they were sent, and where, never what.
SECRET_PARAMETERS = ("access_token", "client_secret")
MASK = "***"


@dataclass
class Fault:
    """A fault the next ``count`` matching calls answer with instead of (or after) the real answer."""

    path: str
    count: int = 1
    code: str | None = None
    message: str | None = None
    http_status: int | None = None
    delay: float = 0.0
    answer_delay: float = 0.0  # do the work at once, then hold the answer this long
    drop_connection: bool = False
    after_processing: bool = False
    method: str | None = None
    skip: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return path == self.path or fnmatch.fnmatchcase(path, self.path)

    @property
    def label(self) -> str:
        """What the call record shows for this fault: the code, the HTTP status, drop or delay."""
        return (
            self.code
            or (str(self.http_status) if self.http_status else None)
            or ("drop" if self.drop_connection else "delay" if self.delay else "answer delay")
        )

    @property
    def answers_instead(self) -> bool:
        """Whether the fault replaces the real answer (rather than delaying it or dropping it after)."""
        return bool(self.code or self.http_status or (self.drop_connection and not self.after_processing))


@dataclass
class CallRecord:
    """One call the sandbox received, with every secret removed."""

    method: str
    path: str
    query: dict[str, str]
    secrets_in_url: list[str]
    secrets_in_body: list[str]
    bearer: bool
    at: float
    status: int = 200
    error_code: str | None = None
    batch_id: int | None = None
    upload_bytes: int | None = None
    content_type: str | None = None
    fault: str | None = None


class CallLog:
    """Injected faults waiting for their calls, and the record of calls received.

    Not thread-safe on its own: :class:`MarketoBackend` serialises calls.
    """

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.calls: list[CallRecord] = []

    def inject(self, fault: Fault) -> Fault:
        if fault.count < 1:
            raise ValueError("count must be at least 1")
        self.faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The fault this call meets, if any (it is used up by the call)."""
        for fault in self.faults:
            if fault.count > 0 and fault.matches(method, path):
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                return fault
        return None

    def record(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]],
        body_keys: Iterable[str],
        bearer: bool,
        at: float,
    ) -> CallRecord:
        pairs = list(query)
        rec = CallRecord(
            method=method,
            path=path,
            query={k: (MASK if k in SECRET_PARAMETERS else v) for k, v in pairs},
            secrets_in_url=sorted({k for k, _ in pairs if k in SECRET_PARAMETERS}),
            secrets_in_body=sorted({k for k in body_keys if k in SECRET_PARAMETERS}),
            bearer=bearer,
            at=at,
        )
        self.calls.append(rec)
        return rec

    def calls_to(self, pattern: str, method: str | None = None) -> list[CallRecord]:
        return [
            c
            for c in self.calls
            if fnmatch.fnmatchcase(c.path, pattern) and (method is None or c.method == method.upper())
        ]


__all__ = ["CallLog", "CallRecord", "Fault"]
