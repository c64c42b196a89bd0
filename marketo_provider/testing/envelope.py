"""Marketo's answer envelope: a request id, ``success``, and the ``result`` or the ``errors``."""

from __future__ import annotations

import uuid
from typing import Any


def _request_id() -> str:
    return f"{uuid.uuid4().hex[:4]}#{uuid.uuid4().hex[:11]}"


def envelope_ok(result: list[dict[str, Any]]) -> dict[str, Any]:
    return {"requestId": _request_id(), "result": result, "success": True}


def envelope_error(code: str, message: str) -> dict[str, Any]:
    return {"requestId": _request_id(), "success": False, "errors": [{"code": str(code), "message": message}]}


__all__ = ["envelope_error", "envelope_ok"]
