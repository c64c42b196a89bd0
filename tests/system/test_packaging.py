"""The package as PyPI would get it: sdist and wheel build, pass ``twine check``, carry the licence,
and the demo runs from the wheel installed in a fresh virtualenv (no checkout on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

import marketo_provider

ROOT = Path(__file__).resolve().parents[2]
NAME = f"airflow_provider_marketo-{marketo_provider.__version__}"


def run(*args: str | Path, timeout: float, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,  # type: ignore[call-overload]
    )
    assert done.returncode == 0, f"{args}\n{done.stdout[-5000:]}\n{done.stderr[-5000:]}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist and wheel, built as `python -m build` builds them (the wheel from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT, timeout=240)
    return out


def test_sdist_and_wheel_pass_twine_check(dist: Path) -> None:
    files = sorted(p.name for p in dist.iterdir())
    assert files == [f"{NAME}-py3-none-any.whl", f"{NAME}.tar.gz"]
    checked = run(sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()), timeout=120)
    assert checked.stdout.count("PASSED") == 2, checked.stdout


def test_both_carry_the_licence_and_the_wheel_the_example_dags(dist: Path) -> None:
    licence = (ROOT / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    with tarfile.open(dist / f"{NAME}.tar.gz") as sdist:
        member = sdist.extractfile(f"{NAME}/LICENSE")
        assert member is not None and member.read().decode() == licence
    with zipfile.ZipFile(dist / f"{NAME}-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
        assert wheel.read(f"{NAME}.dist-info/licenses/LICENSE").decode() == licence
        metadata = wheel.read(f"{NAME}.dist-info/METADATA").decode()
        entry_points = wheel.read(f"{NAME}.dist-info/entry_points.txt").decode()
    assert "marketo_provider/example_dags/marketo_leads_from_object_storage.py" in names
    assert "marketo_provider/py.typed" in names
    assert not any(n.startswith("tests/") for n in names)
    assert "License-Expression: Apache-2.0" in metadata
    assert "Classifier: Programming Language :: Python :: 3.10" in metadata
    assert (
        "Project-URL: Source, https://github.com/airflow-provider-marketo/airflow-provider-marketo"
        in metadata
    )
    assert "provider_info = marketo_provider.get_provider_info:get_provider_info" in entry_points
    # the "Marketo import" view: Airflow loads it from the installed package
    assert "marketo_provider/plugins/import_view.py" in names
    assert "marketo_provider/plugins/page.css" in names  # the pages' style, read as package data
    assert (
        "marketo_import_view = marketo_provider.plugins.import_view:MarketoImportViewPlugin" in entry_points
    )


NEWEST_AIRFLOW = Version(version("apache-airflow")) >= Version("3.3")


@pytest.mark.timeout(900)
@pytest.mark.skipif(
    not NEWEST_AIRFLOW,
    reason="a fresh virtualenv costs minutes: the installed wheel is tried once per CI run, on the newest Airflow",
)
def test_demo_runs_from_the_installed_wheel(dist: Path, tmp_path: Path) -> None:
    """A fresh virtualenv gets the wheel with its ``testing`` extra, and the Airflow this suite runs
    on; the demo runs from a folder that is not the checkout."""
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, timeout=120)
    python = venv / "bin" / "python"
    wheel = dist / f"{NAME}-py3-none-any.whl"
    run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-compile",  # byte-compiling all of Airflow is most of the install; the demo compiles what it imports
        "--disable-pip-version-check",
        f"{wheel}[testing]",
        f"apache-airflow=={version('apache-airflow')}",
        timeout=840,
    )
    where = tmp_path / "elsewhere"
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON"))}
    found = run(
        python,
        "-c",
        "import marketo_provider; print(marketo_provider.__file__)",
        cwd=where,
        env=env,
        timeout=60,
    )
    assert found.stdout.strip().startswith(str(venv)), found.stdout
    done = run(
        python,
        "-m",
        "marketo_provider.testing.demo",
        "--mb",
        "1",
        "--out",
        where / "out",
        cwd=where,
        env=env,
        timeout=300,
    )
    assert "Import SUCCESS" in done.stdout, done.stdout
    assert f"failures: file://{where / 'out' / 'results'}" in done.stdout
    assert "-> Invalid data type in field Lead Score" in done.stdout
