"""The layer rule each subpackage's ``__init__.py`` states, read off the imports of the real source files.

Imports point down only (api → access → services → aggregation/selectors → storage/models): an upward import
would let a lower layer depend on a request's shape, and would soon become an import cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fma_django_connectors

PACKAGE = Path(fma_django_connectors.__file__).parent

# The settings accessor is the floor every layer stands on, as ``django.conf.settings`` is.
EVERY_LAYER = {"conf"}
# What each subpackage may import of its own package (besides itself and EVERY_LAYER), as its docstring says.
ALLOWED = {
    name: allowed | EVERY_LAYER
    for name, allowed in {
        "api": {"access", "services", "selectors", "storage", "client_ids", "schemas", "exceptions", "models"},
        "access": {"services", "selectors", "client_ids", "schemas", "exceptions", "models"},
        "aggregation": {"selectors", "models"},
        "storage": {"exceptions", "models"},
        "gateway": set(),
    }.items()
}
# The data layer at the top of the package: it serves the layers above and never reaches up into them.
DATA_LAYER = ("conf", "models", "selectors", "services", "client_ids", "schemas", "exceptions", "connectors")
ABOVE_DATA_LAYER = {"api", "access", "gateway", "admin", "dashboard"}


def _imported_parts(path: Path) -> set[str]:
    """The first part under ``fma_django_connectors`` of every module ``path`` imports from the package."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = node.module.split(".")
            if names[0] != "fma_django_connectors":
                continue
            if len(names) > 1:
                parts.add(names[1])
            else:
                parts.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            parts.update(
                alias.name.split(".")[1] for alias in node.names if alias.name.startswith("fma_django_connectors.")
            )
    return parts


def _sources(part: str) -> list[Path]:
    folder = PACKAGE / part
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{part}.py"]


@pytest.mark.parametrize("subpackage", sorted(ALLOWED))
def test_subpackage_imports_only_what_its_layer_allows(subpackage: str) -> None:
    sources = _sources(subpackage)
    assert len(sources) > 1
    for path in sources:
        reached = _imported_parts(path) - {subpackage}
        assert reached <= ALLOWED[subpackage], f"{path.relative_to(PACKAGE)} imports {reached - ALLOWED[subpackage]}"


@pytest.mark.parametrize("part", DATA_LAYER)
def test_data_layer_never_imports_upwards(part: str) -> None:
    for path in _sources(part):
        upward = _imported_parts(path) & ABOVE_DATA_LAYER
        assert not upward, f"{path.relative_to(PACKAGE)} imports {upward}"


@pytest.mark.parametrize("subpackage", sorted(ALLOWED))
def test_subpackage_states_its_layer_rule(subpackage: str) -> None:
    docstring = ast.get_docstring(ast.parse((PACKAGE / subpackage / "__init__.py").read_text()))
    assert docstring
    assert "Layer rule:" in docstring
