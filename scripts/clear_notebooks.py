"""Strip outputs, execution counts and widget state from notebooks, in place.

Usage: python scripts/clear_notebooks.py [NOTEBOOK ...]   (default: every book/**/*.ipynb)
tests/test_notebooks_clean.py fails on any notebook that this script would change.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def book_notebooks() -> list[Path]:
    return sorted(
        p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
    )


def problems(nb) -> list[str]:
    """What makes a notebook 'not clean'; empty when it is clean."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {i}: {len(cell.outputs)} output(s)")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i}: execution_count={cell.execution_count}")
        if "execution" in cell.get("metadata", {}):
            found.append(f"cell {i}: execution timing metadata")
    if "widgets" in nb.metadata:
        found.append("notebook metadata holds widget state")
    return found


def clear(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or book_notebooks()
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if problems(nb):
            clear(nb)
            nbformat.write(nb, path)
            print(f"cleared {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
