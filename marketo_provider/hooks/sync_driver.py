"""The hook's calls on a worker: the steps of :mod:`~marketo_provider.hooks.flow` performed with a
pooled ``requests`` session (uploads streamed with requests-toolbelt), ``time.sleep`` and a thread
lock per client's token."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
import tenacity

from marketo_provider.api import ConnectionSettings, MarketoTransportError
from marketo_provider.api.errors import TransportFailure
from marketo_provider.api.limits import MAX_RESULT_FILE_BYTES
from marketo_provider.api.protocol import Answer, Call, Flow
from marketo_provider.hooks.flow import CallDriver, Locked, Mask, Pause, Send, Step, Steps, Walk
from marketo_provider.hooks.shared import USER_AGENT, token_fetch_lock
from marketo_provider.hooks.transport import read_body, response_chunks, transport_error
from marketo_provider.hooks.uploads import multipart

T = TypeVar("T")


class SyncDriver(CallDriver):
    """Drives the flows of :mod:`~marketo_provider.api` synchronously, with the retry policy
    around each whole flow."""

    _session: requests.Session | None
    _read_timeout_cap: float | None  # a connection test answers within seconds

    def get_conn(self) -> requests.Session:
        """The hook's pooled HTTP session."""
        if self._session is None:
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            self._session = session
        return self._session

    def _run(self, make_flow: Callable[[], Flow[T]], *, retry: bool = True) -> T:
        """Drive a flow of :mod:`api` to its end, with the retry policy around the whole flow (its
        token fetch included, so retries never nest)."""
        return tenacity.Retrying(**self._retry_kwargs(retry=retry))(self._run_once, make_flow)

    def _run_once(self, make_flow: Callable[[], Flow[T]]) -> T:
        flow = make_flow()
        return self._perform_all(self.steps(flow, self.settings))

    def _perform_all(self, steps: Steps[T]) -> T:
        walk = Walk(steps)
        for step in walk:
            walk.perform(self._perform, step)
        return walk.result

    def _perform(self, step: Step) -> Any:
        if isinstance(step, Send):
            return self._send_now(step)
        if isinstance(step, Pause):
            time.sleep(step.seconds)
        elif isinstance(step, Mask):
            mask(step.secret)
        elif isinstance(step, Locked):
            with token_fetch_lock(step.key):
                return self._perform_all(step.steps)
        return None

    def _send_now(self, step: Send) -> Answer:
        call, settings = step.call, self.settings
        read_timeout = self._read_timeout(call, settings)
        if step.left is not None:
            read_timeout = min(read_timeout, step.left)
        headers = call.headers
        data: Any = None
        if call.upload is not None:
            data = multipart(call.upload, self.log)
            headers["Content-Type"] = data.content_type
        try:
            response = self.get_conn().request(
                call.method,
                call.url,
                params=call.params,
                data=data,
                headers=headers,
                timeout=(min(settings.connect_timeout, read_timeout), read_timeout),
                stream=True,  # read below, within the call's size limit and the deadline
                # Given on every request: requests lets REQUESTS_CA_BUNDLE override Session.verify.
                verify=settings.verify,
            )
        except requests.RequestException as exc:
            error = transport_error(exc, call)
            if error.failure.sent:
                self._count(call)
            raise error from None
        except OSError as exc:  # e.g. a CA bundle (verify, REQUESTS_CA_BUNDLE) that cannot be read
            raise MarketoTransportError(TransportFailure.TLS, call.purpose, call.host, str(exc)) from None
        self._count(call)
        content_type = response.headers.get("content-type", "")
        if call.stream and response.status_code == 200 and "json" not in content_type:
            chunks = response_chunks(response, call, limit=MAX_RESULT_FILE_BYTES, deadline=step.deadline)
            return Answer(response.status_code, response.headers, chunks=chunks)
        return Answer(
            response.status_code, response.headers, text=read_body(response, call, deadline=step.deadline)
        )

    def _read_timeout(self, call: Call, settings: ConnectionSettings) -> float:
        timeout = call.read_timeout or settings.timeout
        return min(timeout, self._read_timeout_cap) if self._read_timeout_cap else timeout


def mask(secret: str) -> None:
    """Mask ``secret`` in Airflow's task logs."""
    from airflow.sdk.log import mask_secret

    mask_secret(secret)
