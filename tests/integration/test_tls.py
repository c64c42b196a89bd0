"""The connection's ``verify`` on every call, sync and async, against the sandbox served over https
with a certificate of its own: refused by default, accepted with the CA bundle or verify=false,
whatever REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE say."""

from __future__ import annotations

import asyncio
import datetime
import io
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketo_provider.api import ImportTarget, MarketoTransportError, ObjectType
from marketo_provider.hooks.marketo import MarketoHook, aclose_shared_clients, clear_token_cache
from marketo_provider.testing import MarketoSandbox


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA bundle)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "marketo-sandbox")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_sandbox(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[MarketoSandbox]:
    clear_token_cache()
    cert, key = certificate
    with MarketoSandbox(ssl_certfile=str(cert), ssl_keyfile=str(key), import_seconds=0.05) as sandbox:
        assert sandbox.url.startswith("https://")
        yield sandbox


def status_async(hook: MarketoHook, batch_id: int) -> str:
    async def go() -> str:
        try:
            return (await hook.aget_import_status(ImportTarget(ObjectType.LEADS), batch_id))["status"]
        finally:
            await aclose_shared_clients()

    return asyncio.run(go())


def test_an_untrusted_certificate_fails_at_once(
    tls_sandbox: MarketoSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in tls_sandbox.env().items():
        monkeypatch.setenv(key, value)
    with pytest.raises(MarketoTransportError, match="TLS handshake failed") as raised:
        MarketoHook().describe("leads")
    assert raised.value.permanent and "certificate" in str(raised.value).lower()
    assert tls_sandbox.calls == []


@pytest.mark.parametrize("verify", ["ca", "false"])
def test_verify_applies_to_every_call_sync_and_async(
    tls_sandbox: MarketoSandbox, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, verify: str
) -> None:
    value = str(certificate[0]) if verify == "ca" else "false"
    for key, env in tls_sandbox.env(verify=value).items():
        monkeypatch.setenv(key, env)
    # A corporate host's settings, which requests would let override Session.verify.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/corporate-ca.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/nonexistent/corporate-ca.pem")
    hook = MarketoHook()
    batch = hook.submit_import("leads", io.BytesIO(b"email\na@example.com\n"))["batchId"]
    assert hook.describe("leads")["fields"]
    assert status_async(MarketoHook(), batch) in ("Queued", "Importing", "Complete")
    assert len(tls_sandbox.calls_to("/bulk/v1/leads/batch/*")) == 1
