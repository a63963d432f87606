"""The exercise solutions of a lesson notebook, as its solution cells define them."""

from __future__ import annotations

from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def solution(notebook: str, name: str, namespace: dict):
    """The function ``name`` as the one solution cell of ``notebook`` that defines it, run in
    ``namespace`` (the names the lesson imported before it)."""
    cells = [c.source for c in nbformat.read(NOTEBOOKS / notebook, as_version=4).cells
             if "solution" in c.get("metadata", {}).get("tags", []) and f"def {name}(" in c.source]
    assert len(cells) == 1, f"expected one solution cell of {notebook} defining {name}, found {len(cells)}"
    namespace = dict(namespace)
    exec(cells[0], namespace)
    return namespace[name]
