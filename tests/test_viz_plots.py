"""inwhale.viz.plots: the error histogram's range and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure

from inwhale.viz import error_histogram


def _drawn(ax):
    """(values, edges) of the one histogram outline on ``ax``."""
    (patch,) = [p for p in ax.patches if hasattr(p, "get_data")]
    data = patch.get_data()
    return np.asarray(data.values), np.asarray(data.edges)


def test_density_histogram_matches_numpy_and_integrates_to_one():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5000, generator=g)
    xhat = torch.round(x * 4) / 4
    ax = Figure().add_subplot()
    error_histogram(x, xhat, step=0.25, ax=ax, bins=21)
    values, edges = _drawn(ax)
    e = (x.double() - xhat.double()).numpy()
    ref, ref_edges = np.histogram(e, bins=21, range=(-0.1875, 0.1875), density=True)
    np.testing.assert_allclose(values, ref)
    np.testing.assert_allclose(edges, ref_edges)
    assert abs((values * np.diff(edges)).sum() - 1) < 1e-9


def test_lim_narrows_the_range_and_leaves_out_the_tails():
    x = torch.tensor([0.0, 0.01, -0.02, 0.03, 5.0])
    xhat = torch.zeros(5)
    ax = Figure().add_subplot()
    error_histogram(x, xhat, ax=ax, bins=10, lim=0.05, density=False)
    values, edges = _drawn(ax)
    assert edges[0] == -0.05 and edges[-1] == 0.05
    assert values.sum() == 4  # the 5.0 outlier is outside ±lim
    with pytest.raises(ValueError, match="lim"):
        error_histogram(x, xhat, ax=Figure().add_subplot(), lim=0.0)
