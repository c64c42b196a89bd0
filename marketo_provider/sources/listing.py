"""Stage 1 of a file source: the files it names, in the order they are read."""

from __future__ import annotations

import functools
import glob
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from marketo_provider.sources.base import SourceError
from marketo_provider.sources.model import Source


def is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


@dataclass(frozen=True)
class SourceFile:
    """One file of a source."""

    name: str  # full path or URI, for messages
    label: str  # short name for part origins: the path under the folder, prefix or glob root
    size: int | None
    open: Callable[[], IO[bytes]]


def _skipped(relative: str) -> bool:
    # Markers and side files that unload and Spark-style writers leave beside the data.
    return any(piece.startswith((".", "_")) for piece in relative.split("/") if piece)


def _glob_root(pattern: str) -> str:
    first = min(i for i, c in enumerate(pattern) if c in "*?[")
    return pattern[: pattern.rfind("/", 0, first) + 1]


def list_files(source: Source) -> list[SourceFile]:
    """The files of a source in the order they are read (sorted by path). Raises
    :class:`SourceError` for a missing file or folder and for a pattern no file matches."""
    if source.is_local:
        return _list_local(source.location)
    return _list_object_storage(source)


def _local_file(path: str, label: str) -> SourceFile:
    return SourceFile(name=path, label=label, size=os.path.getsize(path), open=lambda: open(path, "rb"))


def _list_local(location: str) -> list[SourceFile]:
    if is_glob(location):
        root = _glob_root(location)
        paths = sorted(p for p in glob.glob(location, recursive=True) if os.path.isfile(p))
        paths = [p for p in paths if not _skipped(p[len(root) :])]
        if not paths:
            raise SourceError(f"no files match the import source {location}")
        return [_local_file(p, p[len(root) :] or os.path.basename(p)) for p in paths]
    if location.endswith(("/", os.sep)):
        if not os.path.isdir(location):
            raise SourceError(f"import source folder {location} does not exist")
        found = []
        for folder, dirs, files in os.walk(location):
            dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
            found += [os.path.join(folder, f) for f in files if not f.startswith((".", "_"))]
        if not found:
            raise SourceError(f"import source folder {location} has no files")
        return [_local_file(p, os.path.relpath(p, location)) for p in sorted(found)]
    if os.path.isdir(location):
        raise SourceError(
            f"import source {location} is a folder; name a file, or end the location with '/' "
            "to import every file in it"
        )
    if not os.path.exists(location):
        raise SourceError(f"import source {location} does not exist")
    return [_local_file(location, os.path.basename(location))]


def _list_object_storage(source: Source) -> list[SourceFile]:
    from airflow.sdk import ObjectStoragePath

    name = source.name
    try:
        path = (
            source.location
            if isinstance(source.location, ObjectStoragePath)
            else ObjectStoragePath(name, conn_id=source.conn_id)
        )
        fs = path.fs
        if is_glob(name) or name.endswith("/"):
            root = _glob_root(name) if is_glob(name) else name
            root_path = fs._strip_protocol(root).rstrip("/")
            if is_glob(name):
                infos = fs.glob(fs._strip_protocol(name), detail=True)
            else:
                if not fs.isdir(root_path):
                    raise SourceError(f"import source folder {name} does not exist")
                infos = fs.find(root_path, detail=True)
            files = []
            for p, info in sorted(infos.items()):
                if info.get("type") != "file":
                    continue
                relative = p[len(root_path) :].lstrip("/") if p.startswith(root_path) else p
                if _skipped(relative):
                    continue
                files.append(
                    SourceFile(
                        name=root + relative,
                        label=relative,
                        size=info.get("size"),
                        open=functools.partial(fs.open, p, "rb"),
                    )
                )
            if not files:
                what = "no files match the import source" if is_glob(name) else "import source folder"
                raise SourceError(f"{what} {name}" + ("" if is_glob(name) else " has no files"))
            return files
        if not path.exists():
            raise SourceError(f"import source {name} does not exist")
        if path.is_dir():
            raise SourceError(
                f"import source {name} is a folder; name a file, or end the location with '/' "
                "to import every file in it"
            )
        info = fs.info(path.path)
        label = name.rstrip("/").rsplit("/", 1)[-1]
        return [SourceFile(name=name, label=label, size=info.get("size"), open=lambda: path.open("rb"))]
    except SourceError:
        raise
    except Exception as exc:  # fsspec back ends raise many kinds; all mean "cannot read it"
        raise SourceError(f"import source {name} cannot be read: {exc}") from exc
