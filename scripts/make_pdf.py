"""Print the whole built book (_build/html) into one PDF with headless Chromium.

The pages are read in the order of the sidebar, their articles are put one after another in
one print page (each chapter on a new sheet; images and links resolved against the page they
came from; the animations' scripts re-run so each shows its first frame), MathJax typesets
the lot, and Chromium prints it (Playwright ``page.pdf``), so maths, figures and tables look
as they do on the site. Served on 127.0.0.1 only; every other request is refused.

Output: _build/html/inwhale.pdf (every page links to it: scripts/sphinx/inwhale_pdf_link.py).

Usage: python scripts/make_pdf.py [--html _build/html] [--out _build/html/inwhale.pdf]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import re
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("INWHALE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

# Runs in the print page: fetch every page, keep its article, resolve its URLs, append.
COLLECT_JS = r"""
async (urls) => {
  const main = document.querySelector('article.bd-article');
  main.innerHTML = '';
  for (const url of urls) {
    const html = await (await fetch(url)).text();
    const doc = new DOMParser().parseFromString(html, 'text/html');
    const art = doc.querySelector('article.bd-article');
    if (!art) continue;
    for (const el of art.querySelectorAll('[src]')) {
      el.setAttribute('src', new URL(el.getAttribute('src'), url).href);
    }
    for (const el of art.querySelectorAll('a[href]')) {
      const h = el.getAttribute('href');
      if (!h.startsWith('#')) el.setAttribute('href', new URL(h, url).href);
    }
    for (const el of art.querySelectorAll('.headerlink')) el.remove();
    const section = document.createElement('section');
    section.className = 'inwhale-print-chapter';
    section.append(...Array.from(art.childNodes).map(n => document.importNode(n, true)));
    main.append(section);
  }
  // scripts inserted as HTML do not run: re-create them (to_jshtml animations draw frame 0)
  for (const old of main.querySelectorAll('script')) {
    if (old.type && !/javascript|^module$/.test(old.type)) continue;
    const s = document.createElement('script');
    for (const a of old.attributes) s.setAttribute(a.name, a.value);
    s.text = old.text;
    old.replaceWith(s);
  }
  await MathJax.startup.promise;
  await MathJax.typesetPromise([main]);
  return main.querySelectorAll('.inwhale-print-chapter').length;
}
"""

PRINT_CSS = """
.inwhale-print-chapter { break-before: page; }
.inwhale-print-chapter:first-child { break-before: auto; }
.bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-footer, .bd-footer-article,
.prev-next-area, .header-article, .bd-header-article, .inwhale-pdf-link,
.anim-controls, .jupyter-widgets, .widget-box, #jb-print-docs-body { display: none !important; }
.bd-main .bd-content .bd-article-container { max-width: 100% !important; }
.bd-article div.math, .bd-article pre, .bd-article table { overflow: visible !important; }
pre { white-space: pre-wrap !important; word-break: break-word; }
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(html: Path):
    """Serve the folder ``html`` on 127.0.0.1 (a free port) while the block runs; yields the
    base URL, e.g. ``http://127.0.0.1:40123``."""
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def local_only(page, base: str) -> None:
    """Let ``page`` load only ``base`` and inline (data:, blob:, about:) URLs; abort the rest."""
    allowed = (base, "data:", "blob:", "about:")
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(allowed)
               else r.abort())


def page_order(html: Path) -> list[str]:
    """Pages in the sidebar's order, as paths relative to ``html``."""
    start = html / "book" / "intro.html"
    links = re.findall(r'class="reference internal" href="([^"#]+)"', start.read_text())
    order = ["book/intro.html"]
    for link in links:
        rel = (start.parent / link).resolve().relative_to(html.resolve()).as_posix()
        if rel not in order and (html / rel).exists():
            order.append(rel)
    return order


def make_pdf(html: Path, out: Path) -> tuple[int, int]:
    """Print the book in ``html`` to ``out``; returns (chapters, bytes)."""
    from playwright.sync_api import sync_playwright

    with serve(html) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 1400})
        local_only(page, base)
        page.goto(f"{base}/book/intro.html", wait_until="load")
        urls = [f"{base}/{rel}" for rel in page_order(html)]
        chapters = page.evaluate(COLLECT_JS, urls)
        page.add_style_tag(content=PRINT_CSS)
        page.wait_for_timeout(500)
        page.emulate_media(media="print")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.pdf(
            path=str(out), format="A4", print_background=True,
            margin={"top": "15mm", "bottom": "15mm", "left": "12mm", "right": "12mm"},
            display_header_footer=True, header_template="<span></span>",
            footer_template=(
                '<div style="font-size:8px;width:100%;text-align:center">'
                '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'
            ),
        )
        browser.close()
    return chapters, out.stat().st_size


def count_pages(pdf: Path) -> int:
    """Number of pages of a PDF written by Chromium (its /Type /Page objects)."""
    return len(re.findall(rb"/Type\s*/Page(?!s)", pdf.read_bytes()))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or args.html / "inwhale.pdf"
    if not (args.html / "book" / "intro.html").exists():
        print(f"[pdf] no built book in {args.html}", file=sys.stderr)
        return 1
    t0 = time.time()
    chapters, size = make_pdf(args.html, out)
    print(f"[pdf] {out}: {chapters} pages of the book, {count_pages(out)} PDF pages, "
          f"{size / 1e6:.1f} MB, {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
