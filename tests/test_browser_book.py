"""Browser tests of the chapter pages themselves (the built book in _build/html).

For every chapter page, in headless Chromium with every request off 127.0.0.1 blocked:

* every figure image has loaded (``naturalWidth > 0``);
* math has been typeset by the self-hosted MathJax;
* the page has a kernel-free explorer (``inwhale.viz.explorer``; its controls are moved in
  ``test_browser_explorers``);
* the launch buttons (Colab, Binder) and the download button point at this chapter's notebook;
* every citation links to an entry that exists on the bibliography page.

For EVERY built page (chapters, front and back matter, each API page), at 1280 px (desktop)
and 390 px (phone) wide, the page fails on the whole class of rendering faults a reader
would see:

* a paragraph that starts with ``|`` (a Markdown table shown as raw pipes);
* leftover ``$``, ``$$``, ``\\frac``-style TeX or ``**`` in the rendered text (outside code
  and typeset math);
* an element of the article wider than the content column without its own scroll bar
  (clipped or widening the page);
* a 404 (or any failed request) for a local resource, fonts included;
* stderr or warning output blocks, and progress-bar widgets (tqdm) in cell outputs.

A full-page screenshot (JPEG) of each page at each width goes to ``test-artifacts/<width>/`` and
one of each chapter (desktop viewport) to ``test-artifacts/`` for people to look at.
Fixtures (the Chromium instance, the local server) come from ``test_browser_widgets``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from test_browser_widgets import _offline_page, browser, serve  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
BOOK_HTML = Path(os.environ.get("INWHALE_BOOK_HTML", ROOT / "_build" / "html"))
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

    # kernel-free explorer (inwhale.viz.explorer; frame_slider is one too): every control of
    # every explorer is moved in test_browser_explorers
    assert page.locator(".inwhale-explorer").count() > 0, f"{rel}: no kernel-free explorer"

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


# --------------------------------------------------------------------------- every page
WIDTHS = {"desktop": 1280, "phone": 390}
# Elements whose text is code or typeset math: TeX and ** are expected there.
CODE_OR_MATH = (
    "pre, code, kbd, samp, script, style, textarea, .math, mjx-container, .highlight, "
    ".cell_input, .sig"
)
_TEX_MARK = (
    r"\$|\\(frac|dfrac|sum|prod|hat|tilde|bar|mathrm|mathbf|mathcal|text|left|right|sqrt|"
    r"cdot|times|alpha|beta|gamma|delta|Delta|sigma|lfloor|rfloor|lceil|rceil|operatorname|"
    r"approx|le|ge|leq|geq|quad|in|log|min|max|arg|begin|end)\b|\*\*"
)

# One evaluation in the page returns every fault, as short human-readable strings.
AUDIT_JS = r"""
([codeOrMath, texMark]) => {
  const art = document.querySelector('article.bd-article') || document.querySelector('main');
  const out = {pipes: [], tex: [], wide: [], stderr: [], progress: [], pageWide: null};
  if (!art) { out.pipes.push('no article element'); return out; }
  // 1. paragraphs that start with a pipe
  for (const p of art.querySelectorAll('p')) {
    const s = p.textContent.trim();
    if (s.startsWith('|')) out.pipes.push(s.slice(0, 80));
  }
  // 2. leftover TeX / bold marks in rendered text
  const re = new RegExp(texMark);
  const walker = document.createTreeWalker(art, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(codeOrMath)) continue;
    const m = re.exec(n.textContent);
    if (m) {
      const i = m.index;
      out.tex.push(JSON.stringify(n.textContent.slice(Math.max(0, i - 30), i + 30)));
    }
  }
  // 3. elements wider than the content column without their own scroll bar
  const cs = getComputedStyle(art);
  const ar = art.getBoundingClientRect();
  const right = ar.right - parseFloat(cs.paddingRight) + 1;
  const scrolls = (e) => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
  const bad = [];
  for (const el of art.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || r.right <= right) continue;
    // margin notes sit outside the column by design; MathJax's assistive MathML is clipped
    if (el.closest('aside, .margin, .sidebar, .headerlink, .visually-hidden, mjx-assistive-mml'))
      continue;
    if (getComputedStyle(el).position === 'fixed') continue;
    // fine when an ancestor inside the column scrolls it
    let ok = false;
    for (let a = el.parentElement; a && a !== art; a = a.parentElement) {
      if (scrolls(a) && a.getBoundingClientRect().right <= right) { ok = true; break; }
    }
    if (!ok) bad.push(el);
  }
  for (const el of bad) {  // report the outermost offenders only
    if (bad.some(o => o !== el && o.contains(el))) continue;
    const r = el.getBoundingClientRect();
    const name = el.tagName.toLowerCase() + (el.className && typeof el.className === 'string'
      ? '.' + el.className.trim().split(/\s+/).slice(0, 3).join('.') : '');
    out.wide.push(`${name} ${Math.round(r.right - right)} px past the column: ` +
                  JSON.stringify(el.textContent.trim().slice(0, 50)));
  }
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth + 1)
    out.pageWide = `page is ${doc.scrollWidth} px wide in a ${window.innerWidth} px window`;
  // 4. stderr / warning output blocks
  for (const o of art.querySelectorAll('.stderr, .output.stderr, .output_stderr')) {
    out.stderr.push(o.textContent.trim().slice(0, 100));
  }
  for (const o of art.querySelectorAll('.cell_output')) {
    const m = /\b\w*Warning:.*|\d+%\|[^\n]*/.exec(o.textContent);
    if (m) out.stderr.push(m[0].slice(0, 100));
  }
  // 5. progress bars (tqdm's notebook widget, saved in the widget state or rendered)
  for (const o of art.querySelectorAll('.widget-progress, progress')) {
    out.progress.push(o.className || o.tagName);
  }
  for (const s of document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]')) {
    const m = s.textContent.match(/"(Float|Int)ProgressModel"/g);
    if (m) out.progress.push(`${m.length} progress-bar widget(s) in the saved widget state`);
  }
  return out;
}
"""


def _all_pages() -> list[Path]:
    """Every page of the book: chapters, front and back matter, the API pages."""
    return sorted(BOOK_HTML.glob("book/**/*.html")) if BOOK_HTML.exists() else []


def _wait_for_math(page) -> None:
    """Wait until MathJax has typeset the page (its startup promise, then all pending)."""
    if page.locator(".math").count():
        page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
            " && (MathJax.startup.promise.then(() => { window.__mjDone = true; }), true)",
            timeout=30_000,
        )
        page.wait_for_function("() => window.__mjDone === true", timeout=60_000)


@pytest.mark.parametrize("width", list(WIDTHS), ids=str)
@pytest.mark.parametrize(
    "page_path", _all_pages(), ids=lambda p: p.relative_to(BOOK_HTML).with_suffix("").as_posix()
)
def test_page_renders(browser, book, page_path, width):  # noqa: F811
    """No raw pipes, raw TeX, unscrollable wide elements, local 404s, stderr or progress bars."""
    rel = page_path.relative_to(BOOK_HTML).as_posix()
    page, blocked, errors = _offline_page(browser)
    page.set_viewport_size({"width": WIDTHS[width], "height": 900})
    failed: list[str] = []
    page.on(
        "response",
        lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    page.on(
        "requestfailed",
        lambda r: failed.append(f"failed {r.url}") if r.url not in blocked else None,
    )
    page.goto(f"{book}/{rel}", wait_until="load")
    _wait_for_math(page)
    page.wait_for_timeout(300)  # widget views render after load
    audit = page.evaluate(AUDIT_JS, [CODE_OR_MATH, _TEX_MARK])
    shot = ARTIFACTS / width / (rel.replace("/", "_").removesuffix(".html") + ".jpg")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True, type="jpeg", quality=70)  # JPEG: fast, small
    page.close()

    problems = {
        "paragraphs starting with '|' (raw Markdown tables)": audit["pipes"],
        "raw TeX or ** in rendered text": audit["tex"],
        "wider than the content column, no scroll bar": audit["wide"]
        + ([audit["pageWide"]] if audit["pageWide"] else []),
        "local requests that failed (404s)": failed,
        "stderr / warning output": audit["stderr"],
        "progress-bar widgets": audit["progress"],
        "requests that left 127.0.0.1": blocked,
        "JavaScript errors": errors,
    }
    problems = {k: v[:8] for k, v in problems.items() if v}
    assert not problems, f"{rel} at {WIDTHS[width]} px: " + json.dumps(problems, indent=1)


def test_every_page_is_audited():
    """The audit covers the chapters, the API pages and the back matter (not a subset)."""
    pages = {p.relative_to(BOOK_HTML).as_posix() for p in _all_pages()}
    if not pages:
        pytest.skip("no built book in _build/html")
    assert any(p.startswith("book/api/") for p in pages), "no API pages built"
    assert {"book/intro.html", "book/bibliography.html", "book/api.html"} <= pages
    chapters = {p.relative_to(ROOT).with_suffix(".html").as_posix()
                for p in (ROOT / "book").glob("part*/*.ipynb")}
    assert chapters <= pages, f"chapters not built: {sorted(chapters - pages)}"
