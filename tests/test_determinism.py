"""A chapter executed twice prints the same numbers (issue: determinism of the book).

Executes one whole chapter twice in fresh kernels (nbclient, as nbmake does) and compares
every text output, stream and ``text/plain`` result, cell by cell. Images are not compared
(PNG encoders may embed metadata); the numbers they are drawn from are printed or glued.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = ROOT / "book" / "part3" / "02_predictive_quantization.ipynb"


def _texts(nb: nbformat.NotebookNode) -> list[str]:
    """Per cell, its printed text and the ``text/plain`` of its result, in order.

    A cell's stream output is joined into one string first: how the kernel splits a print into
    stream messages depends on timing (a loaded machine sends the newline in a message of its
    own), and that is not a difference in what the chapter printed. Displayed objects (an
    explorer's live widgets, figures) are left out: their numbers are printed or glued.
    """
    out = []
    for i, cell in enumerate(nb.cells):
        streams = "".join(o["text"] for o in cell.get("outputs", [])
                          if o.get("output_type") == "stream")
        if streams:
            out.append(f"{i}:{streams}")
        out += [f"{i}:{o['data']['text/plain']}" for o in cell.get("outputs", [])
                if o.get("output_type") == "execute_result" and "text/plain" in o["data"]]
    return out


@pytest.mark.slow
def test_a_chapter_prints_the_same_numbers_twice(tmp_path):
    from nbclient import NotebookClient

    runs = []
    for _ in range(2):
        nb = nbformat.read(CHAPTER, as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(CHAPTER.parent)}}).execute()
        runs.append(_texts(nb))
    assert len(runs[0]) > 5, "the chapter printed almost nothing"
    assert runs[0] == runs[1]
