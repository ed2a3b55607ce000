"""Browser tests: the built pages work with no network and no kernel.

* A demo notebook (IntSlider, matplotlib ``to_jshtml`` animation, math, an
  ``inwhale.viz.explorer`` and a kernel-only ``live_slider``) is executed, built with the
  book's real _config.yml and _static/, served on 127.0.0.1 and opened in headless Chromium
  with every non-local request blocked: the slider must render from the self-hosted
  ipywidgets JavaScript, the animation must step, and MathJax must typeset. The explorer and
  the kernel-only panel are checked in ``test_browser_explorers``.
* Every page of the built book (_build/html, made by scripts/test.sh or build_book.sh)
  loads without any request leaving 127.0.0.1 and without uncaught JavaScript errors.

Needs Debian's Chromium at /usr/bin/chromium: skipped loudly without it, failed under CI=true.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("INWHALE_CHROMIUM", "/usr/bin/chromium"))
BOOK_HTML = ROOT / "_build" / "html"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Belt and braces next to the request routing below: no name resolves but localhost.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]

DEMO_CELLS = [
    ("markdown", "# Widget demo\n\nMath check: $\\hat{x} = s\\,(q - z)$."),
    (
        "code",
        "import ipywidgets as widgets\n"
        "widgets.IntSlider(value=3, min=0, max=8, description='bits')",
    ),
    (
        "code",
        "import matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt\n"
        "from IPython.display import HTML\n"
        "from matplotlib.animation import FuncAnimation\n"
        "fig, ax = plt.subplots(figsize=(3, 2))\n"
        "(line,) = ax.plot([0, 1], [0, 0])\n"
        "anim = FuncAnimation(fig, lambda i: line.set_ydata([0, i / 4]), frames=4)\n"
        "plt.close(fig)\n"
        "HTML(anim.to_jshtml())",
    ),
    (
        "code",
        "from inwhale.viz import explorer, radio, slider\n"
        "def draw(fig, bits, scheme):\n"
        "    ax = fig.add_subplot()\n"
        "    ax.bar([0, 1], [bits, 2 if scheme == 'symmetric' else 5])\n"
        "    ax.set_title(f'{scheme}, {bits} bits')\n"
        "explorer(draw, [slider('bits', [2, 3, 4, 8], default=4),\n"
        "                radio('scheme', ['symmetric', 'asymmetric'])], figsize=(3, 2), dpi=50)",
    ),
    (
        "code",
        "import matplotlib.pyplot as plt\n"
        "from inwhale.viz import live_slider\n"
        "def draw_live(bits=3):\n"
        "    fig, ax = plt.subplots(figsize=(3, 2))\n"
        "    ax.plot([0, 1], [0, bits])\n"
        "    plt.show()\n"
        "live_slider(draw_live, bits=widgets.IntSlider(value=5, min=2, max=8))",
    ),
]


def _missing(msg: str) -> None:
    """A tool a browser test needs is missing: fail under CI=true, else skip loudly."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    warnings.warn(msg, stacklevel=3)
    pytest.skip("SKIPPED LOUDLY: " + msg)


def _chromium_or_skip() -> None:
    if not CHROMIUM.exists():
        _missing(
            f"Chromium not found at {CHROMIUM}: browser tests cannot run. "
            "Install it: apt-get install -y chromium chromium-driver (scripts/test.sh does "
            "this when it runs as root on Debian)."
        )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def serve():
    """serve(directory) -> base URL of a 127.0.0.1 static server for that directory."""
    servers = []

    def start(directory: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser():
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _offline_page(browser):
    """A new page whose requests to anything but 127.0.0.1 are aborted and recorded."""
    page = browser.new_page()
    blocked: list[str] = []
    errors: list[str] = []

    def route(r):
        url = r.request.url
        host = urlparse(url).hostname
        if url.startswith(("data:", "blob:", "about:")) or host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            blocked.append(url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, blocked, errors


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory, serve):
    """Execute the demo notebook and build it with the book's own config and _static/."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from stage_book import write_config
    finally:
        sys.path.pop(0)
    from nbclient import NotebookClient

    src = tmp_path_factory.mktemp("demo_src")
    out = tmp_path_factory.mktemp("demo_out")
    shutil.copytree(ROOT / "_static", src / "_static")
    shutil.copytree(ROOT / "scripts" / "sphinx", src / "scripts" / "sphinx")
    shutil.copy2(ROOT / "references.bib", src / "references.bib")
    write_config(src, execute="off")
    (src / "_toc.yml").write_text("format: jb-book\nroot: demo/01_widgets\n")

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(s) if kind == "markdown" else nbformat.v4.new_code_cell(s)
        for kind, s in DEMO_CELLS
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    (src / "demo").mkdir()
    # Same executor as nbmake (nbclient), which stores the widget state in the notebook.
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    assert "widgets" in nb.metadata, "nbclient stored no widget state"
    nbformat.write(nb, src / "demo" / "01_widgets.ipynb")

    jb = Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run(
        [str(jb), "build", "-W", "-n", "--keep-going", "--path-output", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    html = out / "_build" / "html"
    return serve(html) + "/demo/01_widgets.html", html


def test_demo_page_references_local_widget_js(demo_site):
    _, html = demo_site
    page = (html / "demo" / "01_widgets.html").read_text()
    assert "_static/widgets/embed-amd.js" in page
    assert "_static/widgets/require.js" in page
    assert "cdn.jsdelivr.net" not in page and "cdnjs.cloudflare.com" not in page


def test_slider_renders_offline(browser, demo_site):
    url, _ = demo_site
    page, blocked, errors = _offline_page(browser)
    page.goto(url, wait_until="load")
    slider = page.locator(".widget-slider").first
    slider.wait_for(state="visible", timeout=30_000)
    assert "bits" in page.locator(".widget-label").first.inner_text()
    assert page.locator(".widget-readout").first.inner_text().strip() == "3"
    assert not blocked, f"requests left 127.0.0.1: {blocked}"
    assert not errors, f"JavaScript errors: {errors}"
    page.close()


def test_jshtml_animation_steps_without_kernel(browser, demo_site):
    url, _ = demo_site
    page, blocked, errors = _offline_page(browser)
    page.goto(url, wait_until="load")
    img = page.locator(".animation img").first
    img.wait_for(state="visible", timeout=30_000)
    first = img.get_attribute("src")
    page.locator(".animation button[title='Next frame']").first.click()
    page.wait_for_function(
        "src => document.querySelector('.animation img').getAttribute('src') !== src",
        arg=first,
        timeout=10_000,
    )
    assert not blocked, f"requests left 127.0.0.1: {blocked}"
    assert not errors, f"JavaScript errors: {errors}"
    page.close()


def test_math_typesets_offline(browser, demo_site):
    url, _ = demo_site
    page, blocked, _ = _offline_page(browser)
    page.goto(url, wait_until="load")
    page.locator("mjx-container").first.wait_for(state="attached", timeout=30_000)
    assert not blocked, f"requests left 127.0.0.1: {blocked}"
    page.close()


def _book_pages() -> list[Path]:
    if not (BOOK_HTML / "index.html").exists():
        return []
    return sorted(
        p for p in BOOK_HTML.rglob("*.html") if "_static" not in p.parts and p.name != "search.html"
    )


def test_built_book_scripts_are_local():
    """No page of the built book loads a script or stylesheet from another host."""
    pages = _book_pages()
    if not pages:
        pytest.skip("no built book in _build/html (run scripts/test.sh or build_book.sh)")
    import re

    external = re.compile(r"""<(?:script|link)[^>]+(?:src|href)=["'](https?:)?//[^"']+["']""")
    bad = {}
    for p in pages:
        for m in external.finditer(p.read_text(errors="replace")):
            tag = m.group(0)
            if "<link" in tag and 'rel="stylesheet"' not in tag and "preload" not in tag:
                continue  # plain links (canonical, repository, launch buttons) load nothing
            bad.setdefault(str(p.relative_to(BOOK_HTML)), []).append(tag[:160])
    assert not bad, f"external scripts/styles: {bad}"


def test_built_book_pages_load_offline(browser, serve):
    pages = _book_pages()
    if not pages:
        pytest.skip("no built book in _build/html (run scripts/test.sh or build_book.sh)")
    base = serve(BOOK_HTML)
    failures = {}
    for p in pages:
        page, blocked, errors = _offline_page(browser)
        page.goto(f"{base}/{p.relative_to(BOOK_HTML).as_posix()}", wait_until="load")
        # widget views (not the state alone: explorers keep theirs there) render after load
        if page.locator("script[type='application/vnd.jupyter.widget-view+json']").count():
            page.locator(".jupyter-widgets").first.wait_for(state="attached", timeout=30_000)
        if blocked or errors:
            failures[str(p.relative_to(BOOK_HTML))] = {"blocked": blocked, "errors": errors}
        page.close()
    assert not failures, failures
