"""The front matter agrees with the book it introduces.

* The intro's outline names every part of the table of contents (the captions that
  scripts/make_toc.py writes) and links every chapter, in the sidebar's order.
* The launch buttons' paths have no "/./" (``repository.path_to_book`` must be empty).
* The bibliography page carries no notes to maintainers.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _parts() -> list[tuple[str, str]]:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from make_toc import PARTS
    finally:
        sys.path.pop(0)
    return PARTS


def test_intro_outline_matches_the_table_of_contents():
    intro = (ROOT / "book" / "intro.md").read_text()
    outline = intro[intro.index("## How the book is organised"):]
    for folder, caption in _parts():
        if (ROOT / "book" / folder).is_dir():
            assert f"**{caption}" in outline, f"intro outline lacks the part {caption!r}"
    linked = re.findall(r"\{doc\}`(part\d/[^`]+)`", outline)
    chapters = sorted(
        p.relative_to(ROOT / "book").with_suffix("").as_posix()
        for p in (ROOT / "book").glob("part*/*.ipynb")
    )
    assert linked == chapters, "intro outline and chapters differ: " + str(
        sorted(set(linked) ^ set(chapters))
    )


def test_launch_paths_have_no_dot_segment():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    path = config["repository"].get("path_to_book", "")
    assert path.strip("/") in ("", "book") and path != ".", path


def test_bibliography_page_speaks_to_readers():
    text = (ROOT / "book" / "bibliography.md").read_text()
    for note in ("Cite them", "should not", "directive", "references.bib"):
        assert note not in text, f"maintainer note on the bibliography page: {note!r}"
