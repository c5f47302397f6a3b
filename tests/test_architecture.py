"""The structure stays as docs/architecture.md describes it: one-way imports, pure settings, small files.

Imports are read from the source (every ``import``, including those under ``TYPE_CHECKING`` and inside
functions), so a violation is reported with the file and the import that causes it.
"""

from __future__ import annotations

import ast
import functools
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import constructs
import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_FOLDERS = ("constructs", "stacks")
# Importing these costs seconds (the provider bindings) or means constructs (cdktf, the bindings).
NOT_IN_SETTINGS = ("cdktf", "cdktf_cdktf_provider_aws", "cdktf_cdktf_provider_helm", "cdktf_cdktf_provider_kubernetes")
LINE_LIMITS = {"constructs": 500, "stacks": 500, "tests": 700}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _product_files() -> list[Path]:
    files = [ROOT / "main.py"]
    for folder in PRODUCT_FOLDERS:
        files.extend(p for p in sorted((ROOT / folder).rglob("*.py")) if "__pycache__" not in p.parts)
    return files


PRODUCT_MODULES = {_module_name(path): path for path in _product_files()}


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in ``path``; ``from a import b`` yields ``a.b`` when that is a module."""
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                if f"{node.module}.{alias.name}" in PRODUCT_MODULES:
                    yield node.lineno, f"{node.module}.{alias.name}"


@functools.cache
def _graph() -> dict[str, set[str]]:
    return {
        module: {name for _, name in _imports(path) if name in PRODUCT_MODULES and name != module}
        for module, path in PRODUCT_MODULES.items()
    }


def _closure(module: str, graph: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = [module]
    while stack:
        for child in graph[stack.pop()]:
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def test_the_walker_sees_every_feature_package() -> None:
    packages = {name.split(".")[1] for name in PRODUCT_MODULES if name.startswith("constructs.")}
    assert {"core", "network", "storage", "cost", "training", "sagemaker", "eks", "policy", "platform"} <= packages
    assert "stacks.matrix" in PRODUCT_MODULES and "main" in PRODUCT_MODULES


def test_there_is_no_import_cycle() -> None:
    graph = _graph()
    cycles = []
    for module in graph:
        if module in _closure(module, graph):
            cycles.append(module)
    assert cycles == [], f"modules that import themselves through others: {cycles}"


def test_constructs_never_import_stacks_or_main() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for module, path in PRODUCT_MODULES.items()
        if module.startswith("constructs.")
        for line, name in _imports(path)
        if name == "main" or name.split(".")[0] == "stacks"
    ]
    assert offending == []


def test_core_builds_on_nothing_of_ours_and_no_feature_on_the_composition() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for module, path in PRODUCT_MODULES.items()
        if module.startswith("constructs.") and module != "constructs.platform"
        for line, name in _imports(path)
        if name == "constructs.platform"
        or (module.startswith("constructs.core") and name in PRODUCT_MODULES and not name.startswith("constructs.core"))
    ]
    assert offending == []


# Modules that must load without cdktf: every settings module, and everything `make check-config` runs.
PURE_MODULES = sorted(
    {
        *(name for name in PRODUCT_MODULES if name.endswith(".settings")),
        "stacks.environment",
        "stacks.matrix",
        "stacks.overrides",
        "stacks.deployment",
        "stacks.emulator",
        "stacks.check_config",
    }
)


def _construct_imports(path: Path) -> Iterator[int]:
    """Lines importing the library's Construct classes (``from constructs import Construct``)."""
    for node in ast.walk(_tree(path)):
        names = {alias.name for alias in node.names} if isinstance(node, ast.ImportFrom) else set()
        if isinstance(node, ast.ImportFrom) and node.module == "constructs" and names & {"Construct", "IConstruct"}:
            yield node.lineno


@pytest.mark.parametrize("module", PURE_MODULES)
def test_settings_modules_import_no_construct_cdktf_or_binding(module: str) -> None:
    graph = _graph()
    reachable = {module, *_closure(module, graph)}
    offending = []
    for name in sorted(reachable):
        path = PRODUCT_MODULES[name]
        for line, imported in _imports(path):
            if imported.split(".")[0] in NOT_IN_SETTINGS or imported == "constructs.core.bindings":
                offending.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
        offending.extend(f"{path.relative_to(ROOT)}:{line} imports Construct" for line in _construct_imports(path))
    assert offending == [], f"{module} reaches construct code:\n" + "\n".join(offending)


def test_settings_modules_load_without_cdktf_at_run_time() -> None:
    probe = (
        "import importlib, sys\n"
        f"for name in {PURE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {NOT_IN_SETTINGS!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("folder", sorted(LINE_LIMITS))
def test_files_are_small_enough_to_read_in_one_sitting(folder: str) -> None:
    limit = LINE_LIMITS[folder]
    too_long = {
        str(path.relative_to(ROOT)): count
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > limit
    }
    assert too_long == {}, f"over {limit} lines"


def test_our_constructs_folder_extends_the_library_instead_of_shadowing_it() -> None:
    # With an __init__.py our folder would shadow the library and cdktf would fail to import constructs._jsii.
    assert hasattr(constructs, "Construct")
    assert "site-packages" in constructs.__file__, constructs.__file__
    assert not (ROOT / "constructs" / "__init__.py").exists()
    assert not (ROOT / "constructs" / "_jsii.py").exists() and not (ROOT / "constructs" / "_jsii").exists()
    module = importlib.import_module("constructs.network.network")
    assert Path(module.__file__ or "").resolve().parent == ROOT / "constructs" / "network"
