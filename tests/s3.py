"""An S3 server on loopback for tests: moto's server mode, reached the way a user reaches S3, through
the Amazon provider (``s3://`` paths, s3fs) and an Airflow ``aws`` connection.

    with S3Server() as s3:
        monkeypatch.setenv(*s3.env_item())
        s3.put("s3://crm-exports/leads.csv", data)
        ...  # operator(source="s3://crm-exports/leads.csv", source_conn_id=s3.conn_id)
        assert s3.get("s3://crm-exports/results/failures.csv").startswith(b"email,")

Each server has a connection id of its own (``moto_s3_<port>``): Airflow caches one filesystem per
protocol and connection id for the life of a process, so a new server never meets a filesystem
built for an old one.
"""

from __future__ import annotations

import json
import uuid
from types import TracebackType
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from tests.conftest import free_port

REGION = "us-east-1"
ACCESS_KEY = "moto-access-key"  # moto accepts any key; these are not credentials of anything
SECRET_KEY = "moto-secret-key"


class S3Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.conn_id = f"moto_s3_{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._client: Any = None

    def __enter__(self) -> S3Server:
        self._server.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.stop()

    # ---- what Airflow needs -------------------------------------------------------------------

    def connection_json(self) -> str:
        """An ``aws`` connection whose S3 endpoint is this server."""
        return json.dumps(
            {
                "conn_type": "aws",
                "login": ACCESS_KEY,
                "password": SECRET_KEY,
                "extra": {"endpoint_url": self.endpoint, "region_name": REGION},
            }
        )

    def env(self) -> dict[str, str]:
        return {f"AIRFLOW_CONN_{self.conn_id.upper()}": self.connection_json()}

    def env_item(self) -> tuple[str, str]:
        ((key, value),) = self.env().items()
        return key, value

    # ---- driving and inspecting ---------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                region_name=REGION,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
            )
        return self._client

    def bucket(self, prefix: str = "crm-exports") -> str:
        """A new, empty bucket (moto's state is shared by every server in a process)."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def put(self, uri: str, data: bytes) -> None:
        bucket, key = split(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def get(self, uri: str) -> bytes:
        bucket, key = split(uri)
        return bytes(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())

    def keys(self, uri: str) -> list[str]:
        """Every key under ``s3://bucket/prefix``."""
        bucket, prefix = split(uri)
        listed = self.client.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))


def split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key
