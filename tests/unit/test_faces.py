"""The tree as docs/contributing.rst maps it: every module it names exists and every module is
named; each package's face (its ``__all__``) is the documented one; and no module reaches into
another package past its face."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "marketo_provider"
MAP = ROOT / "docs" / "contributing.rst"


def _modules() -> list[str]:
    """Every module of the provider, dotted."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.append(".".join(parts))
    return found


MODULES = _modules()
PACKAGES = {m for m in MODULES if (ROOT / m.replace(".", "/") / "__init__.py").exists()}


def _faces() -> tuple[dict[str, list[str]], set[str]]:
    """The faces docs/contributing.rst lists under "Package faces": a package with its names, or
    a module whose face is its ``__all__``."""
    text = MAP.read_text()
    section = text.split("\nPackage faces\n", 1)[1].split("\nWhere a change goes\n", 1)[0]
    blocks: dict[str, str] = {}
    current: str | None = None
    for line in section.splitlines():
        term = re.fullmatch(r"``(marketo_provider[\w.]*)``", line)
        if term:
            current = term.group(1)
            blocks[current] = ""
        elif current and line.startswith("    "):
            blocks[current] += line + "\n"
        elif line.strip():
            current = None
    named: dict[str, list[str]] = {}
    modules: set[str] = set()
    for term, block in blocks.items():
        if "its ``__all__``" in block:
            modules.add(term)
            modules.update(re.findall(r"``(marketo_provider(?:\.[\w.]+)?)``", block))
        else:
            named[term] = re.findall(r"``(\w+)``", block)
    return named, modules


NAMED, MODULE_FACES = _faces()


def test_every_module_the_map_names_exists_and_every_module_is_named() -> None:
    text = MAP.read_text()
    named_files = set(re.findall(r"([\w/]+\.py)\b", text))
    missing = sorted(
        name
        for name in named_files
        if not name.startswith(("tests/", "benchmarks/", "example_dags/", "docs/"))
        and not any(path.as_posix().endswith(name) for path in PACKAGE.rglob(name.rsplit("/", 1)[-1]))
    )
    assert not missing, f"docs/contributing.rst names modules that do not exist: {missing}"
    words = set(re.findall(r"[\w/.]+", text))
    unnamed = []
    for module in MODULES:
        parts = module.split(".")[1:]
        if not parts or parts[-1] in ("__main__",):
            continue
        if module in PACKAGES:
            forms = {f"{parts[-1]}/", f"{'/'.join(parts)}/", module}
        else:
            forms = {f"{parts[-1]}.py", f"{'/'.join(parts)}.py", module, f"``{parts[-1]}``"}
        if not any(form in words or form in text for form in forms):
            unnamed.append(module)
    assert not unnamed, f"modules docs/contributing.rst does not name: {unnamed}"


@pytest.mark.parametrize("face", sorted(NAMED))
def test_a_package_face_is_the_documented_one(face: str) -> None:
    module = importlib.import_module(face)
    assert sorted(module.__all__) == sorted(NAMED[face]), face
    for name in module.__all__:
        assert hasattr(module, name), f"{face}.{name}"


@pytest.mark.parametrize("face", sorted(MODULE_FACES))
def test_a_module_face_states_its_names(face: str) -> None:
    module = importlib.import_module(face)
    assert isinstance(getattr(module, "__all__", None), list), f"{face} has no __all__"
    for name in module.__all__:
        assert hasattr(module, name), f"{face}.{name}"


def _package_of(module: str) -> str:
    return module if module in PACKAGES else module.rsplit(".", 1)[0]


def _face_names(module: str) -> set[str] | None:
    """The names another package may import from ``module``; None: it is no face."""
    if module in NAMED:
        return set(NAMED[module])
    if module in MODULE_FACES:
        return set(importlib.import_module(module).__all__)
    return None


def _reaches(importer: str, target: str) -> bool:
    """Whether ``importer`` imports ``target`` from outside its package (a subpackage may read its
    parent package's modules; a package's own modules read each other freely)."""
    home, there = _package_of(importer), _package_of(target)
    if target == "marketo_provider" or (there == "marketo_provider" and target not in PACKAGES):
        return target != importer  # a top-level module is a face of its own
    return not (home == there or home.startswith(there + "."))


def _imports(path: Path) -> list[tuple[str, str, int]]:
    """(module, name, line) for each name ``path`` imports from the provider."""
    found = []
    tree = ast.parse(path.read_text())
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not node.module.startswith("marketo_provider"):
                continue
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                if dotted in MODULES:  # a module imported from its package
                    aliases[alias.asname or alias.name] = dotted
                    if node.module != "marketo_provider":
                        found.append((node.module, alias.name, node.lineno))
                else:
                    found.append((node.module, alias.name, node.lineno))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            found.append((aliases[node.value.id], node.attr, node.lineno))
    return found


def test_no_module_reaches_past_another_package_face() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        importer = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if importer.startswith("marketo_provider.testing"):
            continue  # the sandbox imports nothing from the client (test_sandbox_imports.py)
        for module, name, line in _imports(path):
            if module.startswith("marketo_provider.testing") or not _reaches(importer, module):
                continue
            names = _face_names(module)
            if names is None:
                wrong.append(
                    f"{path.relative_to(ROOT)}:{line} imports {name} from {module}, which is no face"
                )
            elif name not in names:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}, not on {module}'s face")
    assert not wrong, "\n".join(wrong)
