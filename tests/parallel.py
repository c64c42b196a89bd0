"""How pytest-xdist shares the suite between workers (``make test`` runs one worker per core).

Tests run one at a time on whichever worker is free, except the modules in :data:`GROUPS`: each
group runs whole on one worker, one test after another, so a module-scoped fixture is built once
and the real Airflow deployments of the system tests never run beside each other (two of them at
once would starve each other of the machine's cores). Work is handed out longest first: the
deployments, then the other system tests, then the rest, so no worker is left with a long test
at the end while the other idles.

Groups are named here by module path rather than with xdist's ``xdist_group`` mark, which pytest
9.2 silently ignores (pytest-dev/pytest-xdist#1386).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from xdist.scheduler import LoadScopeScheduling

# module path -> group; a group's tests run on one worker, in collection order.
GROUPS = {
    # One Celery deployment for the whole module, then `airflow standalone`: never two at once.
    "tests/system/test_celery.py": "airflow-deployment",
    "tests/system/test_standalone.py": "airflow-deployment",
    "tests/system/test_import_view_browser.py": "airflow-deployment",
    # The sdist and wheel are built once for the module.
    "tests/system/test_packaging.py": "packaging",
    # One S3 server (moto) for the module's lock and pointer tests.
    "tests/integration/test_state_on_s3.py": "state-on-s3",
    # The imports the plugin's endpoints are read from are run once for the module.
    "tests/e2e/test_import_view.py": "import-view",
}

# Handed out first: the longest work. Everything else keeps its collection order.
FIRST = [
    "airflow-deployment",
    "packaging",
    "tests/system/",
    "tests/e2e/",
    "tests/integration/test_many_files.py",
]


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


class GroupScheduling(LoadScopeScheduling):
    """Each test its own unit of work, except the grouped modules; longest work first."""

    _ordered = False

    def _split_scope(self, nodeid: str) -> str:
        return GROUPS.get(_module(nodeid), nodeid)

    def _assign_work_unit(self, node: Any) -> None:
        if not self._ordered:  # the first call: the queue is complete, nothing handed out yet
            self._ordered = True

            def rank(scope: str) -> int:
                return next((i for i, p in enumerate(FIRST) if scope.startswith(p)), len(FIRST))

            ordered = sorted(self.workqueue.items(), key=lambda item: rank(item[0]))  # stable
            self.workqueue = OrderedDict(ordered)
        super()._assign_work_unit(node)
