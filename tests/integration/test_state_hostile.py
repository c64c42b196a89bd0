"""A tampered state folder, an unwritable one, and credentials in storage URIs, over real HTTP
against the sandbox: nothing outside the folder is touched, nothing is sent from a state that
cannot be read, ``full_refresh=True`` recovers, and no credential reaches a log line or XCom."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from marketo_provider.api import ImportSpec
from marketo_provider.importing import BulkImport, ImportOptions
from marketo_provider.importing.changes import StateDamagedError
from marketo_provider.sources import Source
from marketo_provider.testing import MarketoSandbox
from tests.conftest import fast_hook

LOG = logging.getLogger("tests.state_hostile")
ROWS = 40


def write_leads(path: Path) -> None:
    path.write_text("email,firstName\n" + "".join(f"u{i}@example.com,F{i}\n" for i in range(ROWS)))


def importer(source: Path, state: str, **options: Any) -> BulkImport:
    return BulkImport(
        fast_hook(),
        ImportSpec.of("leads"),
        Source.of(str(source)),
        ImportOptions.of(**{"poll_interval": 0.05, **options}, changed_rows_only=True, state_path=state),
        log=LOG,
        owner="dag/task/run",
    )


def run_import(source: Path, state: str, **options: Any) -> dict[str, Any]:
    run = importer(source, state, **options)
    begun = run.begin(None)
    assert begun is not None
    while (wait := run.advance(begun)) is not None:
        run.wait(begun, wait)
    return run.conclude(begun, {}.__setitem__)


def tamper(state: Path, victim: Path, how: str) -> None:
    pointer = json.loads((state / "latest.json").read_text())
    if how == "traversing pointer":
        pointer["file"] = f"../{victim.name}"
    elif how == "absolute pointer":
        pointer["file"] = str(victim)
    elif how == "pointer []":
        pointer = []
    elif how == "garbage lock":
        (state / "lock.json").write_bytes(b"\x00garbage")
    elif how == "lock until not a time":
        (state / "lock.json").write_text('{"owner": "x", "since": 1, "until": "soon"}')
    (state / "latest.json").write_text(json.dumps(pointer))


@pytest.mark.parametrize(
    "how", ["traversing pointer", "absolute pointer", "pointer []", "garbage lock", "lock until not a time"]
)
def test_a_tampered_state_sends_nothing_and_full_refresh_recovers(
    marketo_env: MarketoSandbox, tmp_path: Path, how: str
) -> None:
    source, state = tmp_path / "leads.csv", tmp_path / "state"
    write_leads(source)
    victim = state.parent / "victim.txt"
    victim.write_text("not the provider's")
    run_import(source, str(state))
    tamper(state, victim, how)
    calls = len(marketo_env.calls)
    with pytest.raises(StateDamagedError, match=r"(latest|lock)\.json .*full_refresh=True"):
        run_import(source, str(state))
    assert not [c for c in marketo_env.calls[calls:] if "/bulk/" in c.path]  # nothing sent
    refreshed = run_import(source, str(state), full_refresh=True)
    assert refreshed["changes"]["full"] is True and refreshed["changes"]["rows_new"] == ROWS
    again = run_import(source, str(state))
    assert again["batch_ids"] == [] and again["changes"]["rows_unchanged"] == ROWS
    assert victim.read_text() == "not the provider's"
    assert not (state / "lock.json").exists()


def test_an_unwritable_state_path_fails_validate_only_before_any_call(
    marketo_env: MarketoSandbox, tmp_path: Path
) -> None:
    source = tmp_path / "leads.csv"
    write_leads(source)
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    calls = len(marketo_env.calls)
    with pytest.raises(
        ValueError, match=r"state_path '.*not-a-folder' cannot be written: NotADirectoryError"
    ):
        importer(source, str(a_file)).plan()
    with pytest.raises(ValueError, match=r"state_path '.*not-a-folder/below' cannot be written"):
        run_import(source, str(a_file / "below"))
    assert len(marketo_env.calls) == calls  # not even a token


def test_credentials_in_storage_uris_reach_no_log_line_and_no_xcom(
    marketo_env: MarketoSandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "leads.csv"
    write_leads(source)
    caplog.set_level(logging.DEBUG)
    calls = len(marketo_env.calls)
    for state, results in (
        (f"file://bob:s3cretpw@{tmp_path}/state", None),
        ("s3://AKIAKEYID:wJalrXUtnFEMIKEY@bucket/state/", None),
        (str(tmp_path / "state"), f"file://bob:s3cretpw@{tmp_path}/results"),
        (str(tmp_path / "state"), "s3://AKIAKEYID:wJalrXUtnFEMIKEY@bucket/results/"),
    ):
        with pytest.raises(ValueError, match="has credentials written in it") as refused:
            importer(source, state, results_path=results).plan()
        assert "s3cretpw" not in str(refused.value) and "wJalrXUtnFEMIKEY" not in str(refused.value)
    assert len(marketo_env.calls) == calls
    assert "s3cretpw" not in caplog.text and "wJalrXUtnFEMIKEY" not in caplog.text
    assert "Unable to find AWS Connection ID" not in caplog.text


def test_file_localhost_is_the_local_folder_not_one_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from marketo_provider.results import ResultsLocation
    from marketo_provider.storage import StateLocation

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    StateLocation(f"file://localhost{tmp_path}/state").write_json("latest.json", {"a": 1})
    ResultsLocation(f"file://localhost{tmp_path}/results").check_writable()
    assert json.loads((tmp_path / "state" / "latest.json").read_text()) == {"a": 1}
    assert (tmp_path / "results").is_dir()
    assert list(cwd.iterdir()) == []
    with pytest.raises(
        ValueError, match=r"names the host 'fileserver': a file:// URI names a folder on this machine"
    ):
        StateLocation("file://fileserver/share/state").check_writable()
