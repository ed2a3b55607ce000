"""Print each notebook's run time from nbmake's JUnit XML, then the ten slowest.

Usage: python scripts/nb_report.py _build/nbmake-junit.xml [--json _build/timings/notebooks.json]
(the JSON, {notebook: seconds}, is read by benchmarks/run.py)
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


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
    if "--json" in argv:
        out = Path(argv[argv.index("--json") + 1])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({name: round(t, 2) for name, t, _ in rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
