"""Per chapter of the built book: explorers, their controls and frames, and the page weight.

Usage: python scripts/page_report.py [_build/html] [--json OUT.json]

Reads the built pages (``_build/html/book/part*/*.html``, made by ``scripts/build_book.sh``
or ``scripts/test.sh``) and prints a Markdown table, one row per chapter:

* ``explorers``: kernel-free explorers (``inwhale.viz.explorer``; ``frame_slider`` is one
  with a single control), ``controls``: their controls, ``frames``: their pre-rendered
  pictures;
* ``largest explorer``: the bytes of the biggest explorer's HTML (all frames, base64) — the
  quantity :data:`inwhale.viz.explorer.DEFAULT_MAX_BYTES` budgets (2 MB);
* ``page``: the page's HTML plus the local images it shows (``_images/…``), i.e. what a reader
  downloads for the chapter beyond the theme's shared CSS/JS and fonts.

Needs nothing beyond the standard library.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

EXPLORER = re.compile(r'<div class="inwhale-explorer"')
DATA = re.compile(r'<script type="application/json" class="iwx-data">(.*?)</script>', re.S)
IMG = re.compile(r'<img[^>]+src="((?:\.\./)*_images/[^"]+)"')


def explorers(page: str) -> list[dict[str, int]]:
    """Controls, frames and bytes of every explorer on one page."""
    found = []
    starts = [m.start() for m in EXPLORER.finditer(page)]
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(page)
        chunk = page[start:end]
        data = DATA.search(chunk)
        if data is None:
            continue
        payload = json.loads(data.group(1).replace("<\\/", "</"))
        # the explorer ends with the script that follows its data
        script_end = chunk.find("</script>", data.end())
        size = len(chunk[: script_end + 9].encode()) if script_end > 0 else len(chunk.encode())
        found.append({"controls": len(payload["names"]),
                      "frames": len(payload["frames"]),
                      "bytes": size})
    return found


def report(html_dir: Path) -> list[dict[str, object]]:
    """One record per chapter page under ``html_dir/book/part*/``."""
    rows = []
    for path in sorted(html_dir.glob("book/part*/*.html")):
        page = path.read_text(encoding="utf-8")
        ex = explorers(page)
        images = {src for src in IMG.findall(page)}
        image_bytes = sum((path.parent / src).stat().st_size for src in images
                          if (path.parent / src).exists())
        rows.append({
            "chapter": str(path.relative_to(html_dir)),
            "explorers": len(ex),
            "controls": sum(e["controls"] for e in ex),
            "frames": sum(e["frames"] for e in ex),
            "largest_explorer_bytes": max((e["bytes"] for e in ex), default=0),
            "page_bytes": len(page.encode()) + image_bytes,
        })
    return rows


def main() -> None:
    args = sys.argv[1:]
    out = None
    if "--json" in args:
        i = args.index("--json")
        out = Path(args[i + 1])
        del args[i : i + 2]
    html_dir = Path(args[0] if args else "_build/html")
    rows = report(html_dir)
    if not rows:
        sys.exit(f"no chapter pages under {html_dir}/book/part*/ — build the book first")
    print("| chapter | explorers | controls | frames | largest explorer | page |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['chapter']} | {r['explorers']} | {r['controls']} | {r['frames']} | "
              f"{r['largest_explorer_bytes'] / 1e3:,.0f} kB | {r['page_bytes'] / 1e6:.2f} MB |")
    print(f"\n{len(rows)} chapters, {sum(r['explorers'] for r in rows)} explorers, "
          f"{sum(r['controls'] for r in rows)} controls; heaviest page "
          f"{max(r['page_bytes'] for r in rows) / 1e6:.2f} MB")
    if out:
        out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
