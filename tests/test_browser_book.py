"""Browser tests of the chapter pages themselves (the built book in _build/html).

For every chapter page, in headless Chromium with every request off 127.0.0.1 blocked:

* every figure image has loaded (``naturalWidth > 0``);
* math has been typeset by the self-hosted MathJax;
* the kernel-free frame slider (matplotlib ``to_jshtml``) changes the displayed frame when
  the slider moves;
* the launch buttons (Colab, Binder) and the download button point at this chapter's notebook;
* every citation links to an entry that exists on the bibliography page.

A screenshot of each chapter page is saved to ``test-artifacts/`` for people to look at.
Fixtures (the Chromium instance, the local server) come from ``test_browser_widgets``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_browser_widgets import _offline_page, browser, serve  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
BOOK_HTML = ROOT / "_build" / "html"
ARTIFACTS = ROOT / "test-artifacts"


def _figure_cells(notebook: Path) -> int:
    """Code cells of ``notebook`` that make a matplotlib figure outside any function.

    Each of them must leave at least one figure image on the built page (the inline backend
    shows a figure at the end of its cell); figures drawn inside functions belong to sliders.
    """
    made = re.compile(r"^\S.*\bplt\.(subplots|figure|subplot_mosaic)\(", re.MULTILINE)
    cells = json.loads(notebook.read_text())["cells"]
    return sum(bool(made.search("".join(c["source"]))) for c in cells if c["cell_type"] == "code")


def _chapters() -> list[Path]:
    return sorted(BOOK_HTML.glob("book/part*/*.html")) if BOOK_HTML.exists() else []


@pytest.fixture(scope="module")
def book(serve):  # noqa: F811 (pytest fixture injection)
    if not _chapters():
        pytest.skip("no built book in _build/html (run scripts/test.sh or build_book.sh)")
    return serve(BOOK_HTML)


def _open(browser, base: str, page_path: Path):  # noqa: F811
    page, blocked, errors = _offline_page(browser)
    page.goto(f"{base}/{page_path.relative_to(BOOK_HTML).as_posix()}", wait_until="load")
    return page, blocked, errors


@pytest.mark.parametrize("chapter", _chapters(), ids=lambda p: p.stem)
def test_chapter_page(browser, book, chapter):  # noqa: F811
    page, blocked, errors = _open(browser, book, chapter)
    rel = chapter.relative_to(BOOK_HTML).with_suffix(".ipynb").as_posix()

    # figures: every <img> decoded
    broken = page.evaluate(
        "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.src.slice(0, 80))"
    )
    assert not broken, f"{rel}: images that did not load: {broken}"
    assert page.evaluate("() => document.images.length") > 0, f"{rel}: no figures at all"
    # static figures: one per figure-making cell at least (none at all when the kernels ran
    # with MPLBACKEND=Agg, which the pages' logos and animations alone would not reveal)
    figures = page.locator(".cell_output img:not([id^='_anim_img'])").count()
    expected = _figure_cells(ROOT / rel)
    assert figures >= expected, f"{rel}: {figures} figure images, {expected} figure cells"

    # math: MathJax 3 turns every math span into an mjx-container
    if page.locator(".math").count():
        page.locator("mjx-container").first.wait_for(state="attached", timeout=30_000)

    # kernel-free slider: moving it changes the frame
    sliders = page.locator("input.anim-slider")
    assert sliders.count() > 0, f"{rel}: no kernel-free frame slider"
    s = sliders.first
    anim_img = page.locator("img[id^='_anim_img']").first
    before = anim_img.get_attribute("src")
    last = s.get_attribute("max")
    s.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", last)
    page.wait_for_timeout(200)
    assert anim_img.get_attribute("src") != before, f"{rel}: the frame did not change"

    # launch and download buttons point at this chapter's notebook
    hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a')).map(a => a.href)")
    colab = [h for h in hrefs if "colab.research.google.com" in h]
    binder = [h for h in hrefs if "mybinder.org" in h]
    assert colab and all(h.endswith(rel) for h in colab), f"{rel}: colab links {colab}"
    assert binder and all(rel in h for h in binder), f"{rel}: binder links {binder}"

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{chapter.parent.name}_{chapter.stem}.png"))
    page.close()
    assert not blocked and not errors, f"{rel}: blocked {blocked}, JS errors {errors}"


def test_citations_resolve():
    """Every citation link points at an anchor present on its target page."""
    pages = _chapters()
    if not pages:
        pytest.skip("no built book in _build/html")
    link = re.compile(r'href="([^"#]*bibliography\.html)#([^"]+)"')
    checked, missing = 0, []
    anchors: dict[Path, str] = {}
    for p in pages:
        for target, anchor in link.findall(p.read_text(errors="replace")):
            f = (p.parent / target).resolve()
            text = anchors.setdefault(f, f.read_text(errors="replace") if f.exists() else "")
            checked += 1
            if f'id="{anchor}"' not in text:
                missing.append(f"{p.name} -> {target}#{anchor}")
    assert checked > 20, f"only {checked} citation links found"
    assert not missing, missing[:20]
