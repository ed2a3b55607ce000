"""Static plots: error histograms and staircases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def book_style() -> None:
    """A quiet, consistent matplotlib style for every chapter (call once per notebook)."""
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.figsize": (7.0, 3.6), "figure.dpi": 100, "axes.grid": True,
        "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
        "font.size": 10, "axes.titlesize": 11, "legend.frameon": False,
    })


def error_histogram(
    x: torch.Tensor,
    xhat: torch.Tensor,
    step: float | None = None,
    ax: Any = None,
    bins: int = 101,
    label: str | None = None,
    density: bool = True,
    lim: float | None = None,
) -> Any:
    """Histogram of the quantization error ``e = x − x̂``, with ``±Δ/2`` marked.

    With nearest rounding and no clipping every error lies inside ``[−Δ/2, Δ/2]`` and,
    for busy signals, is close to uniform there (the "uniform noise model"); clipped values
    show up as tails outside the dashed lines.

    Args:
        x, xhat: original and quantized tensors (same shape).
        step: the step ``Δ`` (scale); for per-channel scales pass ``None`` and normalise the
            error yourself, or pass the typical step.
        ax: a matplotlib Axes (a new figure if ``None``).
        bins: histogram bins.
        label: legend label.
        density: plot a density (area 1) instead of counts.
        lim: half-width of the histogram's range (default: the largest ``|e|``, or ``0.75·Δ``
            if larger). A smaller ``lim`` shows the bulk of long-tailed errors; errors beyond
            it are left out of the histogram (the title should say so).

    Returns:
        The Axes.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots()
    e = (x.detach().double() - xhat.detach().double()).flatten().cpu().numpy()
    if lim is None:
        lim = max(float(abs(e).max()), (step or 0) * 0.75) or 1.0
    elif not lim > 0:
        raise ValueError(f"lim must be positive, got {lim}")
    # one filled outline instead of a patch per bar: the same picture, drawn much faster
    counts, edges = np.histogram(e, bins=bins, range=(-lim, lim), density=density)
    ax.stairs(counts, edges, fill=True, alpha=0.75, label=label)
    if step is not None:
        for sign in (-1, 1):
            ax.axvline(sign * step / 2, color="k", ls="--", lw=1)
        if density:
            ax.axhline(1 / step, color="C3", lw=1, label="uniform on ±Δ/2")
    ax.set_xlabel("error  x − x̂")
    ax.set_ylabel("density" if density else "count")
    return ax


def staircase(
    fq: Callable[[torch.Tensor], torch.Tensor],
    lo: float,
    hi: float,
    ax: Any = None,
    n: int = 2001,
    label: str | None = None,
) -> Any:
    """Plot the transfer curve ``x ↦ fq(x)`` of a fake quantizer on ``[lo, hi]``.

    Args:
        fq: a function tensor → tensor, e.g. ``lambda t: inwhale.fake_quantize(t, qp)``.
        lo, hi: the input interval to draw.
        ax: a matplotlib Axes (a new figure if ``None``).
        n: number of sample points.
        label: legend label.

    Returns:
        The Axes.
    """
    import matplotlib.pyplot as plt

    if not lo < hi:
        raise ValueError(f"lo must be < hi, got lo={lo}, hi={hi}")
    if ax is None:
        _, ax = plt.subplots()
    t = torch.linspace(lo, hi, n)
    ax.plot(t.numpy(), t.numpy(), color="0.7", lw=1, ls=":", label="x̂ = x")
    ax.step(t.numpy(), fq(t).detach().cpu().numpy(), where="mid", lw=1.5, label=label)
    ax.set_xlabel("input x")
    ax.set_ylabel("output x̂")
    return ax
