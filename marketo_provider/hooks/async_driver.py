"""The hook's calls in the triggerer: the steps of :mod:`~marketo_provider.hooks.flow` performed
on the event loop with the ``httpx.AsyncClient`` the loop's hooks share, ``asyncio.sleep`` and an
asyncio lock per client's token."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import tenacity

from marketo_provider._compat import amask_secret
from marketo_provider.api import MarketoTransportError
from marketo_provider.api.errors import TransportFailure
from marketo_provider.api.protocol import Answer, Flow
from marketo_provider.hooks.flow import CallDriver, Locked, Mask, Pause, Send, Step, Steps, Walk
from marketo_provider.hooks.shared import loop_shared
from marketo_provider.hooks.transport import aread_body, transport_error

T = TypeVar("T")


class AsyncDriver(CallDriver):
    """Drives the flows of :mod:`~marketo_provider.api` on the event loop, with the same retry
    policy around each whole flow."""

    async def _arun(self, make_flow: Callable[[], Flow[T]]) -> T:
        """Drive a flow to its end on the event loop: the same flows and retry policy as the sync
        driver, over a shared ``httpx.AsyncClient``."""
        return await tenacity.AsyncRetrying(**self._retry_kwargs())(self._arun_once, make_flow)

    async def _arun_once(self, make_flow: Callable[[], Flow[T]]) -> T:
        flow = make_flow()
        settings = await self.aget_settings()
        # The loop's client is built (a TLS context, off the loop) before a deadline is checked.
        await loop_shared().client(settings)
        return await self._aperform_all(self.steps(flow, settings))

    async def _aperform_all(self, steps: Steps[T]) -> T:
        walk = Walk(steps)
        for step in walk:
            await walk.aperform(self._aperform(step))
        return walk.result

    async def _aperform(self, step: Step) -> Any:
        if isinstance(step, Send):
            return await self._asend_now(step)
        if isinstance(step, Pause):
            await asyncio.sleep(step.seconds)
        elif isinstance(step, Mask):
            await amask_secret(step.secret)
        elif isinstance(step, Locked):
            async with loop_shared().token_lock(step.key):
                return await self._aperform_all(step.steps)
        return None

    async def _asend_now(self, step: Send) -> Answer:
        call = step.call
        shared = loop_shared()
        client = await shared.client(await self.aget_settings())
        sending = answered = False
        try:
            async with asyncio.timeout(step.left):  # the deadline bounds the call, its body included
                async with shared.calls:  # waiters queue here, not inside httpx's pool (costly to scan)
                    sending = True
                    request = client.build_request(
                        call.method, call.url, params=call.params, headers=call.headers
                    )
                    response = await client.send(request, stream=True)
                    answered = True
                    self._count(call)
                    try:
                        text = await aread_body(response, call)
                    finally:
                        await response.aclose()
        except httpx.HTTPError as exc:
            error = transport_error(exc, call)
            if error.failure.sent and not answered:
                self._count(call)
            raise error from None
        except TimeoutError:
            if sending and not answered:
                self._count(call)
            failure = TransportFailure.DEADLINE if sending else TransportFailure.DEADLINE_PASSED
            raise MarketoTransportError(failure, call.purpose, call.host) from None
        return Answer(response.status_code, response.headers, text=text)
