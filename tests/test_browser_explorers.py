"""Browser tests of the kernel-free explorers (inwhale.viz.explorer) on static pages.

* The demo page of ``test_browser_widgets`` (executed with nbclient, built with the book's
  real _config.yml): the explorer appears as its static HTML (not as the live widget view its
  output also carries), every control moved to each end changes the picture and its value
  label, the keyboard moves the slider, and the kernel-only ``live_slider`` shows its start
  picture and a kernel note instead of a control.
* EVERY chapter page of the built book (_build/html, or ``$INWHALE_BOOK_HTML``): at least one explorer; every control
  of every explorer, moved to each end, changes the picture (the ``img`` src) and its value
  label; and no ipywidgets control (slider, dropdown, radio buttons) on the page, since on a
  static page it would move and change nothing.

Headless Chromium with every request off 127.0.0.1 blocked; fixtures from
``test_browser_widgets`` (skipped loudly without Chromium, failed under CI=true).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_browser_widgets import _offline_page, browser, demo_site, serve  # noqa: F401

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
# INWHALE_BOOK_HTML: check another build (e.g. a few chapters built on their own)
BOOK_HTML = Path(os.environ.get("INWHALE_BOOK_HTML", ROOT / "_build" / "html"))
# ipywidgets controls; on a static page they move and change nothing.
KERNEL_CONTROLS = ".widget-slider, .widget-dropdown, .widget-radio, .widget-toggle-buttons"


def _chapters() -> list[Path]:
    return sorted(BOOK_HTML.glob("book/part*/*.html")) if BOOK_HTML.exists() else []


def _state(explorer) -> tuple[str, list[str]]:
    """(image src, value labels) of one explorer."""
    src = explorer.locator("img.iwx-frame").get_attribute("src")
    return src, explorer.locator("output.iwx-value").all_inner_texts()


def _move_to_ends(explorer, k: int) -> list[tuple[str, list[str]]]:
    """Set control ``k`` of ``explorer`` to its first and then its last value; the states."""
    states = []
    ranges = explorer.locator(f"input[type=range][data-iwx='{k}']")
    radios = explorer.locator(f"input[type=radio][data-iwx='{k}']")
    select = explorer.locator(f"select[data-iwx='{k}']")
    for end in ("first", "last"):
        if ranges.count():
            ranges.first.focus()
            ranges.first.press("Home" if end == "first" else "End")  # keyboard-operable
        elif radios.count():
            (radios.first if end == "first" else radios.last).check()
        else:
            n = select.locator("option").count()
            select.select_option(index=0 if end == "first" else n - 1)
        states.append(_state(explorer))
    return states


def _check_explorers(page, where: str) -> int:
    """Every control of every explorer on ``page`` changes the picture and its label."""
    explorers = page.locator(".inwhale-explorer")
    for e in range(explorers.count()):
        ex = explorers.nth(e)
        ex.scroll_into_view_if_needed()
        n_controls = ex.locator("output.iwx-value").count()
        assert n_controls > 0, f"{where}: explorer {e} has no value labels"
        for k in range(n_controls):
            (src0, labels0), (src1, labels1) = _move_to_ends(ex, k)
            name = ex.evaluate(
                "(e, k) => JSON.parse(e.querySelector('script.iwx-data').textContent).names[k]", k)
            assert src0 != src1, f"{where}: explorer {e}, control {name}: picture unchanged"
            assert labels0[k] != labels1[k], f"{where}: explorer {e}, control {name}: " \
                f"value label unchanged ({labels0[k]!r})"
        img = ex.locator("img.iwx-frame")
        assert img.evaluate("i => i.complete && i.naturalWidth > 0"), f"{where}: frame broken"
    return explorers.count()


def test_demo_explorer_is_static_html_and_every_control_works(browser, demo_site):  # noqa: F811
    url, _ = demo_site
    page, blocked, errors = _offline_page(browser)
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)
    assert page.locator(".inwhale-explorer").count() == 1
    # the live view the explorer's output also carries is not what the static page shows
    assert page.locator(".widget-radio, .widget-selection-slider").count() == 0
    assert _check_explorers(page, "demo") == 1
    ex = page.locator(".inwhale-explorer").first
    slider = ex.locator("input[type=range]")
    slider.focus()
    slider.press("Home")
    slider.press("ArrowRight")
    assert ex.locator("output.iwx-value").first.inner_text() == "3"
    assert slider.get_attribute("aria-valuetext") == "3"
    assert "bits 3" in ex.locator("img.iwx-frame").get_attribute("alt")
    assert ex.locator("label[for]").first.inner_text() == "bits"
    assert not blocked and not errors, f"blocked {blocked}, JS errors {errors}"
    page.close()


def test_demo_kernel_only_panel_shows_its_start_picture_and_a_note(browser, demo_site):  # noqa: F811
    url, _ = demo_site
    page, _, errors = _offline_page(browser)
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)
    panel = page.locator(".inwhale-kernel-only")
    assert panel.count() == 1
    assert panel.locator("img").evaluate("i => i.complete && i.naturalWidth > 0")
    note = panel.locator(".iwx-kernel-note").inner_text()
    assert "need a running Python kernel" in note and "bits = 5" in note
    assert panel.locator("input, select, .jupyter-widgets").count() == 0
    # the demo page's one deliberate ipywidget (test_browser_widgets) is the only slider
    assert page.locator(".widget-slider").count() == 1
    assert not errors, errors
    page.close()


@pytest.fixture(scope="module")
def book(serve):  # noqa: F811
    if not _chapters():
        pytest.skip("no built book in _build/html (run scripts/test.sh or build_book.sh)")
    return serve(BOOK_HTML)


@pytest.mark.parametrize("chapter", _chapters(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_chapter_explorers(browser, book, chapter):  # noqa: F811
    rel = chapter.relative_to(BOOK_HTML).as_posix()
    page, blocked, errors = _offline_page(browser)
    page.goto(f"{book}/{rel}", wait_until="load")
    page.wait_for_timeout(300)  # widget views, if any, render after load
    assert _check_explorers(page, rel) >= 1, f"{rel}: no explorer"
    dead = page.locator(KERNEL_CONTROLS).count()
    assert dead == 0, f"{rel}: {dead} ipywidgets control(s) that need a kernel"
    assert not blocked and not errors, f"{rel}: blocked {blocked}, JS errors {errors}"
    page.close()
