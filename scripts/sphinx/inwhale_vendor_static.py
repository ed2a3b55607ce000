"""Sphinx extension: keep vendored JavaScript out of every page's <head>.

Jupyter Book 1 adds *every* .js/.css file found under _static/ to html_js_files, which
would load the 4 MB ipywidgets embedder and all MathJax extensions on every page. The
vendored folders are loaded on demand instead: MyST-NB adds _static/widgets/ only to pages
that hold widget state (nb_ipywidgets_js), and MathJax loads its own extensions
(mathjax_path). This drops those folders from the automatic list.
"""

from __future__ import annotations

VENDORED_PREFIXES = ("widgets/", "mathjax/")


def _entry_path(entry) -> str:
    return entry[0] if isinstance(entry, (list, tuple)) else str(entry)


def _drop_vendored(app, config) -> None:
    for name in ("html_js_files", "html_css_files"):
        files = getattr(config, name, None) or []
        kept = [f for f in files if not _entry_path(f).startswith(VENDORED_PREFIXES)]
        setattr(config, name, kept)


def setup(app):
    app.connect("config-inited", _drop_vendored, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
