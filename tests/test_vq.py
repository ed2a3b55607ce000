"""Vector quantizers against independent references: scikit-learn KMeans, faiss PQ,
scipy's Procrustes, dense least squares, brute-force lattice search, published G values."""

import itertools

import pytest
import torch
from _reference import require

from inwhale.data.images import digits
from inwhale.vq import (
    AdditiveQuantizer,
    KMeansVQ,
    OptimizedProductQuantizer,
    ProductQuantizer,
    ResidualQuantizer,
    kmeans,
    nearest_dn,
    nearest_e8,
    normalized_second_moment,
)
from inwhale.vq.aq import beam_encode, icm_encode, least_squares_codebooks
from inwhale.vq.lattice import KNOWN_G, LatticeQuantizer
from inwhale.vq.opq import procrustes


@pytest.fixture(scope="module")
def X() -> torch.Tensor:
    return digits()[0].reshape(-1, 64)  # (1797, 64) real images


def mse(a, b):
    return float(((a - b) ** 2).mean())


def test_kmeans_matches_sklearn_inertia(X):
    from sklearn.cluster import KMeans

    ref = KMeans(16, n_init=3, random_state=0).fit(X.double().numpy()).inertia_
    _, _, ours = kmeans(X.double(), 16, n_init=3, seed=0)
    assert ours <= 1.02 * ref, (ours, ref)


def test_kmeans_inertia_is_sum_of_distances(X):
    C, a, inertia = kmeans(X, 8)
    assert inertia == pytest.approx(float(((X - C[a]) ** 2).sum()), rel=1e-4)
    # each centroid is the mean of its cluster (Lloyd's fixed point)
    for k in range(8):
        assert torch.allclose(C[k], X[a == k].mean(0), atol=1e-4)


def test_pq_matches_faiss_distortion(X):
    faiss = require("faiss")
    import numpy as np

    xs = np.ascontiguousarray(X.numpy())
    ref = faiss.ProductQuantizer(64, 8, 4)  # M = 8 sub-spaces, 16 centroids each
    ref.train(xs)
    ref_mse = mse(torch.from_numpy(ref.decode(ref.compute_codes(xs))), X)
    ours = ProductQuantizer(8, 16).fit(X)
    assert ours.code_bits == ref.code_size * 8 == 32
    assert mse(ours.quantize(X), X) <= 1.03 * ref_mse


def test_pq_with_one_subspace_is_kmeans(X):
    pq, vq = ProductQuantizer(1, 8, seed=3).fit(X), KMeansVQ(8, iters=50, seed=3).fit(X)
    assert torch.equal(pq.encode(X), vq.encode(X))


def test_procrustes_matches_scipy():
    from scipy.linalg import orthogonal_procrustes

    g = torch.Generator().manual_seed(0)
    A, B = (
        torch.randn(50, 6, generator=g, dtype=torch.float64),
        torch.randn(50, 6, generator=g, dtype=torch.float64),
    )
    R_ref, _ = orthogonal_procrustes(A.numpy(), B.numpy())
    assert torch.allclose(procrustes(A, B), torch.from_numpy(R_ref), atol=1e-10)


def test_opq_beats_pq_on_rotated_data(X):
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(64, 64, generator=g))
    Xr = X[:800] @ Q  # the same data in a random basis: PQ's fixed blocks no longer fit
    pq = ProductQuantizer(8, 16, iters=20).fit(Xr)
    opq = OptimizedProductQuantizer(8, 16, outer_iters=4).fit(Xr)
    R = opq.rotation
    assert torch.allclose(R.T @ R, torch.eye(64), atol=1e-4)
    assert mse(opq.quantize(Xr), Xr) < 0.97 * mse(pq.quantize(Xr), Xr)


def test_rq_stages_lower_error_and_one_stage_is_kmeans(X):
    X = X[:600]
    rq = ResidualQuantizer(3, 16, iters=20).fit(X)
    codes = rq.encode(X)
    errs = [mse(rq.codebooks[torch.arange(m), codes[:, :m]].sum(1), X) for m in (1, 2, 3)]
    assert errs[0] > errs[1] > errs[2]
    vq = KMeansVQ(16, iters=20).fit(X)
    assert errs[0] == pytest.approx(mse(vq.quantize(X), X), rel=1e-6)


def test_least_squares_codebooks_match_dense_lstsq():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 5, generator=g, dtype=torch.float64)
    codes = torch.randint(4, (200, 3), generator=g)
    B = torch.zeros(200, 12, dtype=torch.float64)
    for m in range(3):
        B[torch.arange(200), 4 * m + codes[:, m]] = 1.0
    # B is rank-deficient (each block of K columns sums to 1): use the SVD driver; the
    # default 'gelsy' can return a non-optimal solution for such matrices on CPU.
    ref = torch.linalg.lstsq(B, X, driver="gelsd").solution  # (12, 5), minimum-norm
    ours = least_squares_codebooks(X, codes, 4, ridge=1e-12).reshape(12, 5)
    assert torch.allclose(B @ ours, B @ ref, atol=1e-8)  # same fitted values


def test_beam_search_one_is_greedy_and_wider_is_better(X):
    rq = ResidualQuantizer(3, 8, iters=10).fit(X[:400])
    assert torch.equal(beam_encode(X[:400], rq.codebooks, 1), rq.encode(X[:400]))
    err = lambda c: mse(rq.decode(c), X[:400])
    assert err(beam_encode(X[:400], rq.codebooks, 16)) <= err(rq.encode(X[:400])) + 1e-7


def test_aq_monotone_and_beats_rq(X):
    X = X[:800]
    aq = AdditiveQuantizer(2, 16, iters=4).fit(X)
    h = aq.history
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(h))
    rq = ResidualQuantizer(2, 16).fit(X)
    assert mse(aq.quantize(X), X) < mse(rq.quantize(X), X)
    codes = beam_encode(X, aq.codebooks, 1)
    before = ((X - aq.decode(codes)) ** 2).sum(1)
    after = ((X - aq.decode(icm_encode(X, aq.codebooks, codes, 2))) ** 2).sum(1)
    assert bool((after <= before + 1e-5).all())  # ICM never raises a row's error


@pytest.mark.parametrize(
    "vq",
    [
        ProductQuantizer(4, 16),
        OptimizedProductQuantizer(4, 16, outer_iters=2),
        ResidualQuantizer(4, 16),
        AdditiveQuantizer(4, 16, iters=2),
    ],
)
def test_one_interface(vq, X):
    vq.fit(X[:500])
    codes = vq.encode(X[:10])
    assert codes.shape == (10, 4) and codes.dtype == torch.int64 and int(codes.max()) < 16
    assert vq.decode(codes).shape == (10, 64)
    assert vq.code_bits == 16 and vq.bits_per_dim == 0.25
    with pytest.raises(ValueError, match="columns"):
        vq.encode(X[:10, :32])


def test_bad_input_names_argument():
    with pytest.raises(ValueError, match="k must be"):
        kmeans(torch.zeros(3, 2), 5)
    with pytest.raises(ValueError, match="num_subspaces"):
        ProductQuantizer(3, 4).fit(torch.zeros(10, 8))
    with pytest.raises(RuntimeError, match="not fitted"):
        ResidualQuantizer(2, 4).encode(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="lattice"):
        LatticeQuantizer("A2", 1.0)


def _brute(x, n, half):
    """Nearest point among D_n (and D_n + ½ when ``half``) within ±1 of the rounded point."""
    best, best_d = None, float("inf")
    offsets = torch.tensor(list(itertools.product((-1, 0, 1), repeat=n)), dtype=torch.float64)
    for shift in (0.0, 0.5) if half else (0.0,):
        cand = torch.round(x - shift) + offsets  # (3^n, n)
        cand = cand[cand.sum(1) % 2 == 0] + shift
        d = ((cand - x) ** 2).sum(1)
        i = int(d.argmin())
        if float(d[i]) < best_d:
            best, best_d = cand[i], float(d[i])
    return best, best_d


def test_lattice_nearest_point_equals_brute_force():
    g = torch.Generator().manual_seed(0)
    for n, f, half in ((4, nearest_dn, False), (8, nearest_e8, True)):
        xs = 4 * torch.randn(40, n, generator=g, dtype=torch.float64)
        for x in xs:
            _, d_ref = _brute(x, n, half)
            assert float(((f(x) - x) ** 2).sum()) == pytest.approx(d_ref, abs=1e-12)


@pytest.mark.parametrize("lattice", ["Z", "D4", "E8"])
def test_normalized_second_moment_matches_published(lattice):
    assert normalized_second_moment(lattice, 200_000) == pytest.approx(KNOWN_G[lattice], rel=0.01)


def test_lattice_quantizer_at_equal_density_beats_rounding():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(20_000, 8, generator=g, dtype=torch.float64)
    step = 0.25
    z_err = mse(LatticeQuantizer.for_step("Z", step).quantize(x), x)
    e8_err = mse(LatticeQuantizer.for_step("E8", step).quantize(x), x)
    assert z_err == pytest.approx(step**2 / 12, rel=0.02)
    assert e8_err / z_err == pytest.approx(KNOWN_G["E8"] / KNOWN_G["Z"], rel=0.03)


def test_lattice_entropy_counts_points():
    x = torch.arange(8, dtype=torch.float64).repeat(100).unsqueeze(1)  # 8 equiprobable integers
    assert LatticeQuantizer("Z", 1.0).entropy_bits_per_dim(x) == pytest.approx(3.0)
    e8 = LatticeQuantizer("E8", 1.0)
    y = torch.cat([torch.zeros(50, 8), torch.full((50, 8), 0.5)])  # two E8 points, p = 1/2 each
    assert e8.entropy_bits_per_dim(y) == pytest.approx(1 / 8)
