"""Names that moved between Airflow 3.1 and 3.3, and masking secrets in Airflow's task logs."""

from __future__ import annotations

from typing import Any

conf: Any
try:  # Airflow 3.2+
    from airflow.sdk import conf
except ImportError:  # Airflow 3.1
    from airflow.configuration import conf

try:  # Airflow 3.2+
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowException, AirflowFailException  # type: ignore[no-redef]

try:  # Airflow 3.2+
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.1
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef]

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "TaskDeferred",
    "amask_secret",
    "conf",
    "mask_uri_secrets",
]


async def amask_secret(secret: Any) -> None:
    """Mask a secret from async code (Airflow 3.2+ has an async variant; 3.1 only the sync one)."""
    try:
        from airflow.sdk.log import amask_secret as mask
    except ImportError:
        from airflow.sdk.log import mask_secret

        mask_secret(secret)
    else:
        await mask(secret)


def mask_uri_secrets(uri: Any) -> None:
    """Credentials written in a URI (``s3://KEY:SECRET@bucket/``) are masked in Airflow's task logs
    and in this provider's messages, whoever prints them (storage libraries quote them too)."""
    from marketo_provider.api.redaction import remember_secret, uri_credentials

    for secret in uri_credentials(str(uri)) if uri is not None else ():
        remember_secret(secret)
        try:
            from airflow.sdk.log import mask_secret

            mask_secret(secret)
        except Exception:  # outside a task (tests, the CLI): our own messages still hide it
            pass
