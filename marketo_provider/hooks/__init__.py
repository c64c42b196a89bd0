"""The hook: the one place that talks to Marketo.

``marketo``          :class:`MarketoHook`: one typed method per operation, the connection read once
``flow``             the steps every call goes through, sync or async (token, pacing, deadline),
                     and the retry policy around a whole flow
``sync_driver``      the steps performed on a worker: requests, ``time.sleep``, a thread lock
``async_driver``     the steps performed in the triggerer: httpx, ``asyncio.sleep``, an asyncio lock
``connection_form``  the connection form Airflow 3.1 asks the hook for
``shared``           what calls share within a process: tokens, pacers, the loop's clients, TLS
``transport``        answers read within their size limit and by the deadline; transport errors
``uploads``          the file of an upload: a stream of known size, multipart, its progress
"""

from marketo_provider.hooks.marketo import MarketoHook, aclose_shared_clients, clear_token_cache

__all__ = ["MarketoHook", "aclose_shared_clients", "clear_token_cache"]
