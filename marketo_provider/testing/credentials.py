"""Where a call's credentials are read, over HTTP: the access token from the Authorization header
only (the ``access_token`` parameter was withdrawn), the identity call's client id and secret from
the query string only (a form body is not read). Credentials sent anywhere else are refused and
noted on the call record. Tokens themselves are the identity room's (``identity.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from marketo_provider.testing import spec
from marketo_provider.testing.errors import HTTPError, SandboxError
from marketo_provider.testing.faults import SECRET_PARAMETERS

if TYPE_CHECKING:
    from marketo_provider.testing.backend import MarketoBackend


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def authorize(backend: MarketoBackend, request: Request, body_keys: set[str] | None = None) -> None:
    # The access_token parameter was withdrawn: a token anywhere but the header is refused.
    if "access_token" in request.query_params or "access_token" in (body_keys or set()):
        raise SandboxError("601")
    backend.check_token(_bearer(request))


async def token_request(backend: MarketoBackend, request: Request) -> Response:
    # Adobe documents client_id, client_secret and grant_type in the query string only, for
    # GET and POST alike; a form body is not read, so credentials sent there are missing
    # credentials (401), and the answer says where they belong.
    pairs = request.query_params.multi_items()
    names = [name for name, _ in pairs]
    repeated = sorted({n for n in names if n in spec.IDENTITY_PARAMETERS and names.count(n) > 1})
    if repeated:  # OAuth 2.0: a parameter must not be given more than once
        raise HTTPError(
            400, {"error": "invalid_request", "error_description": f"repeated: {', '.join(repeated)}"}
        )
    # Other query parameters are ignored, as OAuth 2.0 asks of a token endpoint.
    query = dict(pairs)
    client_id, client_secret = query.get("client_id"), query.get("client_secret")
    if not (client_id and client_secret):
        body_keys = await _body_keys(request)
        note_body_secrets(request, body_keys)
        in_body = sorted(set(spec.IDENTITY_PARAMETERS) & body_keys)
        where = f"; {', '.join(in_body)} sent in the request body, which is not read" if in_body else ""
        raise HTTPError(
            401,
            {
                "error": "invalid_client",
                "error_description": "client_id and client_secret are required in the query string" + where,
            },
        )
    answer = backend.issue_token(client_id, client_secret, query.get("grant_type"))
    return JSONResponse(answer)


def note_body_secrets(request: Request, names: Iterable[str]) -> None:
    """Complete the call record with secrets found in a multipart body (the recording layer
    reads only urlencoded bodies itself)."""
    call = request.scope.get("marketo_call")
    if call is not None:
        found = {n for n in names if n in SECRET_PARAMETERS}
        call.secrets_in_body = sorted(found | set(call.secrets_in_body))


async def _body_keys(request: Request) -> set[str]:
    """The parameter names of a form body (urlencoded or multipart), to say they were not read."""
    content_type = request.headers.get("content-type", "")
    if request.method != "POST" or not content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        return set()
    try:
        form = await request.form()
    except HTTPError:
        raise  # the body passed its limit as it streamed in
    except Exception:
        return set()
    names = {name for name, _ in form.multi_items()}
    await form.close()
    return names


__all__ = ["authorize", "note_body_secrets", "token_request"]
