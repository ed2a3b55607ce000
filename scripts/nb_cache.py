"""Reuse executed chapters whose inputs have not changed (scripts/build_book.sh).

A chapter's result depends on its notebook, on the library it imports and on the installed
packages, so an executed notebook is stored under the key

    sha256(notebook bytes, every inwhale/**/*.py file (path and bytes),
           requirements.txt, pyproject.toml, the torch version)

in ``_build/nbcache/<key>.ipynb``, next to ``<key>.json`` (seconds, date, device, torch of
that run). ``restore`` copies every stored result over the staged notebook and prints the
notebooks still to execute; ``save`` stores the notebooks that passed in nbmake's JUnit
report and writes the execution status page for all chapters (the fresh and the reused).

Usage: python scripts/nb_cache.py restore STAGE            (prints the notebooks to run)
       python scripts/nb_cache.py save STAGE JUNIT_XML     (stores passes, writes status page)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nb_report import _environment, book_path, read_times, status_page

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "_build" / "nbcache"


def library_hash() -> str:
    """Hash of everything but the notebook that a chapter's outputs depend on."""
    h = hashlib.sha256()
    for path in sorted((ROOT / "inwhale").rglob("*.py")):
        h.update(path.relative_to(ROOT).as_posix().encode())
        h.update(path.read_bytes())
    for name in ("requirements.txt", "pyproject.toml"):
        if (ROOT / name).exists():
            h.update(name.encode())
            h.update((ROOT / name).read_bytes())
    h.update(_environment()[1].encode())  # the torch version
    return h.hexdigest()


def key(notebook: Path, library: str) -> str:
    """Cache key of one (unexecuted) notebook."""
    return hashlib.sha256(library.encode() + notebook.read_bytes()).hexdigest()[:32]


def _notebooks(stage: Path) -> list[Path]:
    found = (stage / "book").rglob("*.ipynb")
    return sorted(p for p in found if ".ipynb_checkpoints" not in p.parts)


def restore(stage: Path) -> list[Path]:
    """Put cached results in place in ``stage``; return the notebooks that must still run.

    The keys of the staged (unexecuted) notebooks are written to ``stage/.nbcache-keys.json``
    for ``save``, which sees the notebooks only after nbmake has overwritten them.
    """
    library = library_hash()
    keys, todo = {}, []
    for nb in _notebooks(stage):
        rel = nb.relative_to(stage).as_posix()
        keys[rel] = k = key(nb, library)
        if (CACHE / f"{k}.ipynb").exists() and (CACHE / f"{k}.json").exists():
            shutil.copy2(CACHE / f"{k}.ipynb", nb)
        else:
            todo.append(nb)
    (stage / ".nbcache-keys.json").write_text(json.dumps(keys, indent=1))
    return todo


def save(stage: Path, junit: Path | None) -> int:
    """Store the notebooks that passed; write stage/book/status.md for every chapter."""
    keys = json.loads((stage / ".nbcache-keys.json").read_text())
    device, torch_version = _environment()
    now = datetime.now().strftime("%Y-%m-%d %H:%M")
    ran = {book_path(n): (t, status) for n, t, status in read_times(junit)} if junit else {}
    CACHE.mkdir(parents=True, exist_ok=True)
    rows, stored = [], 0
    for rel, k in sorted(keys.items()):
        meta_path = CACHE / f"{k}.json"
        if rel in ran:
            seconds, status = ran[rel]
            meta = {"seconds": seconds, "status": status, "date": now, "device": device,
                    "torch": torch_version}
            if status == "ok":
                shutil.copy2(stage / rel, CACHE / f"{k}.ipynb")
                meta_path.write_text(json.dumps(meta))
                stored += 1
        elif meta_path.exists():
            meta = json.loads(meta_path.read_text())
        else:
            meta = {"seconds": 0.0, "status": "not run", "date": now}
        rows.append((rel, meta["seconds"], meta["status"], meta.get("date", now)))
    # one status page; each chapter shows the date of the run that produced its outputs
    dates = {r: d for r, _, _, d in rows}
    page = status_page([(r, s, st) for r, s, st, _ in rows], stage, max(dates.values()), dates)
    (stage / "book" / "status.md").write_text(page)
    reused = len(rows) - len(ran)
    print(f"[nbcache] {len(ran)} executed ({stored} stored), {reused} reused from {CACHE}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "restore":
        for nb in restore(Path(argv[1])):
            print(nb)
        return 0
    if len(argv) >= 2 and argv[0] == "save":
        junit = Path(argv[2]) if len(argv) > 2 and Path(argv[2]).exists() else None
        return save(Path(argv[1]), junit)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
