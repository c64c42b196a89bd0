"""A faithful local Marketo for tests, benchmarks and demos.

``MarketoSandbox`` serves Marketo's identity and bulk import endpoints on a loopback port (with a
team's own fields when given ``schema=``, and its record under ``/sandbox-api/``);
``MarketoBackend`` is the same instance without HTTP, for driving the rules directly.
"""

from marketo_provider.testing.backend import MarketoBackend
from marketo_provider.testing.catalog import CAR_OBJECT, CustomObjectType, FieldSpec
from marketo_provider.testing.clock import Clock
from marketo_provider.testing.config import SandboxConfig
from marketo_provider.testing.faults import CallRecord, Fault
from marketo_provider.testing.schema import SchemaError, load_schema
from marketo_provider.testing.server import MarketoSandbox

__all__ = [
    "CAR_OBJECT",
    "CallRecord",
    "Clock",
    "CustomObjectType",
    "Fault",
    "FieldSpec",
    "MarketoBackend",
    "MarketoSandbox",
    "SandboxConfig",
    "SchemaError",
    "load_schema",
]
