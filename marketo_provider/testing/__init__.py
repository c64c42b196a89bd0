"""A faithful local Marketo for tests, benchmarks and demos.

``MarketoSandbox`` serves Marketo's identity and bulk import endpoints on a loopback port;
``MarketoBackend`` is the same instance without HTTP, for driving the rules directly.
"""

from marketo_provider.testing.backend import MarketoBackend
from marketo_provider.testing.catalog import CAR_OBJECT, CustomObjectType, FieldSpec
from marketo_provider.testing.clock import Clock
from marketo_provider.testing.config import SandboxConfig
from marketo_provider.testing.faults import CallRecord, Fault
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
]
