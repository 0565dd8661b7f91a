"""The layering rule of DESIGN.md: pages call hitl_core; hitl_core never imports streamlit."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "hitl_core"
FORBIDDEN = ("streamlit", "hitl_ui", "pages")


def imported_modules(source: str) -> set[str]:
    """Top-level names of every module a source file imports, wherever the import statement sits."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
              or isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__"):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names.add(node.args[0].value.split(".")[0])
    return names


def test_the_import_finder_catches_every_way_to_import_streamlit() -> None:
    source = """
import os
import streamlit as st
from streamlit.runtime import exists
def later():
    import streamlit.components.v1
    return importlib.import_module("streamlit")
"""
    assert "streamlit" in imported_modules(source)
    assert imported_modules("from streamlit import cache_data") == {"streamlit"}
    assert imported_modules("x = __import__('streamlit')") == {"streamlit"}
    assert imported_modules("from . import data\nimport numpy as np") == {"numpy"}


def test_core_package_is_found() -> None:
    assert (CORE / "__init__.py").exists()
    assert len(list(CORE.rglob("*.py"))) >= 10


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_never_imports_streamlit_or_the_ui(path: Path) -> None:
    imported = imported_modules(path.read_text(encoding="utf-8"))
    assert not imported & set(FORBIDDEN), f"{path.name} imports {sorted(imported & set(FORBIDDEN))}"
