"""Where an import's merged results go: a folder (``results_path``, any object storage) with its
connection, checked writable before the first upload, or XCom."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

from marketo_provider._compat import mask_uri_secrets
from marketo_provider.api import FileFormat
from marketo_provider.api.redaction import hide_secrets
from marketo_provider.results.merging import MergedFile
from marketo_provider.storage import check_writable, storage_folder, uri_scheme


def result_file_name(kind: str, file_format: str | FileFormat) -> str:
    return f"{kind}.{FileFormat.parse(file_format).value}"


@dataclass(frozen=True)
class ResultsLocation:
    """Where merged results go: a folder URI (``results_path``) with its connection, or XCom."""

    path: str | None = None
    conn_id: str | None = None

    @classmethod
    def of(
        cls,
        path: str | None,
        conn_id: str | None = None,
        *,
        source: Any = None,
        source_conn_id: str | None = None,
    ) -> ResultsLocation:
        """Without ``conn_id``, a results path on the source's kind of storage (same scheme) uses
        the source's connection: the credentials that read the export write its results."""
        path = str(path).strip() if path not in (None, "") else None
        mask_uri_secrets(path)
        conn_id = conn_id or None
        same_storage = source is not None and uri_scheme(path) == uri_scheme(source) != "file"
        if path and conn_id is None and source_conn_id and same_storage:
            conn_id = source_conn_id
        return cls(path, conn_id)

    def folder(self) -> Any:
        assert self.path is not None
        return storage_folder(self.path, self.conn_id, "results_path")

    def check_writable(self) -> None:
        """Write and remove a small file in the folder, so a results location that cannot be written
        (read-only, under a regular file, no credentials) is found before anything is uploaded."""
        if self.path:
            check_writable(self.path, self.conn_id, "results_path")

    def write(self, merged: MergedFile, file_format: str | FileFormat) -> str:
        """Write a merged file under the folder; returns its URI as the user wrote it."""
        return write_to_object_storage(merged, str(self.path), file_format, self.conn_id)


def write_to_object_storage(
    merged: MergedFile, results_path: str, file_format: str | FileFormat, conn_id: str | None
) -> str:
    """Write a merged file under ``results_path`` (any ObjectStoragePath URI); returns its URI."""
    folder = ResultsLocation(results_path, conn_id).folder()
    if folder.protocol in ("", "file"):
        folder.mkdir(parents=True, exist_ok=True)
    name = result_file_name(merged.kind, file_format)
    target = folder / name
    merged.file.seek(0)
    with target.open("wb") as out:
        shutil.copyfileobj(merged.file, out, 1024 * 1024)
    # The URI as the user wrote it (ObjectStoragePath would put the conn id in it as userinfo).
    return hide_secrets(f"{results_path.rstrip('/')}/{name}")
