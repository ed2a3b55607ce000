"""Observers: hand-computed ranges, torch.quantile, brute-force searches."""

import pytest
import torch

from inwhale import PerAxis, PerGroup, choose_qparams, fake_quantize, qparams_from_range
from inwhale.observers import (
    HistogramObserver,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MSEObserver,
    PercentileObserver,
    kl_divergences,
    kl_threshold,
)


def test_observers_return_input_unchanged():
    x = torch.randn(5, 7)
    for obs in (MinMaxObserver(), MovingAverageMinMaxObserver(), PercentileObserver(),
                MSEObserver(), HistogramObserver()):
        assert obs(x) is x


def test_minmax_running_range_by_hand():
    obs = MinMaxObserver()
    obs(torch.tensor([-1.0, 2.0]))
    obs(torch.tensor([0.5, 3.0]))
    obs(torch.tensor([-0.5, 1.0]))
    lo, hi = obs.calculate_range()
    assert (float(lo), float(hi)) == (-1.0, 3.0)
    qp = obs.calculate_qparams(bits=8)
    ref = qparams_from_range(-1.0, 3.0, bits=8)
    assert torch.equal(qp.scale, ref.scale) and torch.equal(qp.zero_point, ref.zero_point)


def test_minmax_per_channel_equals_choose_qparams():
    w = torch.randn(16, 32)
    obs = MinMaxObserver(granularity=PerAxis(0))
    obs(w)
    qp = obs.calculate_qparams(bits=4, symmetric=True)
    ref = choose_qparams(w, bits=4, symmetric=True, granularity=PerAxis(0))
    assert torch.equal(qp.scale, ref.scale)


def test_moving_average_by_hand():
    obs = MovingAverageMinMaxObserver(averaging_constant=0.1)
    obs(torch.tensor([-1.0, 1.0]))
    obs(torch.tensor([-3.0, 5.0]))
    lo, hi = obs.calculate_range()
    assert float(lo) == pytest.approx(-1.0 + 0.1 * (-3.0 + 1.0))
    assert float(hi) == pytest.approx(1.0 + 0.1 * (5.0 - 1.0))


def test_percentile_matches_torch_quantile():
    torch.manual_seed(0)
    x1, x2 = torch.randn(3000), torch.randn(2000) * 2
    obs = PercentileObserver(percentile=99.0)
    obs(x1)
    obs(x2)
    lo, hi = obs.calculate_range()
    allx = torch.cat([x1, x2])
    assert float(lo) == pytest.approx(float(torch.quantile(allx, 0.01)), abs=1e-5)
    assert float(hi) == pytest.approx(float(torch.quantile(allx, 0.99)), abs=1e-5)


def test_percentile_per_channel():
    torch.manual_seed(1)
    w = torch.randn(4, 1000)
    obs = PercentileObserver(percentile=95.0, granularity=PerAxis(0))
    obs(w)
    lo, hi = obs.calculate_range()
    assert torch.allclose(hi.flatten(), torch.quantile(w, 0.95, dim=1), atol=1e-6)
    assert torch.allclose(lo.flatten(), torch.quantile(w, 0.05, dim=1), atol=1e-6)


def test_mse_observer_finds_the_brute_force_optimum():
    torch.manual_seed(2)
    x = torch.distributions.Laplace(0.0, 1.0).sample((20_000,))
    obs = MSEObserver(n_candidates=50, min_ratio=0.1)
    obs(x)
    qp = obs.calculate_qparams(bits=3, symmetric=True)
    best = min(
        (float((fake_quantize(x, qparams_from_range(a * x.min(), a * x.max(), bits=3,
                                                    symmetric=True)) - x).pow(2).mean()), a)
        for a in torch.linspace(0.1, 1.0, 50).tolist()
    )
    got = float((fake_quantize(x, qp) - x).pow(2).mean())
    assert got == pytest.approx(best[0], rel=1e-5)
    minmax = float((fake_quantize(x, choose_qparams(x, bits=3, symmetric=True)) - x)
                   .pow(2).mean())
    assert got < 0.5 * minmax  # clipping pays off a lot at 3 bits on a heavy tail


def test_mse_observer_per_group_shape():
    w = torch.randn(8, 576)
    obs = MSEObserver(n_candidates=10, granularity=PerGroup(128))
    obs(w)
    assert obs.calculate_qparams(bits=4).scale.shape == (8, 5, 1)


def test_kl_divergence_by_hand():
    # 4 bins, 2 levels: candidate i=2 keeps bins [a, b] + outliers; i=4 merges pairs.
    hist = torch.tensor([4.0, 2.0, 1.0, 1.0])
    kl = kl_divergences(hist, levels=2)
    # i = 2: P = [4, 2+2] / 8, Q = bins kept one per level = [4, 2]/6 -> KL(P||Q)
    p = torch.tensor([0.5, 0.5], dtype=torch.float64)
    q = torch.tensor([4 / 6, 2 / 6], dtype=torch.float64)
    assert float(kl[0]) == pytest.approx(float((p * (p / q).log()).sum()), rel=1e-9)
    # i = 4: P = hist/8; Q merges (4,2)->3,3 and (1,1)->1,1 -> Q = [3,3,1,1]/8
    p = hist.double() / 8
    q = torch.tensor([3.0, 3.0, 1.0, 1.0]).double() / 8
    assert float(kl[2]) == pytest.approx(float((p * (p / q).log()).sum()), rel=1e-9)


def test_kl_threshold_on_known_distributions():
    torch.manual_seed(3)
    uniform = torch.rand(200_000) * 2 - 1
    # uniform data: nothing to gain by clipping, threshold near the max
    assert float(kl_threshold(uniform, levels=128)) > 0.95
    lap = torch.distributions.Laplace(0.0, 1.0).sample((200_000,))
    t4, t8 = float(kl_threshold(lap, levels=8)), float(kl_threshold(lap, levels=128))
    assert t4 < t8 < float(lap.abs().max())  # fewer levels -> clip harder


def test_histogram_observer_clips_an_outlier():
    torch.manual_seed(4)
    x = torch.randn(50_000)
    x[0] = 40.0
    obs = HistogramObserver()
    obs(x)
    qp = obs.calculate_qparams(bits=8, symmetric=True)
    assert float(qp.scale) * 127.5 < 10.0


def test_observer_errors():
    with pytest.raises(ValueError, match="has seen no data"):
        MinMaxObserver().calculate_qparams()
    obs = MinMaxObserver(granularity=PerAxis(0))
    obs(torch.randn(4, 3))
    with pytest.raises(ValueError, match="earlier inputs"):
        obs(torch.randn(5, 3))
    with pytest.raises(ValueError, match="percentile"):
        PercentileObserver(percentile=30)
    with pytest.raises(ValueError, match="averaging_constant"):
        MovingAverageMinMaxObserver(averaging_constant=0)
    with pytest.raises(ValueError, match="NaN or inf"):
        MinMaxObserver()(torch.tensor([float("nan")]))


def test_max_values_subsample_sees_every_channel():
    # (128 tokens, 1536 channels) per-tensor: a stride of 12 would only see every 12th channel
    x = torch.zeros(128, 1536)
    x[:, 507] = 80.0  # one massive channel, as in SmolLM2
    obs = MinMaxObserver()
    from inwhale.observers import PercentileObserver as P

    p = P(percentile=100.0, max_values=16384)
    p(x)
    obs(x)
    assert float(p.calculate_range()[1]) == 80.0
    assert p.data().shape[1] == 16384
