"""Sphinx extension: the book's pages load their JavaScript and fonts from _static/, not CDNs.

1. Jupyter Book 1 adds *every* .js/.css file found under _static/ to every page, which would
   load the 4 MB ipywidgets embedder and all MathJax extensions everywhere. The vendored
   folders are loaded on demand instead: MyST-NB adds _static/widgets/ only to pages that
   hold widget state (nb_ipywidgets_js), MathJax loads its own extensions (mathjax_path),
   and Font Awesome 4 is linked by the animations themselves. So they are dropped from the
   automatic list.
2. matplotlib's ``Animation.to_jshtml()`` links Font Awesome 4.4 from a CDN for its button
   icons; that link is pointed at _static/fontawesome4/ in every page body.
3. sphinx-thebe's inline configuration script ends up twice in each page with Sphinx 7.4
   ("Identifier 'THEBE_JS_URL' has already been declared"); duplicate scripts are dropped.
"""

from __future__ import annotations

VENDORED_PREFIXES = ("widgets/", "widgets-config/", "mathjax/", "fontawesome4/")
FONTAWESOME4_CDN = (
    "https://maxcdn.bootstrapcdn.com/font-awesome/4.4.0/css/font-awesome.min.css",
    "https://maxcdn.bootstrapcdn.com/font-awesome/4.7.0/css/font-awesome.min.css",
)
FONTAWESOME4_LOCAL = "_static/fontawesome4/css/font-awesome.min.css"


def _entry_path(entry) -> str:
    return entry[0] if isinstance(entry, (list, tuple)) else str(entry)


def _drop_vendored(app, config) -> None:
    for name in ("html_js_files", "html_css_files"):
        files = getattr(config, name, None) or []
        kept = [f for f in files if not _entry_path(f).startswith(VENDORED_PREFIXES)]
        setattr(config, name, kept)


def _script_key(js) -> tuple:
    attributes = getattr(js, "attributes", {}) or {}
    # An inline script is registered once with filename None and once with ""
    filename = getattr(js, "filename", str(js)) or ""
    return (filename, tuple(sorted((k, str(v)) for k, v in attributes.items())))


def _page_context(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if isinstance(scripts, list):
        seen, unique = set(), []
        for js in scripts:
            key = _script_key(js)
            if key not in seen:
                seen.add(key)
                unique.append(js)
        scripts[:] = unique
    body = context.get("body")
    if body and "font-awesome" in body and "pathto" in context:
        local = context["pathto"](FONTAWESOME4_LOCAL, 1)
        for url in FONTAWESOME4_CDN:
            body = body.replace(url, local)
        context["body"] = body


def setup(app):
    app.connect("config-inited", _drop_vendored, priority=900)
    app.connect("html-page-context", _page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
