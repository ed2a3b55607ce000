"""Sliders: a one-control explorer, and a kernel-only panel that says so on a static page.

* :func:`frame_slider` — one slider over pre-rendered frames: an :func:`~inwhale.viz.explorer`
  with a single control (its current value is shown next to it).
* :func:`live_slider` — an ipywidgets panel for what cannot be pre-rendered (a free number,
  too many combinations). In a running kernel it is live; on the static page it shows the
  picture for its start values and a line saying that moving it needs a running kernel, with
  the page's launch buttons — never a control that moves and changes nothing.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any

from inwhale.viz.explorer import Explorer, _in_kernel, explorer, slider


def frame_slider(
    draw: Callable[[Any, Any], None],
    values: Sequence[Any],
    figsize: tuple[float, float] = (7.0, 3.6),
    *,
    name: str = "value",
    label: str | None = None,
    default: Any = None,
) -> Explorer:
    """A kernel-free slider: one pre-rendered frame per value, with the value shown.

    ``draw(fig, value)`` draws the whole figure for ``value`` on a fresh figure. This is
    :func:`~inwhale.viz.explorer` with a single :func:`~inwhale.viz.explorer.slider`; use
    ``explorer`` directly for two or more controls.

    Args:
        draw: callback ``(figure, value) -> None``.
        values: the slider positions (e.g. bit widths ``[2, 3, 4, 6, 8]``).
        figsize: figure size in inches.
        name: the control's name (a Python identifier), e.g. ``"bits"``.
        label: its visible name (default: ``name``).
        default: the value shown first (default: the first).

    Returns:
        The :class:`~inwhale.viz.explorer.Explorer` (display it).

    Raises:
        ValueError: ``values`` empty or repeated, ``default`` not among them.

    Example:
        >>> ex = frame_slider(lambda fig, b: fig.add_subplot().set_title(f"{b} bits"),
        ...                   [2, 4, 8], figsize=(2, 1), name="bits")
        >>> ex.n_frames
        3
    """

    def draw_one(fig: Any, **settings: Any) -> None:
        draw(fig, settings[name])

    control = slider(name, values, default=default, label=label)
    return explorer(draw_one, [control], figsize=figsize)


@contextmanager
def _figures_kept() -> Any:
    """Collect the pyplot figures drawn inside the block; ``plt.show()`` does nothing there.

    Yields the list that receives the new figures (closed, so no backend shows them).
    """
    import matplotlib.pyplot as plt

    before, made = set(plt.get_fignums()), []
    show, plt.show = plt.show, lambda *args, **kwargs: None
    try:
        yield made
    finally:
        plt.show = show
        for num in plt.get_fignums():
            if num not in before:
                made.append(plt.figure(num))
                plt.close(num)


_KERNEL_NOTE_JS = """<script>(function () {
  var box = document.getElementById("%(id)s"), seen = {};
  if (!box) return;
  var links = document.querySelectorAll(
    "a[href*='mybinder.org'], a[href*='colab.research.google.com']");
  var where = box.querySelector(".iwx-launch");
  links.forEach(function (a) {
    var name = a.href.indexOf("colab") >= 0 ? "Colab" : "Binder";
    if (seen[name]) return;
    seen[name] = 1;
    var b = document.createElement("a");
    b.href = a.href; b.textContent = "open in " + name; b.className = "iwx-launch-link";
    where.appendChild(document.createTextNode(" "));
    where.appendChild(b);
  });
})();</script>"""

_counter = iter(range(10**9))


def _kernel_only_html(pngs: list[bytes], settings: dict[str, Any]) -> str:
    """The static stand-in: the start picture(s) and a note that a kernel is needed."""
    uid = f"iwx-kernel-{next(_counter)}"
    shown = ", ".join(f"{k} = {v}" for k, v in settings.items())
    images = "".join(
        f'<img style="max-width:100%;height:auto" alt="{html.escape(shown)}" '
        f'src="data:image/png;base64,{base64.b64encode(p).decode()}">' for p in pngs)
    note = (f'<p class="iwx-kernel-note" style="font-size:.9em;opacity:.85">Shown for '
            f"{html.escape(shown)}. These controls need a running Python kernel: launch this "
            f'chapter (rocket button at the top of the page) to move them.'
            f'<span class="iwx-launch"></span></p>')
    return (f'<div class="inwhale-kernel-only" id="{uid}">{images}{note}'
            + _KERNEL_NOTE_JS % {"id": uid} + "</div>")


class KernelOnly:
    """A live ipywidgets panel; on a static page, its start picture and a kernel note.

    Made by :func:`live_slider`. Its display is one mimebundle: the live panel as a widget
    view (in a running kernel) and the static stand-in as ``text/html``, which the book ranks
    first (see :mod:`inwhale.viz.explorer`).
    """

    def __init__(self, draw: Callable[..., None], controls: dict[str, Any]) -> None:
        self.draw, self.controls = draw, controls
        self.start = _start_values(controls)
        with _figures_kept() as figures:
            draw(**self.start)
        pngs = []
        for fig in figures:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", metadata={"Software": None})
            pngs.append(buf.getvalue())
        self.html = _kernel_only_html(pngs, self.start)

    def __repr__(self) -> str:
        return f"<live panel ({', '.join(self.controls)}); needs a running kernel>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": repr(self), "text/html": self.html}
        if _in_kernel():
            import ipywidgets as widgets

            bundle.update(widgets.interactive(self.draw, **self.controls)._repr_mimebundle_())
            bundle["text/plain"] = repr(self)
        return bundle


def _start_values(controls: dict[str, Any]) -> dict[str, Any]:
    """The value each control starts at (a widget's value, or an abbreviation's default)."""
    import ipywidgets as widgets

    start = {}
    for name, c in controls.items():
        w = c if isinstance(c, widgets.ValueWidget) else widgets.interactive.widget_from_abbrev(c)
        if w is None:
            raise ValueError(f"controls: cannot make a widget from {name}={c!r}")
        start[name] = w.get_interact_value() if hasattr(w, "get_interact_value") else w.value
    return start


def live_slider(draw: Callable[..., None], **controls: Any) -> KernelOnly:
    """An ipywidgets panel for a running kernel; on a static page, its start picture and a note.

    Prefer :func:`~inwhale.viz.explorer` (it works on the static page). Use this only for what
    cannot be pre-rendered. ``draw(**values)`` is called with the current value of every
    control and draws with pyplot (``plt.subplots`` ... ``plt.show()``). ``controls`` are
    ipywidgets (an ``IntSlider`` for bits, a ``Dropdown`` for the scheme) or anything
    ``ipywidgets.interactive`` accepts.

    On the static page (the book) the panel is replaced by the figure drawn for the start
    values and a line that says moving the controls needs a running kernel, with links to the
    page's Binder and Colab launch buttons.

    Returns:
        A :class:`KernelOnly` (display it, or let the notebook show it).

    Raises:
        ValueError: no controls, or one ipywidgets cannot turn into a widget.
    """
    if not controls:
        raise ValueError("controls: give at least one, e.g. bits=IntSlider(...)")
    return KernelOnly(draw, controls)
