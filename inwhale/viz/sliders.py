"""Sliders: one that works on the static page (no kernel), one that needs a kernel."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def frame_slider(
    draw: Callable[[Any, Any], None],
    values: Sequence[Any],
    figsize: tuple[float, float] = (7.0, 3.6),
    interval_ms: int = 800,
) -> Any:
    """A kernel-free slider: pre-render one frame per value and return it as HTML.

    ``draw(fig, value)`` must draw the whole figure for ``value`` (it is handed a cleared
    figure). The frames become a matplotlib animation rendered by ``to_jshtml()``: a
    JavaScript player with a slider and play buttons that works on the static hosted page,
    where no Python kernel runs.

    Args:
        draw: callback ``(figure, value) -> None``.
        values: the slider positions (e.g. bit widths ``[2, 3, 4, 6, 8]``).
        figsize: figure size in inches.
        interval_ms: delay between frames when playing.

    Returns:
        ``IPython.display.HTML`` with the player.
    """
    import matplotlib.pyplot as plt
    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation

    if len(values) == 0:
        raise ValueError("values must not be empty")
    fig = plt.figure(figsize=figsize)

    def frame(i: int) -> list:
        fig.clear()
        draw(fig, values[i])
        return []

    anim = FuncAnimation(fig, frame, frames=len(values), interval=interval_ms, blit=False)
    html = HTML(anim.to_jshtml(default_mode="once"))
    plt.close(fig)
    return html


def live_slider(draw: Callable[..., None], **controls: Any) -> Any:
    """An ipywidgets slider panel that redraws with a running kernel.

    ``draw(**values)`` is called with the current value of every control and should draw
    (e.g. with ``plt.subplots`` and ``plt.show()``). ``controls`` are ipywidgets (an
    ``IntSlider`` for bits, a ``Dropdown`` for the scheme) or anything ``interactive`` accepts.

    Returns:
        The ``ipywidgets.interactive`` widget (display it, or let the notebook show it).
    """
    import ipywidgets as widgets

    if not controls:
        raise ValueError("give at least one control, e.g. bits=IntSlider(...)")
    return widgets.interactive(draw, **controls)
