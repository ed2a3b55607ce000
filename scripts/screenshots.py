"""Screenshots of the built book as a reader sees it, for reviews and closing notes.

Usage: python scripts/screenshots.py [--html _build/html] [--out _build/screenshots]

Serves the built pages on 127.0.0.1 (nothing else is reachable) and saves, with the headless
Chromium the browser tests use:

* ``explorer-start.png`` / ``explorer-moved.png``: the first explorer of the uniform
  quantizers chapter at 1280 px, at its start values and with every control moved to its
  last value (the value labels must differ, or the script fails);
* ``results-table.png``: the first table of the Part VI results chapter at 1280 px;
* ``gptq-equation-390px.png``: the phone screen (390 px wide) with the GPTQ chapter's
  second display equation, the OBS update δ_F and its loss L_j (the widest), in view.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_pdf import CHROMIUM, CHROMIUM_ARGS, local_only, serve

EXPLORER_PAGE = "book/part1/02_uniform_quantizers.html"
RESULTS_PAGE = "book/part6/09_results.html"
GPTQ_PAGE = "book/part6/04_gptq.html"


def _move_all_to_last(explorer) -> None:
    """Set every control of one explorer to its last value (slider, radio or dropdown)."""
    for slider in explorer.locator("input[type=range]").all():
        slider.evaluate("(e) => { e.value = e.max; e.dispatchEvent(new Event('input', "
                        "{bubbles: true})); }")
    for k in sorted({r.get_attribute("data-iwx")
                     for r in explorer.locator("input[type=radio]").all()}):
        explorer.locator(f"input[type=radio][data-iwx='{k}']").last.check()
    for select in explorer.locator("select").all():
        last = select.locator("option").last.get_attribute("value")
        select.select_option(last)


def shoot(html: Path, out: Path) -> list[Path]:
    """Take the four screenshots; return their paths."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with serve(html) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        local_only(page, base)
        page.goto(f"{base}/{EXPLORER_PAGE}", wait_until="load")
        ex = page.locator(".inwhale-explorer").first
        ex.scroll_into_view_if_needed()
        labels0 = ex.locator("output.iwx-value").all_inner_texts()
        saved.append(out / "explorer-start.png")
        ex.screenshot(path=saved[-1])
        _move_all_to_last(ex)
        labels1 = ex.locator("output.iwx-value").all_inner_texts()
        if labels0 == labels1:
            raise SystemExit(f"{EXPLORER_PAGE}: the explorer's labels did not change")
        saved.append(out / "explorer-moved.png")
        ex.screenshot(path=saved[-1])
        print(f"explorer: {labels0} -> {labels1}")

        # tall enough for the whole table: no sticky header drawn over its rows
        page.set_viewport_size({"width": 1280, "height": 2400})
        page.goto(f"{base}/{RESULTS_PAGE}", wait_until="load")
        table = page.locator("article.bd-article table").first
        table.scroll_into_view_if_needed()
        saved.append(out / "results-table.png")
        table.screenshot(path=saved[-1])

        phone = browser.new_page(viewport={"width": 390, "height": 844},
                                 device_scale_factor=2)
        local_only(phone, base)
        phone.goto(f"{base}/{GPTQ_PAGE}", wait_until="load")
        phone.wait_for_selector("article.bd-article mjx-container", timeout=30_000)
        phone.evaluate("() => MathJax.startup.promise")   # typesetting finished
        eq = phone.locator("article.bd-article div.math").nth(1)
        eq.evaluate("(e) => e.scrollIntoView({block: 'center'})")
        saved.append(out / "gptq-equation-390px.png")
        phone.screenshot(path=saved[-1])
        browser.close()
    return saved


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--html", type=Path, default=Path("_build/html"))
    ap.add_argument("--out", type=Path, default=Path("_build/screenshots"))
    args = ap.parse_args(argv)
    for p in shoot(args.html, args.out):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
