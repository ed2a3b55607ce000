"""Rounding rules against torch, Python and hand-computed values."""

import math
from decimal import ROUND_HALF_UP, Decimal

import pytest
import torch

from inwhale.rounding import (
    AwayFromZeroRounding,
    CeilRounding,
    DeadZoneRounding,
    FloorRounding,
    NearestRounding,
    StochasticRounding,
    TruncRounding,
)

VALUES = torch.tensor([-2.5, -1.5, -1.2, -0.5, -0.0, 0.0, 0.3, 0.5, 0.7, 1.5, 2.5, 3.49999,
                       0.49999997, 1e7 + 0.5, -8388609.0])


def test_ties_to_even_is_torch_round():
    torch.manual_seed(0)
    v = torch.cat([VALUES, torch.randn(10_000) * 100, torch.arange(-50, 50) + 0.5])
    assert torch.equal(NearestRounding()(v), torch.round(v))


def test_ties_away_matches_decimal_half_up():
    torch.manual_seed(1)
    v = torch.cat([VALUES, torch.randn(2_000) * 10, torch.arange(-50, 50) + 0.5])
    got = NearestRounding(ties="away")(v)
    ref = [math.copysign(float(Decimal(float(a)).copy_abs().quantize(Decimal(1), ROUND_HALF_UP)),
                         float(a)) for a in v]
    assert got.tolist() == ref


@pytest.mark.parametrize(("rule", "fn"), [
    (FloorRounding(), math.floor), (CeilRounding(), math.ceil), (TruncRounding(), math.trunc),
    (AwayFromZeroRounding(), lambda a: math.copysign(math.ceil(abs(a)), a)),
])
def test_directed_rules_match_python(rule, fn):
    torch.manual_seed(2)
    v = torch.cat([VALUES, torch.randn(2_000) * 10])
    assert rule(v).tolist() == [float(fn(float(a))) for a in v]


def test_stochastic_rounding_is_unbiased_and_seeded():
    x = torch.full((200_000,), 2.3)
    draws = StochasticRounding(seed=0)(x)
    assert set(draws.unique().tolist()) == {2.0, 3.0}
    # mean of Bernoulli(0.3) over 2e5 draws: std = sqrt(0.21/2e5) ~ 0.001
    assert abs(float(draws.mean()) - 2.3) < 0.005
    assert torch.equal(StochasticRounding(seed=0)(x), draws)  # same seed, same draws
    assert not torch.equal(StochasticRounding(seed=1)(x), draws)
    assert torch.equal(StochasticRounding(seed=0)(torch.tensor([4.0, -1.0])),
                       torch.tensor([4.0, -1.0]))  # integers stay put


def test_stochastic_rounding_variance_is_f_times_one_minus_f():
    f = 0.25
    draws = StochasticRounding(seed=3)(torch.full((400_000,), f))
    assert abs(float(draws.var()) - f * (1 - f)) < 0.005


def test_dead_zone_thresholds():
    r = DeadZoneRounding(rho=0.25)
    v = torch.tensor([0.74, 0.76, 1.74, 1.76, -0.74, -0.76])
    assert r(v).tolist() == [0.0, 1.0, 1.0, 2.0, -0.0, -1.0]
    assert torch.equal(DeadZoneRounding(rho=0.5)(VALUES), NearestRounding("away")(VALUES))


def test_rounding_rejects_bad_input():
    with pytest.raises(TypeError, match="floating-point"):
        NearestRounding()(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="ties"):
        NearestRounding(ties="up")
    with pytest.raises(ValueError, match="rho"):
        DeadZoneRounding(rho=0.7)
    with pytest.raises(TypeError, match="seed"):
        StochasticRounding(seed=1.5)
