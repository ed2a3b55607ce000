"""Kernel-free explorers: every setting of a few controls, pre-rendered, on a static page.

A chapter declares its controls (a slider over ordered values such as bits 2..8, radio
buttons or a dropdown over categories such as the scheme) and a draw function. At build time
:func:`explorer` draws the figure for every combination of control values and returns an
:class:`Explorer`, which a notebook shows in one of two ways:

* **Static page (the book, any HTML export).** Real HTML controls — ``<input type=range>``,
  radio buttons, ``<select>`` — each with a visible value label, keyboard-operable and
  labelled for screen readers, switch between the pre-rendered PNG frames with a few lines of
  inline JavaScript. No kernel, no CDN, no widget library.
* **Running kernel (JupyterLab, Colab, VS Code).** Live ipywidgets, connected to the same draw
  function with ``ipywidgets.interactive_output``.

How the notebook chooses: an explorer's display is ONE mimebundle that carries both
``text/html`` (the static explorer) and ``application/vnd.jupyter.widget-view+json`` (the
live widgets; only when a kernel runs). A notebook front end with a widget manager ranks the
widget view first and shows live controls. The book's ``_config.yml`` demotes the widget view
below ``text/html`` for the HTML builder (``nb_mime_priority_overrides``), so the built page
shows the static explorer and never a widget that moves and changes nothing. Outside a kernel
(plain Python, tests) the bundle holds only ``text/html`` and ``text/plain``.

Page weight: an explorer's HTML (all frames, base64) must fit ``max_bytes``, 2 MB by default
(:data:`DEFAULT_MAX_BYTES`); :func:`explorer` raises ``ValueError`` as soon as the frames
drawn so far exceed it. Identical frames are stored once. Frames live as base64 text in a
JSON block and only the frame on show is decoded by the browser.

Worked example (three bit widths × two schemes = six frames)::

    def draw(fig, bits, scheme):
        ax = fig.add_subplot()
        ax.set_title(f"{scheme}, {bits} bits")

    ex = explorer(draw, {"bits": [2, 4, 8], "scheme": ["symmetric", "asymmetric"]})
    ex.n_frames        # 6
    ex                 # last line of a cell: the explorer on the page

Glossary: a *control* is one named axis of settings (:class:`Control`); a *combination* is
one value per control, in the order the controls were given (the first control varies
slowest); a *frame* is the PNG drawn for one combination.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_FRAMES",
    "Control",
    "Explorer",
    "dropdown",
    "explorer",
    "radio",
    "slider",
]

DEFAULT_MAX_BYTES = 2_000_000
"""Page-weight budget of one explorer: its whole HTML, all frames included (2 MB)."""

MAX_FRAMES = 400
"""Most combinations one explorer may declare (drawing more would take minutes anyway)."""

KINDS = ("slider", "radio", "dropdown")
RADIO_MAX = 4  # the mapping shorthand uses radio buttons up to this many categories


@dataclass(frozen=True)
class Control:
    """One named control of an explorer: its values, how it is shown, and its start value.

    Build it with :func:`slider`, :func:`radio` or :func:`dropdown`.

    Attributes:
        name: keyword under which ``draw`` receives the value (a Python identifier).
        values: the settings, in display order (ordered for a slider).
        kind: ``"slider"``, ``"radio"`` or ``"dropdown"``.
        label: the visible name of the control (default: ``name``).
        default: the value shown first (default: the first value).
        value_labels: the text shown for each value (default: ``str(value)``).
    """

    name: str
    values: tuple[Any, ...]
    kind: str = "slider"
    label: str | None = None
    default: Any = None
    value_labels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"controls: name must be a Python identifier, got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"controls: kind of {self.name!r} must be one of {KINDS}, "
                             f"got {self.kind!r}")
        if len(self.values) == 0:
            raise ValueError(f"controls: {self.name!r} has no values")
        if len(set(map(repr, self.values))) != len(self.values):
            raise ValueError(f"controls: {self.name!r} has repeated values {self.values!r}")
        if self.default is not None and self.default not in self.values:
            raise ValueError(f"controls: default {self.default!r} of {self.name!r} is not one "
                             f"of its values {self.values!r}")
        if self.value_labels is not None and len(self.value_labels) != len(self.values):
            raise ValueError(f"controls: {self.name!r} has {len(self.values)} values but "
                             f"{len(self.value_labels)} value_labels")

    @property
    def text(self) -> str:
        """The visible name of the control."""
        return self.label if self.label is not None else self.name

    @property
    def labels(self) -> tuple[str, ...]:
        """The text shown for each value."""
        return self.value_labels or tuple(str(v) for v in self.values)

    @property
    def start(self) -> int:
        """Position of the value shown first."""
        return 0 if self.default is None else self.values.index(self.default)


def _control(kind: str, name: str, values: Sequence[Any], default: Any, label: str | None,
             value_labels: Sequence[str] | None) -> Control:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | range):
        raise TypeError(f"controls: values of {name!r} must be a list or range, "
                        f"got {type(values).__name__}")
    labels = None if value_labels is None else tuple(str(t) for t in value_labels)
    return Control(name, tuple(values), kind, label, default, labels)


def slider(name: str, values: Sequence[Any], *, default: Any = None, label: str | None = None,
           value_labels: Sequence[str] | None = None) -> Control:
    """A slider over ordered values, e.g. ``slider("bits", [2, 3, 4, 6, 8], default=4)``.

    On the static page it is an ``<input type=range>`` over the positions ``0..len-1``, with
    the current value's text next to it; live it is an ``ipywidgets.SelectionSlider``.

    Args:
        name: keyword under which ``draw`` receives the value.
        values: the settings, in slider order.
        default: the value shown first (default: the first).
        label: visible name (default: ``name``).
        value_labels: text for each value (default: ``str(value)``).

    Returns:
        The :class:`Control`.

    Raises:
        ValueError: no values, repeated values, a default not among them, a bad name.
        TypeError: ``values`` is not a sequence.
    """
    return _control("slider", name, values, default, label, value_labels)


def radio(name: str, values: Sequence[Any], *, default: Any = None, label: str | None = None,
          value_labels: Sequence[str] | None = None) -> Control:
    """Radio buttons over a few categories, e.g. ``radio("scheme", ["symmetric", "asymmetric"])``.

    Arguments, return value and errors as for :func:`slider`; live it is
    ``ipywidgets.RadioButtons``.
    """
    return _control("radio", name, values, default, label, value_labels)


def dropdown(name: str, values: Sequence[Any], *, default: Any = None, label: str | None = None,
             value_labels: Sequence[str] | None = None) -> Control:
    """A drop-down list over categories, e.g. ``dropdown("format", ["E4M3", "E5M2", "INT8"])``.

    Arguments, return value and errors as for :func:`slider`; live it is
    ``ipywidgets.Dropdown``.
    """
    return _control("dropdown", name, values, default, label, value_labels)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _parse_controls(controls: Any) -> tuple[Control, ...]:
    """Controls from a list of :class:`Control` or a mapping ``name -> values``.

    In the mapping shorthand, numbers make a slider, up to four categories radio buttons,
    more a dropdown.
    """
    if isinstance(controls, Mapping):
        parsed = []
        for name, values in controls.items():
            if isinstance(values, Control):
                raise TypeError("controls: give either a mapping name -> values or a list of "
                                "Control, not a mapping of Control")
            vals = list(values) if isinstance(values, Sequence | range) else values
            kind = ("slider" if isinstance(vals, list) and vals and all(map(_is_number, vals))
                    else "radio" if isinstance(vals, list) and len(vals) <= RADIO_MAX
                    else "dropdown")
            parsed.append(_control(kind, name, values, None, None, None))
    elif isinstance(controls, Sequence) and not isinstance(controls, str):
        if not all(isinstance(c, Control) for c in controls):
            raise TypeError("controls: a list of controls must hold Control objects "
                            "(made by slider, radio or dropdown)")
        parsed = list(controls)
    else:
        raise TypeError("controls must be a mapping name -> values or a list of Control, "
                        f"got {type(controls).__name__}")
    if not parsed:
        raise ValueError("controls: give at least one control")
    names = [c.name for c in parsed]
    if len(set(names)) != len(names):
        raise ValueError(f"controls: repeated control names {names}")
    return tuple(parsed)


def _render_png(draw: Callable[..., None], settings: dict[str, Any],
                figsize: tuple[float, float], dpi: int, colors: int | None) -> bytes:
    """Draw one frame on a fresh figure (no pyplot, so nothing leaks onto the page) as PNG.

    With ``colors`` the PNG is stored with a palette of that many colours (no dithering):
    plots have few distinct colours and shrink about threefold, with no visible change.
    """
    from matplotlib.figure import Figure
    from PIL import Image

    fig = Figure(figsize=figsize, dpi=dpi)
    try:
        draw(fig, **settings)
    except Exception as e:  # say which frame failed; the original error is the cause
        raise RuntimeError(f"draw failed for the explorer frame {settings}: {e}") from e
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    if colors is None:
        return buf.getvalue()
    image = Image.open(buf).convert("RGB").quantize(
        colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    small = io.BytesIO()
    image.save(small, format="png", optimize=True)
    return small.getvalue()


class Explorer:
    """Pre-rendered frames for every combination of controls, shown as HTML or live widgets.

    Made by :func:`explorer`; display it (last line of a cell) to put it on the page.

    Attributes:
        controls: the controls, in order (the first varies slowest).
        frames: distinct PNG frames (bytes); identical drawings are stored once.
        index: for each combination, in row-major order, the position of its frame.
        html: the self-contained static explorer (``text/html``).
    """

    def __init__(self, draw: Callable[..., None], controls: tuple[Control, ...],
                 frames: list[bytes], index: list[int], figsize: tuple[float, float], dpi: int,
                 alt: str, html_text: str) -> None:
        self.draw, self.controls, self.frames, self.index = draw, controls, frames, index
        self.figsize, self.dpi, self.alt, self.html = figsize, dpi, alt, html_text

    @property
    def n_frames(self) -> int:
        """Number of combinations (the product of the control sizes)."""
        return len(self.index)

    @property
    def nbytes(self) -> int:
        """Weight of the static explorer's HTML, in bytes (UTF-8)."""
        return len(self.html.encode())

    def combinations(self) -> list[dict[str, Any]]:
        """Every combination as ``{name: value}``, in the order of :attr:`index`."""
        names = [c.name for c in self.controls]
        return [dict(zip(names, vals, strict=True))
                for vals in itertools.product(*(c.values for c in self.controls))]

    def frame(self, **settings: Any) -> bytes:
        """The PNG pre-rendered for ``settings`` (one value per control).

        Raises:
            ValueError: a control is missing or a value is not among its values.
        """
        i = 0
        for c in self.controls:
            if c.name not in settings or settings[c.name] not in c.values:
                raise ValueError(f"settings: need {c.name} in {c.values!r}")
            i = i * len(c.values) + c.values.index(settings[c.name])
        return self.frames[self.index[i]]

    def __repr__(self) -> str:
        sizes = " × ".join(f"{c.name} ({len(c.values)})" for c in self.controls)
        return f"<Explorer {sizes} = {self.n_frames} frames, {self.nbytes / 1e3:.0f} kB>"

    def live_widget(self) -> Any:
        """The live ipywidgets panel (controls + plot) calling the same draw function."""
        import ipywidgets as widgets

        kinds = {"slider": widgets.SelectionSlider, "radio": widgets.RadioButtons,
                 "dropdown": widgets.Dropdown}
        live = {}
        for c in self.controls:
            options = list(zip(c.labels, c.values, strict=True))
            kw = {"continuous_update": False} if c.kind == "slider" else {}
            live[c.name] = kinds[c.kind](options=options, value=c.values[c.start],
                                         description=c.text, **kw)

        def redraw(**settings: Any) -> None:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=self.figsize)
            self.draw(fig, **settings)
            plt.show()

        out = widgets.interactive_output(redraw, live)
        return widgets.VBox([widgets.HBox(list(live.values())), out])

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": repr(self), "text/html": self.html}
        if _in_kernel():
            bundle.update(self.live_widget()._repr_mimebundle_())
            bundle["text/plain"] = repr(self)
        return bundle


def _in_kernel() -> bool:
    """True inside a running IPython kernel that has ipywidgets available."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


_CSS = """<style>
.inwhale-explorer{margin:.5em 0 1em;max-width:100%}
.inwhale-explorer .iwx-controls{display:flex;flex-wrap:wrap;gap:.4em 1.6em;align-items:center;
margin-bottom:.4em;font-size:.95em}
.inwhale-explorer .iwx-control{display:flex;flex-wrap:wrap;align-items:center;gap:.4em;
border:0;margin:0;padding:0}
.inwhale-explorer .iwx-control legend{float:left;width:auto;padding:0;margin:0 .4em 0 0;
font-size:inherit;font-weight:600;line-height:inherit;border:0}
.inwhale-explorer .iwx-control label{margin:0}
.inwhale-explorer .iwx-control>label:first-child{font-weight:600}
.inwhale-explorer .iwx-value{font-variant-numeric:tabular-nums;min-width:2.5em;
padding:0 .3em;border-radius:3px;background:rgba(127,127,127,.15)}
.inwhale-explorer img.iwx-frame{display:block;max-width:100%;height:auto}
</style>"""

# Row-major combination index -> frame; event delegation catches every control. The script
# sets up its own explorer (its parent), or, where a front end runs it detached, every
# explorer on the page not set up yet.
_JS = """<script>(function () {
  function setup(root) {
    if (root.getAttribute("data-iwx-ready")) return;
    root.setAttribute("data-iwx-ready", "1");
    var d = JSON.parse(root.querySelector("script.iwx-data").textContent);
    var img = root.querySelector("img.iwx-frame"), pos = d.start.slice(), first = img.src;
    function show() {
      var i = 0, k, parts = [];
      for (k = 0; k < pos.length; k++) {
        i = i * d.labels[k].length + pos[k];
        root.querySelector("output[data-iwx='" + k + "']").textContent = d.labels[k][pos[k]];
        parts.push(d.names[k] + " " + d.labels[k][pos[k]]);
      }
      var f = d.frames[d.index[i]];
      img.src = f ? "data:image/png;base64," + f : first;
      img.alt = d.alt + ": " + parts.join(", ");
    }
    function update(e) {
      var k = e.target.getAttribute("data-iwx");
      if (k === null || (e.target.type === "radio" && !e.target.checked)) return;
      pos[+k] = +e.target.value;
      if (e.target.type === "range")
        e.target.setAttribute("aria-valuetext", d.labels[+k][pos[+k]]);
      show();
    }
    root.addEventListener("input", update);
    root.addEventListener("change", update);
  }
  var me = document.currentScript;
  if (me && me.parentNode && me.parentNode.classList.contains("inwhale-explorer"))
    setup(me.parentNode);
  else document.querySelectorAll(".inwhale-explorer").forEach(setup);
})();</script>"""


def _control_html(uid: str, k: int, c: Control) -> str:
    """HTML of one control: the input(s), labelled, and an ``<output>`` with its value."""
    cid, esc = f"{uid}-{k}", html.escape
    value = f'<output class="iwx-value" data-iwx="{k}" for="{cid}" aria-live="polite">' \
            f"{esc(c.labels[c.start])}</output>"
    if c.kind == "slider":
        return (f'<div class="iwx-control"><label for="{cid}">{esc(c.text)}</label>'
                f'<input type="range" id="{cid}" data-iwx="{k}" min="0" '
                f'max="{len(c.values) - 1}" step="1" value="{c.start}" '
                f'aria-valuetext="{esc(c.labels[c.start])}">{value}</div>')
    if c.kind == "radio":
        buttons = "".join(
            f'<label><input type="radio" name="{cid}" data-iwx="{k}" value="{j}"'
            f'{" checked" if j == c.start else ""}> {esc(t)}</label>'
            for j, t in enumerate(c.labels))
        return (f'<fieldset class="iwx-control" id="{cid}"><legend>{esc(c.text)}</legend>'
                f"{buttons}{value}</fieldset>")
    options = "".join(f'<option value="{j}"{" selected" if j == c.start else ""}>{esc(t)}'
                      "</option>" for j, t in enumerate(c.labels))
    return (f'<div class="iwx-control"><label for="{cid}">{esc(c.text)}</label>'
            f'<select id="{cid}" data-iwx="{k}">{options}</select>{value}</div>')


_counter = itertools.count()


def _explorer_html(controls: tuple[Control, ...], frames: list[bytes], index: list[int],
                   alt: str, size_px: tuple[int, int]) -> str:
    """The self-contained static explorer: controls, the default frame, data and script."""
    digest = hashlib.sha1(b"".join(frames[:3])).hexdigest()[:8]
    uid = f"iwx-{digest}-{next(_counter)}"
    start = [c.start for c in controls]
    first = 0
    for c in controls:
        first = first * len(c.values) + c.start
    encoded = [base64.b64encode(f).decode() for f in frames]
    default = encoded[index[first]]
    encoded[index[first]] = ""  # the <img> already carries it
    data = {"names": [c.text for c in controls], "labels": [list(c.labels) for c in controls],
            "start": start, "index": index, "frames": encoded, "alt": alt}
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    current = ", ".join(f"{c.text} {c.labels[c.start]}" for c in controls)
    w, h = size_px
    return (
        f'<div class="inwhale-explorer" id="{uid}" role="group" '
        f'aria-label="{html.escape(alt)}">{_CSS}'
        f'<div class="iwx-controls">'
        + "".join(_control_html(uid, k, c) for k, c in enumerate(controls))
        + "</div>"
        f'<img class="iwx-frame" width="{w}" height="{h}" decoding="async" '
        f'alt="{html.escape(alt)}: {html.escape(current)}" src="data:image/png;base64,{default}">'
        f'<script type="application/json" class="iwx-data">{payload}</script>'
        + _JS
        + "</div>"
    )


def _check_frame_options(figsize: tuple[float, float], dpi: int, colors: int | None,
                         max_bytes: int) -> None:
    """Raise ValueError, naming the argument, for a frame size or budget that cannot work."""
    if len(figsize) != 2 or min(figsize) <= 0:
        raise ValueError(f"figsize must be two positive numbers (inches), got {figsize!r}")
    if colors is not None and not 2 <= colors <= 256:
        raise ValueError(f"colors must be in 2..256 or None, got {colors!r}")
    if dpi <= 0 or max_bytes <= 0:
        raise ValueError(f"dpi and max_bytes must be positive, got dpi={dpi}, "
                         f"max_bytes={max_bytes}")


def _render_frames(draw: Callable[..., None], controls: tuple[Control, ...],
                   figsize: tuple[float, float], dpi: int, colors: int | None,
                   max_bytes: int) -> tuple[list[bytes], list[int]]:
    """Draw every combination (row-major); distinct PNGs and each combination's frame index.

    Stops with ValueError (naming ``max_bytes``) as soon as the base64 frames exceed the
    budget, and before drawing anything when there are more than :data:`MAX_FRAMES`.
    """
    n = math.prod(len(c.values) for c in controls)
    if n > MAX_FRAMES:
        raise ValueError(f"controls: {n} combinations exceed MAX_FRAMES={MAX_FRAMES}; "
                         "offer fewer values")
    names = [c.name for c in controls]
    frames: list[bytes] = []
    seen: dict[bytes, int] = {}  # PNG -> its position in frames (identical drawings once)
    index: list[int] = []
    weight = 0
    for values in itertools.product(*(c.values for c in controls)):
        png = _render_png(draw, dict(zip(names, values, strict=True)), figsize, dpi, colors)
        if png not in seen:
            seen[png] = len(frames)
            frames.append(png)
            weight += 4 * math.ceil(len(png) / 3)  # base64
            if weight > max_bytes:
                raise ValueError(
                    f"max_bytes: the explorer's frames exceed its page-weight budget of "
                    f"{max_bytes / 1e6:.2f} MB after {len(index) + 1} of {n} frames "
                    f"({weight / 1e6:.2f} MB); offer fewer values, or lower figsize or dpi")
        index.append(seen[png])
    return frames, index


def explorer(
    draw: Callable[..., None],
    controls: Mapping[str, Sequence[Any]] | Sequence[Control],
    *,
    figsize: tuple[float, float] = (7.0, 3.4),
    dpi: int = 100,
    colors: int | None = 256,
    alt: str = "explorer figure",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Explorer:
    """Pre-render ``draw`` for every combination of ``controls``; show it with or without kernel.

    ``draw(fig, **settings)`` draws one frame on a fresh, empty matplotlib ``Figure``
    (``fig.subplots``, ``fig.add_subplot``, ``fig.tight_layout``; do not use ``plt.*``, which
    would draw on another figure). It is called once per combination — the product of the
    control sizes, e.g. 7 bit widths × 2 schemes = 14 frames — so it should plot precomputed
    tensors, not compute them. A frame costs about 0.3–0.5 s on one laptop core, mostly
    matplotlib's text layout (``fig.tight_layout``, ``savefig``) and 2–3 times that on a
    loaded machine: 10 to 25 frames keep a chapter within its time budget. Draw histograms
    as one ``ax.stairs`` outline (as :func:`~inwhale.viz.plots.error_histogram` does), not
    ``ax.hist``'s patch per bar.

    Static page versus live kernel: see the module docstring. In short, the display is one
    mimebundle with the static explorer as ``text/html`` and, in a running kernel, the live
    ipywidgets as ``application/vnd.jupyter.widget-view+json``; notebooks show the widgets,
    the book (which ranks ``text/html`` first) the static explorer.

    Args:
        draw: ``(fig, **settings) -> None``, one keyword per control name.
        controls: a list of :func:`slider` / :func:`radio` / :func:`dropdown` controls, or the
            shorthand ``{"bits": [2, 4, 8], "scheme": ["symmetric", "asymmetric"]}`` (numbers
            make a slider, up to four categories radio buttons, more a dropdown; each starts
            at its first value).
        figsize: figure size in inches (the frames are ``figsize × dpi`` pixels).
        dpi: resolution of the frames.
        colors: palette size of the PNG frames (2..256), or ``None`` for full colour (for
            photographs, where a palette would band).
        alt: description of the figure, for screen readers (the settings are appended).
        max_bytes: page-weight budget of the explorer's HTML (default 2 MB).

    Returns:
        An :class:`Explorer` (``n_frames``, ``frames``, ``nbytes``, ``html``, ``frame()``).

    Raises:
        TypeError: ``draw`` not callable, ``controls`` of the wrong type.
        RuntimeError: ``draw`` failed for a frame (named in the message; the cause attached).
        ValueError: a bad control (no values, repeats, a default not among its values, a
            name that is not an identifier or repeats), more than :data:`MAX_FRAMES`
            combinations, a non-positive ``figsize``/``dpi``/``max_bytes``, or frames that
            exceed ``max_bytes``.

    Example:
        >>> def draw(fig, bits, scheme):
        ...     fig.add_subplot().set_title(f"{scheme} {bits}")
        >>> ex = explorer(draw, {"bits": [2, 8], "scheme": ["sym", "asym"]}, figsize=(2, 1))
        >>> ex.n_frames, len(ex.frames)
        (4, 4)
    """
    if not callable(draw):
        raise TypeError(f"draw must be callable, got {type(draw).__name__}")
    parsed = _parse_controls(controls)
    _check_frame_options(figsize, dpi, colors, max_bytes)
    frames, index = _render_frames(draw, parsed, figsize, dpi, colors, max_bytes)
    size_px = (round(figsize[0] * dpi), round(figsize[1] * dpi))
    text = _explorer_html(parsed, frames, index, alt, size_px)
    if len(text.encode()) > max_bytes:
        raise ValueError(f"max_bytes: the explorer's HTML weighs {len(text.encode()) / 1e6:.2f} "
                         f"MB, over its budget of {max_bytes / 1e6:.2f} MB")
    return Explorer(draw, parsed, frames, index, figsize, dpi, alt, text)
