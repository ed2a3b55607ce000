"""Lloyd–Max against Max's (1960) published Gaussian table, and 1-D k-means against sklearn."""

import pytest
import torch
from _reference import require

from inwhale.formats.codebook import codebook_storage_bits, nearest_codes
from inwhale.formats.kmeans_share import LearnedLUT, kmeans_share, linear_init, train_lut
from inwhale.formats.lloyd_max import density_lloyd_max, gaussian_lloyd_max, lloyd_max_samples

# Max (1960), Table I: minimum mean-squared error of the optimal N-level quantizer of N(0,1)
MAX_1960_MSE = {2: 0.3634, 4: 0.1175, 8: 0.03454, 16: 0.009497}
# Max (1960): the positive output levels for N = 4 and N = 8
MAX_1960_LEVELS = {4: [0.4528, 1.510], 8: [0.2451, 0.7560, 1.344, 2.152]}


@pytest.mark.parametrize("n", sorted(MAX_1960_MSE))
def test_gaussian_mse_matches_max_table(n):
    # the table is given to 4 significant digits; our closed-form optimum for N = 16 is
    # 0.0095010 (Max printed 0.009497), hence the tolerance
    assert gaussian_lloyd_max(n).mse == pytest.approx(MAX_1960_MSE[n], abs=5e-5)


@pytest.mark.parametrize("n", sorted(MAX_1960_LEVELS))
def test_gaussian_levels_match_max_table(n):
    levels = gaussian_lloyd_max(n).levels
    assert levels[n // 2:].tolist() == pytest.approx(MAX_1960_LEVELS[n], abs=1e-3)
    assert torch.allclose(levels, -levels.flip(0), atol=1e-9)  # symmetric


def test_density_quadrature_agrees_with_closed_form():
    gauss = lambda x: torch.exp(-0.5 * x * x)  # unnormalised on purpose
    for n in (2, 4, 8):
        a = density_lloyd_max(gauss, n, (-10.0, 10.0))
        b = gaussian_lloyd_max(n)
        assert a.mse == pytest.approx(b.mse, rel=1e-5)
        assert torch.allclose(a.levels, b.levels, atol=1e-4)


def test_uniform_density_gives_the_uniform_quantizer():
    # for U(0, 1) the optimum is uniform: levels (i + ½)/L, MSE 1/(12 L²)
    r = density_lloyd_max(lambda x: torch.ones_like(x), 8, (0.0, 1.0))
    assert torch.allclose(r.levels, (torch.arange(8, dtype=torch.float64) + 0.5) / 8, atol=1e-6)
    assert r.mse == pytest.approx(1 / (12 * 64), rel=1e-4)


def test_samples_converge_to_the_density_optimum():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400_000, generator=g, dtype=torch.float64)
    r = lloyd_max_samples(x, 8)
    assert r.mse == pytest.approx(MAX_1960_MSE[8], rel=0.02)


def test_samples_mse_is_the_empirical_mse():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5000, generator=g)
    r = lloyd_max_samples(x, 4)
    xhat = r.levels[nearest_codes(x.double(), r.levels).long()]
    assert r.mse == pytest.approx(float(((x.double() - xhat) ** 2).mean()), rel=1e-9)


def test_kmeans_share_matches_sklearn_kmeans_from_the_same_init():
    KMeans = require("sklearn.cluster").KMeans
    g = torch.Generator().manual_seed(2)
    w = torch.randn(64, 64, generator=g) * 0.02
    s = kmeans_share(w, bits=3, tol=1e-12)
    init = linear_init(w, 8).numpy().reshape(-1, 1)
    km = KMeans(8, init=init, n_init=1, tol=0, max_iter=1000, algorithm="lloyd")
    km.fit(w.double().reshape(-1, 1).numpy())
    ref = torch.tensor(km.cluster_centers_.ravel()).sort().values
    assert torch.allclose(s.codebook.double(), ref, atol=1e-6)
    ours = float(((s.dequantize() - w) ** 2).sum())
    assert ours == pytest.approx(km.inertia_, rel=1e-4)


def test_kmeans_revives_empty_clusters():
    """With outliers, linear init leaves clusters empty; they must be put back to work
    (sklearn relocates them too): every code used, and no worse than sklearn's k-means."""
    KMeans = require("sklearn.cluster").KMeans
    g = torch.Generator().manual_seed(2)
    w = torch.randn(64, 64, generator=g) * 0.02
    w[0, :4] = torch.tensor([0.2, -0.15, 0.1, 0.3])  # a few outliers, as in real layers
    s = kmeans_share(w, bits=3, tol=1e-12)
    assert torch.unique(s.codes).numel() == 8
    init = linear_init(w, 8).numpy().reshape(-1, 1)
    km = KMeans(8, init=init, n_init=1, tol=0, max_iter=1000, algorithm="lloyd")
    km.fit(w.double().reshape(-1, 1).numpy())
    assert float(((s.dequantize() - w) ** 2).sum()) <= km.inertia_ * 1.001


def test_kmeans_storage_accounting():
    w = torch.linspace(-1, 1, 1000)
    s = kmeans_share(w, bits=4)
    assert s.storage_bits() == 1000 * 4 + 16 * 32 == codebook_storage_bits(1000, 16)
    assert s.compression_ratio() == pytest.approx(32_000 / 4512)
    assert s.codes.dtype == torch.uint8 and int(s.codes.max()) == 15


def test_learned_lut_gradients_are_scatter_add_and_ste():
    table = torch.tensor([-1.0, 0.0, 1.0])
    lut = LearnedLUT(table)
    w = torch.tensor([-0.9, -0.2, 0.1, 0.7, 0.8], requires_grad=True)
    c = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    (lut(w) * c).sum().backward()
    # codes: 0, 1, 1, 2, 2 → ∂/∂table = [1, 2+3, 4+5]; ∂/∂w = c (straight through)
    assert lut.table.grad.tolist() == [1.0, 5.0, 9.0]
    assert w.grad.tolist() == c.tolist()


def test_learned_lut_on_reconstruction_loss_reaches_kmeans():
    g = torch.Generator().manual_seed(3)
    w = torch.randn(2048, generator=g)
    lut = LearnedLUT(torch.linspace(-2, 2, 4))
    train_lut(lut, lambda q: ((q(w) - w) ** 2).mean(), steps=100, lr=0.05)
    km = kmeans_share(w, bits=2)
    mse_lut = float(((lut(w).detach() - w) ** 2).mean())
    mse_km = float(((km.dequantize() - w) ** 2).mean())
    assert mse_lut == pytest.approx(mse_km, rel=5e-3)


def test_learned_lut_on_output_loss_beats_kmeans_output_error():
    g = torch.Generator().manual_seed(4)
    # columns with large inputs hold small weights: weight MSE and output error disagree
    w = torch.randn(32, 64, generator=g) * torch.linspace(2, 0.1, 64)
    x = torch.randn(256, 64, generator=g) * torch.linspace(0.1, 3, 64)
    out_err = lambda wh: float(((x @ (wh - w).T) ** 2).mean())
    km = kmeans_share(w, bits=2)
    lut = LearnedLUT(km.codebook)
    losses = train_lut(lut, lambda q: ((x @ (q(w) - w).T) ** 2).mean(), steps=150, lr=0.01)
    assert losses[-1] < losses[0]
    assert out_err(lut(w).detach()) < 0.98 * out_err(km.dequantize())


def test_bad_input():
    with pytest.raises(ValueError, match="n_levels"):
        gaussian_lloyd_max(0)
    with pytest.raises(ValueError, match="support"):
        density_lloyd_max(torch.exp, 4, (1.0, 0.0))
    with pytest.raises(ValueError, match="init"):
        kmeans_share(torch.randn(10), bits=2, init="forgy")
    with pytest.raises(ValueError, match="levels0"):
        lloyd_max_samples(torch.randn(10), 4, levels0=torch.zeros(3))
    with pytest.raises(ValueError, match="strictly"):
        nearest_codes(torch.randn(3), torch.tensor([1.0, 0.0]))
