"""The sandbox states Marketo's rules itself: none of its modules imports the client's code.

A sandbox that borrowed the client's rules (paths, limits, error codes, required columns) would
agree with the client's mistakes instead of catching them. Only ``dags.py`` and ``demo.py``, which
drive the provider (the demo runs the operator), may import it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import marketo_provider.testing

SANDBOX_DIR = Path(marketo_provider.testing.__file__).parent
DRIVES_THE_PROVIDER = {"dags.py", "demo.py"}
SANDBOX_MODULES = sorted(p for p in SANDBOX_DIR.glob("*.py") if p.name not in DRIVES_THE_PROVIDER)


def imported_modules(path: Path) -> list[str]:
    """Every absolute module an import statement names, ``from x import y`` as ``x.y`` too."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside the sandbox's own package
                continue
            module = node.module or ""
            names.append(module)
            names.extend(f"{module}.{alias.name}" for alias in node.names)
    return names


def outside_the_sandbox(module: str) -> bool:
    in_provider = module == "marketo_provider" or module.startswith("marketo_provider.")
    in_sandbox = module == "marketo_provider.testing" or module.startswith("marketo_provider.testing.")
    return in_provider and not in_sandbox


def test_the_rule_sees_every_module() -> None:
    names = {p.name for p in SANDBOX_MODULES}
    assert {"app.py", "backend.py", "spec.py", "jobs.py", "server.py", "__main__.py"} <= names


@pytest.mark.parametrize("path", SANDBOX_MODULES, ids=lambda p: p.name)
def test_sandbox_module_imports_nothing_of_the_client(path: Path) -> None:
    offending = [m for m in imported_modules(path) if outside_the_sandbox(m)]
    assert offending == [], f"{path.name} imports {offending}"


def test_the_check_catches_a_client_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from marketo_provider import api\nimport marketo_provider.hooks.marketo\n")
    offending = [m for m in imported_modules(module) if outside_the_sandbox(m)]
    assert offending == ["marketo_provider", "marketo_provider.api", "marketo_provider.hooks.marketo"]


def test_the_sandbox_imports_alone() -> None:
    """Importing the sandbox loads no client module (checked in a fresh interpreter)."""
    import subprocess
    import sys

    code = (
        "import sys, marketo_provider.testing, marketo_provider.testing.app, marketo_provider.testing.__main__\n"
        "print(sorted(m for m in sys.modules if m.startswith('marketo_provider') "
        "and not m.startswith('marketo_provider.testing')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['marketo_provider']"
