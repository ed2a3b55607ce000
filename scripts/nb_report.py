"""Print each notebook's run time from nbmake's JUnit XML, then the ten slowest.

Usage: python scripts/nb_report.py _build/nbmake-junit.xml [--json _build/timings/notebooks.json]
                                  [--executed STAGE_DIR]
(the JSON, {notebook: seconds}, is read by benchmarks/run.py). With --executed, the executed
notebooks' cell timestamps are read too, and any wait of over IDLE_S seconds between one cell's
reply and the next cell's start is printed: the kernel was idle and the client was waiting
(see scripts/nbclient_poll.py).
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

IDLE_S = 10.0


def _pretty(name: str) -> str:
    """'inwhale-stage-ab12.book.part1.01_slug.ipynb' -> 'book/part1/01_slug.ipynb'."""
    stem = name.removesuffix(".ipynb")
    if ".book." in f".{stem}":
        stem = "book." + f".{stem}".split(".book.", 1)[1]
    return stem.replace(".", "/") + ".ipynb"


def read_times(path: Path) -> list[tuple[str, float, str]]:
    rows = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = _pretty(case.get("classname") or case.get("name", "?"))
        status = "ok"
        for tag in ("failure", "error"):
            if case.find(tag) is not None:
                status = "FAILED"
        if case.find("skipped") is not None:
            status = "skipped"
        rows.append((name, float(case.get("time", 0.0)), status))
    return rows


def idle_gaps(notebook: Path) -> list[tuple[int, float]]:
    """(cell index, seconds) of each wait over IDLE_S between a cell's reply and the next cell."""
    def when(stamp: str) -> datetime:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    gaps, previous = [], None
    for i, cell in enumerate(json.loads(notebook.read_text())["cells"]):
        e = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" not in e or "shell.execute_reply" not in e:
            continue
        if previous is not None:
            wait = (when(e["iopub.execute_input"]) - previous[1]).total_seconds()
            if wait > IDLE_S:
                gaps.append((previous[0], wait))
        previous = (i, when(e["shell.execute_reply"]))
    return gaps


def main(argv: list[str]) -> int:
    if not argv or not Path(argv[0]).exists():
        print("[notebooks] no JUnit report found")
        return 0
    rows = read_times(Path(argv[0]))
    print(f"[notebooks] {len(rows)} notebook(s), total {sum(t for _, t, _ in rows):.1f}s")
    for name, t, status in sorted(rows):
        print(f"  {t:7.1f}s  {status:7s}  {name}")
    print("[notebooks] slowest ten:")
    for name, t, status in sorted(rows, key=lambda r: -r[1])[:10]:
        print(f"  {t:7.1f}s  {status:7s}  {name}")
    if "--executed" in argv:
        stage = Path(argv[argv.index("--executed") + 1])
        found = [(nb, g) for nb in sorted(stage.glob("book/**/*.ipynb")) for g in idle_gaps(nb)]
        print(f"[notebooks] idle waits over {IDLE_S:.0f} s between cells: {len(found) or 'none'}")
        for nb, (cell, wait) in found:
            print(f"  {wait:7.1f}s  after cell {cell} of {nb.relative_to(stage).as_posix()}")
    if "--json" in argv:
        out = Path(argv[argv.index("--json") + 1])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({name: round(t, 2) for name, t, _ in rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
