"""Kernel-free explorers (inwhale.viz.explorer) and the slider helpers built on them."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest

pytest.importorskip("matplotlib")
from PIL import Image

from inwhale.viz import dropdown, explorer, frame_slider, live_slider, radio, slider
from inwhale.viz.explorer import DEFAULT_MAX_BYTES, MAX_FRAMES

SCHEMES = ["symmetric", "asymmetric"]


def draw_text(fig, bits, scheme="symmetric", rounding="nearest"):
    """A frame that depends on every setting: a bar whose height is the bit width."""
    ax = fig.add_subplot()
    ax.bar([0], [bits], color="C0" if scheme == "symmetric" else "C3")
    ax.set_ylim(0, 9)
    ax.set_title(f"{scheme} {rounding} {bits}")


def data_block(ex):
    m = re.search(r'<script type="application/json" class="iwx-data">(.*?)</script>', ex.html)
    return json.loads(m.group(1).replace("<\\/", "</"))


def test_frame_count_is_product_of_control_sizes():
    ex = explorer(draw_text, [slider("bits", [2, 3, 4]), radio("scheme", SCHEMES),
                              dropdown("rounding", ["nearest", "floor", "stochastic", "up",
                                                    "down"])], figsize=(2, 1.5), dpi=40)
    assert ex.n_frames == 3 * 2 * 5
    assert len(ex.frames) == 30  # every drawing differs, none deduplicated
    assert len(data_block(ex)["index"]) == 30


def test_frames_follow_row_major_order_and_match_a_fresh_drawing():
    ex = explorer(draw_text, {"bits": [2, 8], "scheme": SCHEMES}, figsize=(2, 1.5), dpi=40)
    combos = ex.combinations()
    assert combos[1] == {"bits": 2, "scheme": "asymmetric"}  # the last control varies fastest
    # the stored frame for (8, asymmetric) is the one a single-frame explorer draws for it
    one = explorer(draw_text, {"bits": [8], "scheme": ["asymmetric"]}, figsize=(2, 1.5), dpi=40)
    assert ex.frame(bits=8, scheme="asymmetric") == one.frames[0]
    assert ex.frame(bits=8, scheme="asymmetric") != ex.frame(bits=2, scheme="asymmetric")


def test_identical_frames_are_stored_once():
    ex = explorer(lambda fig, bits, scheme: draw_text(fig, bits),  # scheme ignored
                  {"bits": [2, 4], "scheme": SCHEMES}, figsize=(2, 1.5), dpi=40)
    assert ex.n_frames == 4 and len(ex.frames) == 2
    assert data_block(ex)["index"] == [0, 0, 1, 1]


def test_frames_are_png_of_the_requested_size():
    ex = explorer(draw_text, {"bits": [2, 3]}, figsize=(3, 2), dpi=50)
    image = Image.open(io.BytesIO(ex.frames[0]))
    assert image.format == "PNG" and image.size == (150, 100)
    full = explorer(draw_text, {"bits": [2, 3]}, figsize=(3, 2), dpi=50, colors=None)
    assert Image.open(io.BytesIO(full.frames[0])).mode in ("RGB", "RGBA")


def test_html_has_labelled_controls_with_value_labels():
    ex = explorer(draw_text, [slider("bits", [2, 3, 4, 8], default=4, label="bit width"),
                              radio("scheme", SCHEMES, default="asymmetric"),
                              dropdown("rounding", ["nearest", "floor"],
                                       value_labels=["round to nearest", "floor"])],
                  figsize=(2, 1.5), dpi=40, alt="levels")
    page = ex.html
    # slider: a range over positions, a <label for>, a readable aria-valuetext, the value shown
    rng = re.search(r'<input type="range" id="([^"]+)"[^>]*>', page)
    assert rng and 'max="3"' in rng.group(0) and 'value="2"' in rng.group(0)
    assert 'aria-valuetext="4"' in rng.group(0)
    assert f'<label for="{rng.group(1)}">bit width</label>' in page
    outputs = re.findall(r'<output class="iwx-value"[^>]*>([^<]*)</output>', page)
    assert outputs == ["4", "asymmetric", "round to nearest"]
    # radio buttons in a fieldset with a legend, the default checked
    assert "<legend>scheme</legend>" in page
    assert re.search(r'type="radio"[^>]*value="1" checked> asymmetric', page)
    # dropdown: a labelled <select> with the value labels
    sel = re.search(r'<select id="([^"]+)"', page)
    assert sel and "round to nearest</option>" in page
    # the image shows the default frame and says which settings it shows
    img = re.search(r'<img class="iwx-frame"[^>]*alt="([^"]*)" src="data:image/png;base64,'
                    r'([^"]+)"', page)
    assert img.group(1) == "levels: bit width 4, scheme asymmetric, rounding round to nearest"
    default = ex.frame(bits=4, scheme="asymmetric", rounding="nearest")
    assert base64.b64decode(img.group(2)) == default
    data = data_block(ex)
    assert data["labels"][0] == ["2", "3", "4", "8"] and data["start"] == [2, 1, 0]
    # no network: no external script, stylesheet or font
    assert "http://" not in page and "https://" not in page


def test_mapping_shorthand_infers_control_kinds():
    ex = explorer(draw_text, {"bits": [2, 3], "scheme": SCHEMES,
                              "rounding": ["a", "b", "c", "d", "e"]}, figsize=(2, 1.5), dpi=30)
    assert [c.kind for c in ex.controls] == ["slider", "radio", "dropdown"]


def test_budget_error_names_max_bytes():
    with pytest.raises(ValueError, match="max_bytes"):
        explorer(draw_text, {"bits": [2, 3, 4]}, figsize=(2, 1.5), dpi=40, max_bytes=2_000)
    assert DEFAULT_MAX_BYTES == 2_000_000
    ok = explorer(draw_text, {"bits": [2, 3, 4]}, figsize=(2, 1.5), dpi=40)
    assert ok.nbytes < DEFAULT_MAX_BYTES


def test_too_many_combinations_raise_before_drawing():
    calls = []
    with pytest.raises(ValueError, match="controls"):
        explorer(lambda fig, a, b: calls.append(1), {"a": list(range(MAX_FRAMES)), "b": [1, 2]})
    assert not calls


@pytest.mark.parametrize(
    "controls, error, word",
    [
        ({}, ValueError, "controls"),
        ({"bits": []}, ValueError, "controls"),
        ({"bits": [2, 2]}, ValueError, "controls"),
        ({"not a name": [1]}, ValueError, "controls"),
        ([slider("bits", [2]), slider("bits", [3])], ValueError, "controls"),
        ({"bits": 3}, TypeError, "controls"),
        ({"bits": "234"}, TypeError, "controls"),
        ("bits", TypeError, "controls"),
        ([("bits", [2, 3])], TypeError, "controls"),
    ],
)
def test_bad_control_specs_raise_naming_the_argument(controls, error, word):
    with pytest.raises(error, match=word):
        explorer(draw_text, controls)


def test_bad_control_constructors_raise():
    with pytest.raises(ValueError, match="default"):
        slider("bits", [2, 3], default=4)
    with pytest.raises(ValueError, match="value_labels"):
        radio("scheme", SCHEMES, value_labels=["only one"])
    with pytest.raises(ValueError, match="controls"):
        dropdown("2bits", [1])


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="draw"):
        explorer("draw", {"bits": [2]})
    with pytest.raises(ValueError, match="figsize"):
        explorer(draw_text, {"bits": [2]}, figsize=(0, 2))
    with pytest.raises(ValueError, match="colors"):
        explorer(draw_text, {"bits": [2]}, colors=1)


def test_draw_errors_name_the_frame():
    def broken(fig, bits):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom") as info:
        explorer(broken, {"bits": [5]})
    assert "{'bits': 5}" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError) and str(info.value.__cause__) == "boom"


def test_outside_a_kernel_the_bundle_is_static_html():
    ex = explorer(draw_text, {"bits": [2, 3]}, figsize=(2, 1.5), dpi=30)
    bundle = ex._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert bundle["text/html"] == ex.html


def test_live_widget_uses_the_same_controls():
    widgets = pytest.importorskip("ipywidgets")
    ex = explorer(draw_text, [slider("bits", [2, 3, 4], default=3), radio("scheme", SCHEMES),
                              dropdown("rounding", ["nearest", "floor"])], figsize=(2, 1.5),
                  dpi=30)
    panel = ex.live_widget()
    row = panel.children[0].children
    assert [type(w) for w in row] == [widgets.SelectionSlider, widgets.RadioButtons,
                                      widgets.Dropdown]
    assert row[0].value == 3 and row[0].description == "bits"
    assert [label for label, _ in row[1].options] == SCHEMES and row[1].value == "symmetric"


def test_frame_slider_is_a_one_control_explorer_showing_its_value():
    ex = frame_slider(lambda fig, b: draw_text(fig, b), [2, 4, 8], figsize=(2, 1.5),
                      name="bits", default=4)
    assert ex.n_frames == 3 and [c.kind for c in ex.controls] == ["slider"]
    assert re.search(r'<output class="iwx-value"[^>]*>4</output>', ex.html)


def test_live_slider_static_page_shows_start_picture_and_kernel_note():
    widgets = pytest.importorskip("ipywidgets")
    import matplotlib.pyplot as plt

    seen = []

    def draw(bits=3, scheme="symmetric"):
        seen.append((bits, scheme))
        fig = plt.figure(figsize=(2, 1.5))
        draw_text(fig, bits, scheme)
        plt.show()

    before = plt.get_fignums()
    panel = live_slider(draw, bits=widgets.IntSlider(value=5, min=2, max=8),
                        scheme=widgets.Dropdown(options=SCHEMES, value="asymmetric"))
    assert seen == [(5, "asymmetric")]
    assert plt.get_fignums() == before  # the start figure was captured and closed
    page = panel._repr_mimebundle_()["text/html"]
    assert page.count('src="data:image/png;base64,') == 1
    assert "need a running Python kernel" in page
    assert "bits = 5, scheme = asymmetric" in page
    assert "<input" not in page and "<select" not in page  # nothing that moves without effect
    with pytest.raises(ValueError, match="controls"):
        live_slider(draw)
