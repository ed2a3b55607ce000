"""Plots and sliders shared by the chapters (needs matplotlib; ipywidgets for live sliders).

* :func:`error_histogram` — histogram of ``x − x̂`` with ±Δ/2 marked.
* :func:`staircase` — the transfer curve ``x ↦ x̂`` of a quantizer.
* :func:`frame_slider` — a kernel-free slider: one pre-rendered frame per value, as
  JavaScript that works on the static hosted page.
* :func:`live_slider` — an ipywidgets slider that redraws with a running kernel.
"""

from inwhale.viz.plots import book_style, error_histogram, staircase
from inwhale.viz.sliders import frame_slider, live_slider

__all__ = ["book_style", "error_histogram", "frame_slider", "live_slider", "staircase"]
