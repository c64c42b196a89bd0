"""Stage 1 of a file source: the files it names, in the order they are read."""

from __future__ import annotations

import errno
import fnmatch
import functools
import os
import stat
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


def _list_local(location: str) -> list[SourceFile]:
    if is_glob(location):
        root = _glob_root(location)
        pattern = location[len(root) :].split("/")
        found = _walk(location, root, _glob_filter(pattern))
        if not found:
            raise SourceError(f"no files match the import source {location}")
        return found
    if location.endswith(("/", os.sep)):
        if not os.path.isdir(location):
            raise SourceError(f"import source folder {location} does not exist")
        found = _walk(location, location, None)
        if not found:
            raise SourceError(f"import source folder {location} has no files")
        return found
    if os.path.isdir(location):
        raise SourceError(
            f"import source {location} is a folder; name a file, or end the location with '/' "
            "to import every file in it"
        )
    if not os.path.exists(location):
        raise SourceError(f"import source {location} does not exist")
    return [_local_file(location, os.path.basename(location), os.path.getsize(location))]


def _local_file(path: str, label: str, size: int) -> SourceFile:
    return SourceFile(name=path, label=label, size=size, open=lambda: open(path, "rb"))


# What a walk keeps: given a path's pieces under the root and whether it is a folder, whether to
# enter the folder or keep the file.
PathFilter = Callable[[list[str], bool], bool]


def _glob_filter(pattern: list[str]) -> PathFilter:
    """A glob's pieces as a filter: ``*``, ``?`` and ``[...]`` within a piece, ``**`` for any number
    of folders (as :func:`glob.glob` with ``recursive=True``)."""

    def match(pieces: list[str], at: int, pat: int) -> bool:
        if pat == len(pattern):
            return at == len(pieces)
        if pattern[pat] == "**":
            return any(match(pieces, i, pat + 1) for i in range(at, len(pieces) + 1))
        return (
            at < len(pieces)
            and fnmatch.fnmatchcase(pieces[at], pattern[pat])
            and match(pieces, at + 1, pat + 1)
        )

    def may_hold(pieces: list[str]) -> bool:
        """Whether files below the folder at ``pieces`` may match."""
        for at, piece in enumerate(pieces):
            if at >= len(pattern):
                return False
            if pattern[at] == "**":
                return True
            if not fnmatch.fnmatchcase(piece, pattern[at]):
                return False
        return len(pattern) > len(pieces)

    return lambda pieces, folder: may_hold(pieces) if folder else match(pieces, 0, 0)


def _walk(location: str, root: str, keep: PathFilter | None) -> list[SourceFile]:
    """The files under ``root`` that ``keep`` keeps, sorted by path, each file once: links are
    followed, a folder reached again through a link is not walked again, a file reached through
    two paths is kept under the first, and a link back to a folder it is in (a loop) is a
    :class:`SourceError` naming it. Names starting with ``.`` or ``_`` (markers and side files
    that unload and Spark-style writers leave beside the data) are skipped."""
    files: dict[str, tuple[int, int, int]] = {}  # device, inode, size: a stat_result is ~1 KB
    walked: set[tuple[int, int]] = set()

    def loop(relative: str, why: str) -> SourceError:
        return SourceError(
            f"import source {location} has a link loop: {root}{relative} {why}. Links are followed, so a "
            "loop would read the same files again and again: remove the link"
        )

    def visit(folder: str, pieces: list[str], above: tuple[tuple[int, int], ...]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise SourceError(
                f"import source {location}: folder {folder} cannot be read ({exc.strerror or exc})"
            ) from None
        for entry in entries:
            if entry.name.startswith((".", "_")):
                continue
            here = [*pieces, entry.name]
            relative = "/".join(here)
            try:
                info = os.stat(entry.path)  # through links
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise loop(relative, "cannot be resolved (too many levels of links)") from None
                if entry.is_symlink():
                    continue  # a link to nothing, as glob skips it
                raise SourceError(
                    f"import source {location}: {root}{relative} cannot be read ({exc.strerror or exc})"
                ) from None
            key = (info.st_dev, info.st_ino)
            if stat.S_ISDIR(info.st_mode):
                if key in above:
                    raise loop(relative, f"leads back to {os.path.realpath(entry.path)}, a folder it is in")
                if key not in walked and (keep is None or keep(here, True)):
                    walked.add(key)
                    visit(entry.path, here, (*above, key))
            elif stat.S_ISREG(info.st_mode) and (keep is None or keep(here, False)):
                files[relative] = (info.st_dev, info.st_ino, info.st_size)

    folder = root or "."
    if not os.path.isdir(folder):
        return []
    top = os.stat(folder)
    walked.add((top.st_dev, top.st_ino))
    visit(folder, [], ((top.st_dev, top.st_ino),))
    seen: set[tuple[int, int]] = set()
    found = []
    for relative in sorted(files, key=lambda r: root + r):
        device, inode, size = files.pop(relative)
        if (device, inode) not in seen:  # else the same file through a link
            seen.add((device, inode))
            found.append(_local_file(root + relative, relative, size))
    return found


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
