"""Markdown tables for chapter outputs (the book has no pandas)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def _cell(value: Any) -> str:
    """One table cell: ``|`` escaped (it would end the cell), newlines folded to spaces."""
    return str(value).replace("|", r"\|").replace("\n", " ")


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    r"""Format rows as a GitHub/MyST Markdown table, escaping pipes inside cells.

    A ``|`` inside a cell (``max |x|``, or maths such as ``$|v|$``) would otherwise end the
    cell and break the table into raw text; it is written ``\|`` instead.

    Args:
        header: the column titles.
        rows: one sequence per row, each as long as ``header``.

    Returns:
        The table as Markdown text.

    Raises:
        ValueError: if ``header`` is empty or a row has a different number of cells.

    Example:
        >>> print(markdown_table(["x", "max |x|"], [[1, 2.5]]))
        | x | max \|x\| |
        |---|---|
        | 1 | 2.5 |
    """
    header = list(header)
    if not header:
        raise ValueError("header must name at least one column")
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    for i, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"rows[{i}] has {len(row)} cells, header has {len(header)}")
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


def show_table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> None:
    """Display :func:`markdown_table` as rendered Markdown in a notebook."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(header, rows)))
