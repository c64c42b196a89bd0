"""The "Marketo import" view as a person sees it: a real ``airflow api-server`` (simple auth
manager) over a finished sandbox import, Debian's headless Chromium driven by Playwright, logged
in through Airflow's login page, on the task instance's "Marketo import" tab.

Set ``MARKETO_UPDATE_SCREENSHOT=1`` to write the screenshot docs/ui.rst shows (otherwise it goes
under the test's temporary folder only), ``MARKETO_CHROMIUM`` to use another Chromium than
/usr/bin/chromium. A browser that is missing or cannot start fails the test with the reason under
``CI=true`` (CI installs it) and skips it, with the reason, elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from marketo_provider.testing import MarketoSandbox
from tests.conftest import free_port
from tests.helpers import leads_csv
from tests.system.processes import Processes, wait_for

CHROMIUM = os.environ.get("MARKETO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "_static" / "marketo-import-view.png"
DAG_ID = "marketo_view_demo"
AIRFLOW = tuple(int(x) for x in __import__("airflow").__version__.split(".")[:2])
PASSWORD = "view-test-password"

DAG_FILE = f'''
import os
import pendulum
from airflow.sdk import DAG
from marketo_provider.operators.bulk_import import MarketoBulkImportOperator

with DAG("{DAG_ID}", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
    MarketoBulkImportOperator(
        task_id="import_leads",
        source=os.environ["VIEW_SOURCE"],
        results_path=os.environ["VIEW_RESULTS"],
        max_part_bytes=3_000,
        poll_interval=0.2,
    )

if __name__ == "__main__":
    run = dag.test()
    print("RUN", run.run_id, run.state)
'''


def no_browser(reason: str) -> None:
    """Fail in CI (the browser is part of what CI installs), skip elsewhere, always with the reason."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"headless Chromium cannot start: {reason}")
    pytest.skip(f"headless Chromium cannot start: {reason}")


def launch_browser(playwright: Any, profile: Path) -> Any:
    if not Path(CHROMIUM).exists():
        no_browser(f"{CHROMIUM} does not exist (apt-get install chromium)")
    try:
        return playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            accept_downloads=True,
            viewport={"width": 1400, "height": 1900},
        )
    except Exception as exc:
        no_browser(f"{type(exc).__name__}: {exc}")


@pytest.mark.timeout(600)
def test_the_view_in_a_real_browser(tmp_path: Path) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        no_browser(f"playwright is not installed ({exc})")
    if not Path(CHROMIUM).exists():  # said before minutes of set-up
        no_browser(f"{CHROMIUM} does not exist (apt-get install chromium)")
    data, expected = leads_csv(200, fail_every=20, warn_every=30)
    source = tmp_path / "leads.csv"
    source.write_bytes(data)
    results = tmp_path / "results"
    home = tmp_path / "home"
    (home / "dags").mkdir(parents=True)
    dag_file = home / "dags" / "view_demo.py"
    dag_file.write_text(DAG_FILE)
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": PASSWORD}))
    api_port = free_port()
    processes = Processes(tmp_path / "logs")
    # Jobs of a second, two importing at a time: the parts' timeline shows them queue and import.
    with MarketoSandbox(queued_seconds=0.5, import_seconds=1.0) as sandbox:
        env = {
            **os.environ,
            **sandbox.env(),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "VIEW_SOURCE": str(source),
            "VIEW_RESULTS": f"file://{results}/",
        }
        env.pop("AIRFLOW__CORE__LAZY_DISCOVER_PROVIDERS", None)
        migrated = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
        ran = subprocess.run(
            [sys.executable, str(dag_file)], env=env, capture_output=True, text=True, timeout=300, cwd=home
        )
        line = next((x for x in ran.stdout.splitlines() if x.startswith("RUN ")), "")
        assert line.endswith(" success"), ran.stdout[-3000:] + ran.stderr[-3000:]
        run_id = line.split()[1]
    try:
        processes.airflow("api-server", "api-server", "--port", str(api_port), env=env, cwd=home)

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/api/v2/monitor/health", timeout=10):
                    return True
            except OSError:
                return False

        wait_for(lambda: healthy() or not processes.alive("api-server"), 240, "the API server")
        assert processes.alive("api-server"), processes.tails()
        failures_file = (results / "failures.csv").read_bytes()
        with sync_playwright() as playwright:
            browser = launch_browser(playwright, tmp_path / "chromium-profile")
            try:
                page = browser.new_page()
                page.set_default_timeout(120_000)
                base = f"http://127.0.0.1:{api_port}"
                # Log in through Airflow's login page, as a person does.
                page.goto(base + "/")
                page.wait_for_url("**/auth/login**")
                page.fill("input[name=username]", "admin")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(lambda url: "/auth/login" not in url)
                # The task instance's "Marketo import" tab.
                page.goto(f"{base}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/import_leads")
                page.get_by_text("Marketo import", exact=True).first.click()
                page.wait_for_url("**/plugin/marketo-import")
                view = page.frame_locator("iframe")
                try:
                    view.locator("#counts").wait_for()
                except Exception:
                    page.screenshot(path=str(tmp_path / "failure.png"))
                    frames = [(f.url, f.content()[:2000]) for f in page.frames]
                    raise AssertionError(f"no counts in the tab; frames: {frames}") from None

                def count(key: str) -> str:
                    return view.locator(f'#counts [data-count="{key}"]').inner_text()

                assert count("records") == "200"
                assert count("rows_sent") == "200"
                assert count("rows_processed") == f"{expected['processed']:,}"
                assert count("rows_failed") == str(expected["failed"])
                assert count("rows_with_warning") == str(expected["warned"])
                assert view.locator("#adds-up").inner_text().startswith("200 records = 0 kept out + 200 sent")
                # the chart: a drawn bar per reason
                bar = view.locator(
                    '#failure-chart g.bar[data-reason="Invalid data type in field Lead Score"]'
                )
                assert bar.get_attribute("data-rows") == str(expected["failed"])
                assert bar.locator("rect").bounding_box()["width"] > 100  # type: ignore[index]
                assert view.locator("#warning-chart g.bar").count() == 1
                # the parts on the timeline
                assert (
                    view.locator("#parts tbody tr").count() == view.locator("#timeline g.part").count() == 3
                )
                # a failed row with its source and line
                first = view.locator("#failures-rows tbody tr").first.locator("td")
                assert first.nth(0).inner_text() == str(source)
                assert first.nth(1).inner_text() == "21"
                assert first.nth(2).inner_text() == "Invalid data type in field Lead Score"
                assert data.decode().split("\n")[20].startswith("lead20@example.com,")  # line 21 of the file
                page.screenshot(path=str(tmp_path / "marketo-import-view.png"))
                if os.environ.get("MARKETO_UPDATE_SCREENSHOT"):
                    shutil.copyfile(tmp_path / "marketo-import-view.png", SCREENSHOT)
                # the download link returns the failures file: in the tab from Airflow 3.3 on, on
                # the view's own page before (the UI's frame drops downloads there, as the view says)
                where: Any = view
                blocked = view.locator("#frame-blocks-downloads").count() == 1
                assert blocked == (AIRFLOW < (3, 3))
                if blocked:
                    page.goto(base + str(page.locator("iframe").get_attribute("src")))
                    where = page
                with page.expect_download() as download_info:
                    where.locator("#download-failures").click()
                download = download_info.value
                assert download.suggested_filename == "failures.csv"
                assert Path(download.path()).read_bytes() == failures_file
                # the DAG run's tab lists the import
                page.goto(f"{base}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/plugin/marketo-imports")
                listed = page.frame_locator("iframe").locator("#imports tbody tr")
                listed.first.wait_for()
                assert listed.count() == 1 and "import_leads" in listed.first.inner_text()
                # secrets stay out of the page
                html = view_html = page.frame_locator("iframe").locator("html").inner_html()
                assert sandbox.client_secret not in html and sandbox.client_secret not in view_html
            finally:
                browser.close()
    finally:
        processes.stop_all()
