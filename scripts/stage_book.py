"""Copy the book's sources into a staging folder.

scripts/test.sh stages into a folder outside the repository (nbmake skips any notebook
whose path has a ``_build`` folder in it), executes the staged notebooks in place
(nbmake --overwrite), so their outputs land in the copy and never in the working tree, then
builds the copy with execution switched off. The staged _config.yml is the real one with
``execute.execute_notebooks: 'off'``.

Usage: python scripts/stage_book.py --dest DIR
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# What a book build needs, relative to the repository root.
FILES = ["_config.yml", "_toc.yml", "references.bib"]
DIRS = ["book", "_static", "scripts/sphinx"]
IGNORE = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc")


def write_config(dest: Path, execute: str = "off", src: Path = ROOT / "_config.yml") -> None:
    """Write src (_config.yml) into dest with execute_notebooks set to ``execute``."""
    config = yaml.safe_load(src.read_text())
    config.setdefault("execute", {})["execute_notebooks"] = execute
    (dest / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def stage(dest: Path, execute: str = "off") -> list[Path]:
    """Fresh copy of the book sources in dest; returns the staged notebooks."""
    dest = dest.resolve()
    if dest == ROOT or ROOT.is_relative_to(dest):
        raise ValueError(f"refusing to stage into {dest}")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in FILES:
        shutil.copy2(ROOT / name, dest / name)
    for name in DIRS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=IGNORE)
    write_config(dest, execute)
    return sorted((dest / "book").rglob("*.ipynb"))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, required=True)
    args = parser.parse_args(argv)
    notebooks = stage(args.dest)
    print(f"[stage] {len(notebooks)} notebook(s) staged in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
