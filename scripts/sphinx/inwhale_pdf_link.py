"""Sphinx extension: every page links to the whole-book PDF (_build/html/inwhale.pdf).

scripts/make_pdf.py prints the built book into one PDF with headless Chromium. Each page
gets two links to it, relative to the page: an entry "Whole book (.pdf)" in the download
menu of the header, and a line in the footer.
"""

from __future__ import annotations

PDF = "inwhale.pdf"


def _add_links(app, pagename, templatename, context, doctree) -> None:
    if "pathto" not in context:
        return
    url = context["pathto"](PDF, 1)
    link = f'<a class="inwhale-pdf-link" href="{url}">The whole book as one PDF</a>'
    footer = context.get("theme_extra_footer") or ""
    context["theme_extra_footer"] = f"{footer}<p>{link}</p>"
    for button in context.get("header_buttons", []):
        if button.get("label") == "download-buttons":
            button["buttons"].append(
                {
                    "type": "link",
                    "url": url,
                    "text": "book .pdf",
                    "tooltip": "The whole book as one PDF",
                    "icon": "fas fa-book",
                    "label": "download-book-pdf-button",
                }
            )


def setup(app):
    # after sphinx-book-theme has built its header buttons (priority 501)
    app.connect("html-page-context", _add_links, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
