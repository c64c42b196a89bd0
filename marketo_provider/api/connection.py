"""What a client needs from an Airflow connection of type ``marketo``, read and checked, and the
access token it gets with it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from marketo_provider.api.errors import MarketoConnectionConfigError
from marketo_provider.api.limits import CONNECT_TIMEOUT_SECONDS, DEFAULT_HTTP_TIMEOUT_SECONDS

__all__ = [
    "TOKEN_PATH",
    "ConnectionSettings",
    "Token",
    "connection_settings",
    "read_verify",
]

TOKEN_PATH = "/oauth/token"  # under the identity base URL


@dataclass(frozen=True)
class ConnectionSettings:
    """What a client needs from an Airflow connection of type ``marketo``."""

    conn_id: str
    rest_url: str
    identity_url: str
    client_id: str
    client_secret: str = field(repr=False)
    timeout: float = DEFAULT_HTTP_TIMEOUT_SECONDS
    verify: bool | str = True

    @property
    def token_url(self) -> str:
        return self.identity_url + TOKEN_PATH

    @property
    def cache_key(self) -> tuple[str, str]:
        return (self.identity_url, self.client_id)

    @property
    def instance_host(self) -> str:
        """The instance's host name, e.g. ``123-abc-456.mktorest.com``."""
        return urlsplit(self.rest_url).netloc.lower()

    @property
    def connect_timeout(self) -> float:
        return min(self.timeout, CONNECT_TIMEOUT_SECONDS)

    def url(self, path: str) -> str:
        return self.rest_url + path


def _base_url(value: str, *, strip_suffixes: tuple[str, ...]) -> str:
    url = value.strip().rstrip("/")
    if "://" not in url:
        url = "https://" + url
    for suffix in strip_suffixes:
        if url.lower().endswith(suffix):
            url = url[: -len(suffix)].rstrip("/")
    return url


def connection_settings(
    conn_id: str,
    *,
    host: str | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any] | None = None,
) -> ConnectionSettings:
    """Read a ``marketo`` connection; a missing or unusable piece is an error naming the
    connection and the field."""
    missing = [
        f"{name} ({what})"
        for name, value, what in (
            ("host", host, "the REST API endpoint, e.g. https://123-ABC-456.mktorest.com"),
            ("login", login, "the Client ID"),
            ("password", password, "the Client Secret"),
        )
        if not (value and str(value).strip())
    ]
    if missing:
        raise MarketoConnectionConfigError(
            f"Airflow connection {conn_id!r} has no {', no '.join(missing)}. "
            "Marketo shows these under Admin > Web Services and Admin > LaunchPoint > View Details."
        )
    extra = dict(extra or {})
    rest_url = _base_url(str(host), strip_suffixes=("/rest",))
    scheme = urlsplit(rest_url).scheme.lower()
    if scheme not in ("http", "https"):
        raise MarketoConnectionConfigError(
            f"Airflow connection {conn_id!r}: host {host!r} must be an https:// (or http://) URL"
        )
    identity = extra.get("identity_url")
    identity_url = (
        _base_url(str(identity), strip_suffixes=(TOKEN_PATH,)) if identity else rest_url + "/identity"
    )
    timeout = extra.get("timeout")
    try:
        timeout_value = float(timeout) if timeout not in (None, "") else DEFAULT_HTTP_TIMEOUT_SECONDS
    except (TypeError, ValueError):
        raise MarketoConnectionConfigError(
            f"Airflow connection {conn_id!r}: extra 'timeout' must be a number of seconds, not {timeout!r}"
        ) from None
    if not timeout_value > 0:
        raise MarketoConnectionConfigError(
            f"Airflow connection {conn_id!r}: extra 'timeout' must be positive"
        )
    return ConnectionSettings(
        conn_id=conn_id,
        rest_url=rest_url,
        identity_url=identity_url,
        client_id=str(login).strip(),
        client_secret=str(password).strip(),
        timeout=timeout_value,
        verify=read_verify(conn_id, extra.get("verify")),
    )


def read_verify(conn_id: str, value: Any) -> bool | str:
    """The extra ``verify``: true, false, or the path of a CA bundle (a file or a folder of
    certificates). Anything else is an error naming the extra."""
    if value is None or value == "" or value is True:
        return True
    if value is False:
        return False
    text = str(value).strip()
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    if "/" not in text and "\\" not in text and "." not in text:
        raise MarketoConnectionConfigError(
            f"Airflow connection {conn_id!r}: extra 'verify' is {value!r}; it must be true, false or the "
            "path of a CA bundle"
        )
    return text  # a CA bundle path; the hook checks that it exists


@dataclass(frozen=True)
class Token:
    """An access token and when to stop using it (``renew_at``, a little before it expires)."""

    access_token: str = field(repr=False)
    expires_at: float
    renew_at: float

    def fresh_at(self, now: float) -> bool:
        return now < self.renew_at
