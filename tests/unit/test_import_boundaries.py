"""The package boundaries of docs/architecture.md, read from the source's import statements.

`gateway` and `workflows` run in different processes and agree only through
`domain.contracts`; an import between them (or from `domain` into the rest) is a regression.
`runtime/` and `worker.py` are composition roots and may import anything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Which project packages each package may import (itself included).
ALLOWED = {
    "domain": {"domain"},
    "db": {"db", "domain"},
    "payments": {"payments", "domain"},
    "simulator": {"simulator", "domain"},
    "gateway": {"gateway", "domain", "db"},
    "activities": {"activities", "domain", "db", "payments"},
    # Activity names and dataclasses of the worker's own activities, run in the same process.
    "workflows": {"workflows", "domain", "activities", "payments"},
    # Workflow classes for typed handles; everything else crosses through domain.contracts.
    "api": {"api", "domain", "db", "payments", "workflows"},
}
PROJECT = {*ALLOWED, "runtime", "worker"}

# Single modules allowed one package more than the rest of their package.
MODULE_EXTRA = {
    # The simulated O!Dengi keeps its invoices in PostgreSQL, shared by every api process.
    "payments/simulator_store.py": {"db"},
}

# Project modules a package must not import although its package rule allows their package.
FORBIDDEN_MODULES = {
    # Mounted by runtime/ only with PAYMENT_PROVIDER=SIMULATED: the API never serves them itself.
    "api": {"payments.simulator_routes", "payments.simulator_store"},
}


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every absolute project import in the file, nested included."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            if module.partition(".")[0] in PROJECT:
                yield node.lineno, module


def imported_packages(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level project package) of every absolute import in the file, nested included."""
    seen: set[tuple[int, str]] = set()
    for line, module in imported_modules(path):
        if (line, top := module.partition(".")[0]) not in seen:
            seen.add((line, top))
            yield line, top


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no sources under {package}/"
    crossings = [
        f"{path.relative_to(ROOT)}:{line} imports {top}"
        for path in files
        for line, top in imported_packages(path)
        if top not in ALLOWED[package] | MODULE_EXTRA.get(str(path.relative_to(ROOT)), set())
    ]
    assert crossings == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN_MODULES))
def test_package_leaves_alone_what_is_mounted_for_it(package: str) -> None:
    taken = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, module in imported_modules(path)
        if any(
            module == forbidden or module.startswith(f"{forbidden}.")
            for forbidden in FORBIDDEN_MODULES[package]
        )
    ]
    assert taken == []


def workflow_classes() -> set[str]:
    """Names of the classes under workflows/ decorated with @workflow.defn."""
    return {
        node.name
        for path in (ROOT / "workflows").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.ClassDef)
        and any("workflow.defn" in ast.unparse(decorator) for decorator in node.decorator_list)
    }


# Reconciliation inputs carry the provider's own types (payments.provider), which domain/
# cannot import: the API takes them from the workflow module.
API_FROM_WORKFLOWS_TOO = {"ReconcileInput", "RecheckInput"}


def test_the_api_takes_only_workflow_classes_from_workflows() -> None:
    """Names, payloads and ids come from domain.contracts; a typed handle needs the class."""
    allowed = workflow_classes() | API_FROM_WORKFLOWS_TOO
    taken = [
        f"{path.relative_to(ROOT)}:{node.lineno} {alias.name}"
        for path in sorted((ROOT / "api").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workflows.")
        for alias in node.names
        if alias.name not in allowed
    ]
    assert taken == []


def test_the_rule_catches_a_crossing(tmp_path: Path) -> None:
    module = tmp_path / "relay.py"
    module.write_text(
        "from domain.contracts import session_signals\n"
        "def f():\n    from workflows.charging import ChargingSessionWorkflow\n"
    )
    assert [top for _, top in imported_packages(module)] == ["domain", "workflows"]
    assert "workflows.charging.ChargingSessionWorkflow" in {m for _, m in imported_modules(module)}
