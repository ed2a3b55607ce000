"""Print each notebook's run time from nbmake's JUnit XML, then the ten slowest.

Usage: python scripts/nb_report.py _build/nbmake-junit.xml [--json _build/timings/notebooks.json]
                                  [--executed STAGE_DIR] [--status-page PAGE.md]
(the JSON, {notebook: seconds}, is read by benchmarks/run.py). With --status-page, the book's
execution status page is written (per chapter: seconds, pass/fail, device, torch version,
date of the run; scripts/test.sh writes it into the staged book as book/status.md).
With --executed, the executed notebooks' cell timestamps are read too, and any wait of over
IDLE_S seconds between one cell's reply and the next cell's start is printed: the kernel was
idle and the client was waiting (see scripts/nbclient_poll.py).
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


STATUS_HEADER = """# Execution status

Every chapter is executed from top to bottom when the book is built; this page is written by
that run (`scripts/test.sh` or `scripts/build_book.sh`, from the notebooks' JUnit report).
A failed chapter fails the build, so a published book shows only passes here.
"""


def book_path(name: str) -> str:
    """'part1/01_x.ipynb' (as the JUnit report names it) -> 'book/part1/01_x.ipynb'."""
    return name if name.startswith("book/") else f"book/{name}"


def _title(notebook: Path) -> str:
    """The first Markdown heading of a notebook (its chapter title)."""
    try:
        for cell in json.loads(notebook.read_text())["cells"]:
            for line in "".join(cell["source"]).splitlines():
                if cell["cell_type"] == "markdown" and line.startswith("# "):
                    return line[2:].strip()
    except (OSError, ValueError, KeyError):
        pass
    return notebook.stem


def _environment() -> tuple[str, str]:
    """(device, torch version) of this environment: the one the kernels ran in."""
    import os

    try:
        import torch
    except ImportError:
        return "unknown", "not installed"
    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    else:
        device = f"cpu ({os.cpu_count()} cores)"
    return device, torch.__version__


def status_page(
    rows: list[tuple[str, float, str]], root: Path, when: str, dates: dict[str, str] | None = None
) -> str:
    """Markdown of the execution status page; ``root`` holds the notebooks (for titles).

    ``when`` is the date of the run; ``dates`` (notebook -> date) overrides it per chapter
    for results reused from an earlier run (scripts/nb_cache.py).
    """
    device, torch_version = _environment()
    lines = [
        STATUS_HEADER,
        f"Last run: **{when}** on **{device}**, PyTorch **{torch_version}**, "
        f"{len(rows)} chapters, {sum(t for _, t, _ in rows):.0f} s of notebook time in all.",
        "",
        "| chapter | seconds | status | device | torch | date |",
        "|---|---:|---|---|---|---|",
    ]
    for name, seconds, status in sorted(rows):
        name = book_path(name)
        doc = "/" + name.removesuffix(".ipynb")
        title = _title(root / name).replace("|", "\\|")
        verdict = "pass" if status == "ok" else status.lower()
        lines.append(
            f"| {{doc}}`{title} <{doc}>` | {seconds:.1f} | {verdict} | {device} | "
            f"{torch_version} | {(dates or {}).get(name, when)} |"
        )
    return "\n".join(lines) + "\n"


def _run_date(path: Path) -> str:
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    stamp = suite.get("timestamp") if suite is not None else None
    if stamp:
        return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M")
    return datetime.now().strftime("%Y-%m-%d %H:%M")


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
    if "--status-page" in argv:
        page = Path(argv[argv.index("--status-page") + 1])
        root = page.parent.parent  # PAGE is <book root>/book/status.md
        page.write_text(status_page(rows, root, _run_date(Path(argv[0]))))
        print(f"[notebooks] status page: {page}")
    if "--json" in argv:
        out = Path(argv[argv.index("--json") + 1])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({name: round(t, 2) for name, t, _ in rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
