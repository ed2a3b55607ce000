"""Plots, explorers and sliders shared by the chapters (needs matplotlib; ipywidgets live).

* :func:`error_histogram` — histogram of ``x − x̂`` with ±Δ/2 marked.
* :func:`staircase` — the transfer curve ``x ↦ x̂`` of a quantizer.
* :func:`explorer` — a kernel-free explorer: controls (:func:`slider`, :func:`radio`,
  :func:`dropdown`) over pre-rendered frames, working on the static hosted page, and live
  ipywidgets in a running kernel.
* :func:`frame_slider` — an explorer with one slider.
* :func:`live_slider` — an ipywidgets panel that needs a kernel; on the static page it shows
  its start picture and says so.
* :func:`markdown_table` / :func:`show_table` — a results table as Markdown, pipes escaped.
"""

from inwhale.viz.explorer import Explorer, dropdown, explorer, radio, slider
from inwhale.viz.plots import book_style, error_histogram, staircase
from inwhale.viz.sliders import frame_slider, live_slider
from inwhale.viz.tables import markdown_table, show_table

__all__ = [
    "Explorer",
    "book_style",
    "dropdown",
    "error_histogram",
    "explorer",
    "frame_slider",
    "live_slider",
    "markdown_table",
    "radio",
    "show_table",
    "slider",
    "staircase",
]
