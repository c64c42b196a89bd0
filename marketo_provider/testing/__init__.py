"""A faithful local Marketo for tests, benchmarks and demos.

``MarketoSandbox`` serves Marketo's identity and bulk import endpoints on a loopback port;
``MarketoBackend`` is the same instance without HTTP, for driving the rules directly.
"""

from marketo_provider.testing.catalog import CAR_OBJECT, CustomObjectType, FieldSpec
from marketo_provider.testing.models import Clock, Fault, MarketoBackend, SandboxConfig
from marketo_provider.testing.server import MarketoSandbox

__all__ = [
    "CAR_OBJECT",
    "Clock",
    "CustomObjectType",
    "Fault",
    "FieldSpec",
    "MarketoBackend",
    "MarketoSandbox",
    "SandboxConfig",
]
