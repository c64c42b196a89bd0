"""What is read from ``state_path`` is untrusted: the pointer names only its own state file inside
the folder; a damaged pointer or state file is a clear error naming the file; ``full_refresh``
builds the state again over it; nothing outside the folder is ever opened or removed."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.importing.changes import StateDamagedError
from marketo_provider.importing.changes.comparison import build_state
from marketo_provider.importing.changes.state import ChangeState, state_file_name
from marketo_provider.storage import StateLocation

SCOPE = {"object_type": "leads", "columns": ["email"]}


def kept(folder: Path, tmp_path: Path, keys: int = 3) -> ChangeState:
    """A state folder holding generation 1 of ``keys`` keys."""
    store = ChangeState(StateLocation(str(folder)), SCOPE)
    built = tmp_path / "built.sqlite"
    build_state(None, str(built), ((k, k * 7) for k in range(keys)))
    store.write(str(built), 0, keys, "dag/task/run")
    return store


def pointer(folder: Path) -> dict[str, Any]:
    data = json.loads((folder / "latest.json").read_text())
    assert isinstance(data, dict)
    return data


def set_pointer(folder: Path, **changes: Any) -> None:
    data = pointer(folder)
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    (folder / "latest.json").write_text(json.dumps(data))


@pytest.mark.parametrize(
    "where", ["../victim.txt", "absolute", "../../../etc/passwd", "state-00000002.sqlite.gz"]
)
def test_a_pointer_naming_another_file_is_refused_and_the_file_is_untouched(
    tmp_path: Path, where: str
) -> None:
    folder = tmp_path / "state"
    store = kept(folder, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    named = str(victim) if where == "absolute" else where
    set_pointer(folder, file=named)
    with pytest.raises(StateDamagedError) as raised:
        store.load(str(tmp_path))
    message = str(raised.value)
    assert message.startswith(f"{folder}/latest.json names the state file ")
    assert "can only be 'state-00000001.sqlite.gz'" in message and "full_refresh=True" in message
    # A full refresh builds the state again over it, and removes nothing the pointer named.
    loaded = store.load(str(tmp_path), full_refresh=True)
    assert (
        loaded.path is None
        and loaded.generation == 0
        and "latest.json names the state file" in loaded.why_full
    )
    built = tmp_path / "again.sqlite"
    build_state(None, str(built), [(1, 1)])
    new = store.write(str(built), loaded.generation, 1, "dag/task/refresh")
    assert new["generation"] == 1 and new["file"] == state_file_name(1)
    assert victim.read_text() == "keep me"
    assert store.load(str(tmp_path)).keys == 1


def damage(folder: Path, tmp_path: Path, how: str) -> None:
    state_file = folder / state_file_name(1)
    if how == "pointer []":
        (folder / "latest.json").write_text("[]")
    elif how == "pointer truncated":
        (folder / "latest.json").write_text(json.dumps(pointer(folder))[:20])
    elif how == "generation not a number":
        set_pointer(folder, generation="one")
    elif how == "generation missing":
        set_pointer(folder, generation=None)
    elif how == "keys missing":
        set_pointer(folder, keys=None)
    elif how == "future format":
        set_pointer(folder, format=2)
    elif how == "state missing":
        state_file.unlink()
    elif how == "state truncated":
        state_file.write_bytes(state_file.read_bytes()[:30])
    elif how == "state not gzip":
        state_file.write_bytes(b"SQLite format 3\x00 but not packed")
    elif how in (
        "state foreign schema",
        "state of another column type",
        "state not sqlite",
        "failed keys of text",
    ):
        raw = tmp_path / "raw.sqlite"
        if how == "state not sqlite":
            raw.write_bytes(b"plain text, not a database" * 100)
        else:
            db = sqlite3.connect(raw)
            table = "other(x)" if how == "state foreign schema" else "state(k TEXT PRIMARY KEY, f TEXT)"
            if how == "failed keys of text":
                table = "state (k INTEGER PRIMARY KEY, f INTEGER NOT NULL)"
                db.execute("CREATE TABLE failed (k TEXT)")
            db.execute(f"CREATE TABLE {table}")
            db.commit()
            db.close()
        state_file.write_bytes(gzip.compress(raw.read_bytes()))
    elif how == "state bomb":
        state_file.write_bytes(gzip.compress(b"\0" * (80 * 1024 * 1024)))  # 80 KB packed
    else:  # pragma: no cover
        raise AssertionError(how)


DAMAGES = {
    "pointer []": ("latest.json", "is not the JSON object this provider writes"),
    "pointer truncated": ("latest.json", "is not the JSON object this provider writes"),
    "generation not a number": ("latest.json", "has generation 'one', not a whole number from 1"),
    "generation missing": ("latest.json", "has generation None"),
    "keys missing": ("latest.json", "has keys None, not a count"),
    "future format": ("latest.json", "is of state format 2, written by a newer release"),
    "state missing": ("state-00000001.sqlite.gz", "does not exist, though latest.json names it"),
    "state truncated": ("state-00000001.sqlite.gz", "is not a complete gzip file"),
    "state not gzip": ("state-00000001.sqlite.gz", "is not a complete gzip file"),
    "state not sqlite": ("state-00000001.sqlite.gz", "is not an SQLite state"),
    "state foreign schema": (
        "state-00000001.sqlite.gz",
        "does not hold the table state(k INTEGER PRIMARY KEY",
    ),
    "state of another column type": ("state-00000001.sqlite.gz", "(columns: k TEXT, f TEXT)"),
    "failed keys of text": ("state-00000001.sqlite.gz", "holds a table failed that is not failed(k INTEGER"),
    "state bomb": ("state-00000001.sqlite.gz", "unpacks to more than"),
}


@pytest.mark.parametrize("how", list(DAMAGES))
def test_a_damaged_state_is_a_clear_error_and_full_refresh_recovers(tmp_path: Path, how: str) -> None:
    folder = tmp_path / "state"
    store = kept(folder, tmp_path)
    damage(folder, tmp_path, how)
    name, what = DAMAGES[how]
    with pytest.raises(StateDamagedError) as raised:
        store.load(str(tmp_path))
    message = str(raised.value)
    assert message.startswith(f"{folder}/{name} ") and what in message, message
    assert "Nothing was sent to Marketo. Run once with full_refresh=True" in message
    loaded = store.load(str(tmp_path), full_refresh=True)
    assert loaded.path is None
    built = tmp_path / "again.sqlite"
    build_state(None, str(built), [(5, 5), (6, 6)])
    store.write(str(built), loaded.generation, 2, "dag/task/refresh")
    again = store.load(str(tmp_path))
    assert again.keys == 2 and again.path is not None and again.why_full == ""
    left = sorted(p.name for p in folder.iterdir())
    assert "latest.json" in left and all(n == "latest.json" or n.startswith("state-0") for n in left), left


def test_the_pointer_is_replaced_in_one_step_and_names_no_temporary_file(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    store = kept(folder, tmp_path)
    built = tmp_path / "next.sqlite"
    build_state(None, str(built), [(1, 2)])
    store.write(str(built), 1, 1, "dag/task/run2")
    assert pointer(folder)["generation"] == 2
    assert sorted(p.name for p in folder.iterdir()) == ["latest.json", state_file_name(2)]


def test_state_path_that_is_a_file_or_read_only_is_not_writable(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match=r"state_path '.*a-file' cannot be written: NotADirectoryError"):
        StateLocation(str(a_file)).check_writable()
    with pytest.raises(ValueError, match=r"state_path '.*a-file/under' cannot be written"):
        StateLocation(str(a_file / "under")).check_writable()


@pytest.mark.parametrize("name", ["latest.json", "lock.json", "state-00000001.sqlite.gz"])
def test_a_link_or_a_folder_in_place_of_a_state_file_is_refused(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "state"
    store = kept(folder, tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text('{"format": 1}')
    (folder / name).unlink(missing_ok=True)
    (folder / name).symlink_to(outside)
    with pytest.raises(
        StateDamagedError, match=rf"{name} is a symbolic link, not a file this provider writes"
    ):
        if name == "lock.json":
            store.lock("run", lease_seconds=60)
        else:
            store.load(str(tmp_path))
    (folder / name).unlink()
    (folder / name).mkdir()
    with pytest.raises(StateDamagedError, match=rf"{name} is a folder"):
        if name == "lock.json":
            store.lock("run", lease_seconds=60)
        else:
            store.load(str(tmp_path))
    assert outside.read_text() == '{"format": 1}'


def test_full_refresh_replaces_a_linked_pointer_without_writing_through_it(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    store = kept(folder, tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (folder / "latest.json").unlink()
    (folder / "latest.json").symlink_to(outside)
    loaded = store.load(str(tmp_path), full_refresh=True)
    assert loaded.path is None and "symbolic link" in loaded.why_full
    built = tmp_path / "again.sqlite"
    build_state(None, str(built), [(1, 1)])
    store.write(str(built), loaded.generation, 1, "dag/task/refresh")
    assert not (folder / "latest.json").is_symlink() and pointer(folder)["generation"] == 1
    assert outside.read_text() == "keep me"
