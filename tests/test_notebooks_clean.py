"""Notebooks are committed without outputs: the book build and the tests execute them.

Fix a failure with: python scripts/clear_notebooks.py
"""

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "clear_notebooks", ROOT / "scripts/clear_notebooks.py"
)
clear_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(clear_notebooks)

NOTEBOOKS = clear_notebooks.book_notebooks()


def test_clean_checker_catches_outputs():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1 + 1")
    cell.execution_count = 1
    cell.outputs = [
        nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), cell]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    assert len(clear_notebooks.problems(nb)) == 3
    clear_notebooks.clear(nb)
    assert clear_notebooks.problems(nb) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    found = clear_notebooks.problems(nb)
    assert not found, (
        f"{path.relative_to(ROOT)} is not clean ({'; '.join(found[:5])}). "
        "Run: python scripts/clear_notebooks.py"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_notebook_named_for_reading_order(path):
    """Chapters are book/partN/NN_slug.ipynb, so the TOC's sorted glob is reading order."""
    rel = path.relative_to(ROOT / "book")
    if len(rel.parts) == 2 and rel.parts[0].startswith("part"):
        prefix = rel.name.split("_", 1)[0]
        assert prefix.isdigit() and len(prefix) == 2, f"{rel}: expected NN_slug.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_notebook_writes_no_fixed_paths(path):
    """A chapter must run on any laptop (Windows has no /tmp): no hard-coded scratch paths."""
    nb = nbformat.read(path, as_version=4)
    bad = [i for i, c in enumerate(nb.cells)
           if c.cell_type == "code" and ('"/tmp' in c.source or "'/tmp" in c.source)]
    assert not bad, f"{path.relative_to(ROOT)}: cells {bad} use a hard-coded /tmp path; " \
                    "use tempfile or drop the debugging savefig"
