"""Tests for inwhale.mixed: sensitivities against PyTorch's per-channel fake quantizer,
bit allocation against exhaustive search on small problems."""

import itertools
import random

import pytest
import torch

from inwhale import PerGroup
from inwhale.mixed import (
    allocate_bits,
    allocation_bytes,
    allocation_error,
    allocation_path,
    layer_sensitivity,
)

# ----------------------------------------------------------------------------------------
# layer_sensitivity
# ----------------------------------------------------------------------------------------


def _torch_per_channel(w: torch.Tensor, bits: int, symmetric: bool) -> torch.Tensor:
    """Reference: scales computed here, quantization by torch.fake_quantize_per_channel_affine."""
    if symmetric:
        qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        amax = w.abs().amax(dim=1)
        scale = (amax / ((qmax - qmin) / 2)).clamp(min=torch.finfo(torch.float32).eps)
        zp = torch.zeros(w.shape[0], dtype=torch.int32)
    else:
        qmin, qmax = 0, 2**bits - 1
        lo, hi = w.amin(dim=1).clamp(max=0), w.amax(dim=1).clamp(min=0)
        scale = ((hi - lo) / (qmax - qmin)).clamp(min=torch.finfo(torch.float32).eps)
        zp = (qmin - torch.round(lo / scale)).clamp(qmin, qmax).to(torch.int32)
    return torch.fake_quantize_per_channel_affine(w, scale, zp, 0, qmin, qmax)


@pytest.mark.parametrize("symmetric", [True, False])
def test_sensitivity_matches_torch_per_channel(symmetric):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(48, 40, generator=g) * torch.rand(48, 1, generator=g)
    x = torch.randn(100, 40, generator=g)
    got = layer_sensitivity(w, x, choices=(2, 3, 4, 8), symmetric=symmetric)
    for b, d in got.items():
        dw = (w - _torch_per_channel(w, b, symmetric)).double()
        want = float((x.double() @ dw.T).pow(2).sum() / (x.double() @ w.double().T).pow(2).sum())
        assert d == pytest.approx(want, rel=1e-6)
    assert got[2] > got[3] > got[4] > got[8]  # more bits, less error on a random layer


def test_sensitivity_without_inputs_is_weight_nsr():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(16, 64, generator=g)
    got = layer_sensitivity(w, choices=(4,), granularity=PerGroup(16))
    # reference: per-(row, 16-block) symmetric 4-bit by hand: s = amax / 7.5
    blocks = w.reshape(16, 4, 16)
    s = blocks.abs().amax(dim=-1, keepdim=True) / 7.5
    wq = (torch.round(blocks * (1 / s)).clamp(-8, 7) * s).reshape(16, 64)
    want = float((w - wq).double().pow(2).sum() / w.double().pow(2).sum())
    assert got[4] == pytest.approx(want, rel=1e-6)


def test_sensitivity_zero_layer_and_bad_input():
    assert layer_sensitivity(torch.zeros(3, 4), choices=(4,)) == {4: 0.0}
    with pytest.raises(ValueError, match="weight must be 2-D"):
        layer_sensitivity(torch.zeros(4))
    with pytest.raises(ValueError, match="inputs must have shape"):
        layer_sensitivity(torch.zeros(3, 4), torch.zeros(5, 3))
    with pytest.raises(TypeError, match="weight"):
        layer_sensitivity(torch.zeros(3, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match="choices"):
        layer_sensitivity(torch.ones(3, 4), choices=())


# ----------------------------------------------------------------------------------------
# allocate_bits
# ----------------------------------------------------------------------------------------


def _brute_force(sens, sizes, choices, budget, bpw=None):
    """Smallest total error over every allocation within ``budget`` (exhaustive)."""
    names = list(sens)
    best = float("inf")
    for combo in itertools.product(choices, repeat=len(names)):
        alloc = dict(zip(names, combo, strict=True))
        if allocation_bytes(alloc, sizes, bpw) <= budget + 1e-9:
            best = min(best, allocation_error(alloc, sens))
    return best


def _random_problem(rng: random.Random, n_layers: int, choices):
    sens, sizes = {}, {}
    for i in range(n_layers):
        # error roughly 4^-b times a layer-specific weight, with noise: not always convex
        w = rng.uniform(0.1, 10.0)
        sens[f"l{i}"] = {b: w * 4.0 ** (-b) * rng.uniform(0.5, 1.5) for b in choices}
        sizes[f"l{i}"] = rng.choice([8, 16, 24, 64])
    return sens, sizes


def test_hand_computed_optimum():
    # Two layers of 8 weights: 2 bits = 2 bytes, 4 bits = 4 bytes, 8 bits = 8 bytes.
    # Budget 10 bytes. Candidates: (4,4)=8B err .3+.2=.5; (8,2)=10B err .0+.9=.9;
    # (2,8)=10B err .6+.0=.6; (4,2)/(2,4) cheaper but worse. Optimum: (4, 4), error 0.5.
    sens = {"a": {2: 0.6, 4: 0.3, 8: 0.0}, "b": {2: 0.9, 4: 0.2, 8: 0.0}}
    sizes = {"a": 8, "b": 8}
    alloc = allocate_bits(sens, sizes, 10, choices=(2, 4, 8))
    assert alloc == {"a": 4, "b": 4}
    assert allocation_error(alloc, sens) == pytest.approx(0.5)
    assert _brute_force(sens, sizes, (2, 4, 8), 10) == pytest.approx(0.5)


def test_exact_against_brute_force_and_budget_respected():
    rng = random.Random(0)
    choices = (2, 3, 4, 8)
    for _ in range(40):
        sens, sizes = _random_problem(rng, n_layers=4, choices=choices)
        lo = allocation_bytes(dict.fromkeys(sens, 2), sizes)
        hi = allocation_bytes(dict.fromkeys(sens, 8), sizes)
        budget = rng.uniform(lo, hi)
        alloc = allocate_bits(sens, sizes, budget, choices)
        assert allocation_bytes(alloc, sizes) <= budget
        assert allocation_error(alloc, sens) == pytest.approx(
            _brute_force(sens, sizes, choices, budget), rel=1e-12
        )
        for b in choices:  # hence never worse than a uniform width that fits
            uniform = dict.fromkeys(sens, b)
            if allocation_bytes(uniform, sizes) <= budget:
                assert allocation_error(alloc, sens) <= allocation_error(uniform, sens) + 1e-12


def test_lagrangian_path_points_are_optimal_for_their_bytes():
    rng = random.Random(2)
    choices = (2, 3, 4, 8)
    for _ in range(10):
        sens, sizes = _random_problem(rng, n_layers=4, choices=choices)
        alloc, ups = allocation_path(sens, sizes, choices)
        assert alloc == dict.fromkeys(sens, 2)
        for up in ups:
            assert alloc[up.layer] == up.old_bits  # each layer climbs its own hull in order
            alloc[up.layer] = up.new_bits
            used = allocation_bytes(alloc, sizes)
            assert allocation_error(alloc, sens) == pytest.approx(
                _brute_force(sens, sizes, choices, used), rel=1e-12
            )
        assert alloc == dict.fromkeys(sens, 8)  # error of random problems falls to 8 bits


def test_coarse_cells_still_respect_budget():
    sens = {f"l{i}": {2: 1.0 / (i + 1), 4: 0.1 / (i + 1)} for i in range(3)}
    sizes = {"l0": 1_000_003, "l1": 999_999, "l2": 1_234_567}  # gcd of costs is tiny
    budget = 1_200_000.0
    alloc = allocate_bits(sens, sizes, budget, choices=(2, 4))
    assert allocation_bytes(alloc, sizes) <= budget
    assert alloc == {"l0": 4, "l1": 2, "l2": 2}  # only one upgrade fits: the most sensitive


def test_monotone_in_budget():
    rng = random.Random(1)
    sens, sizes = _random_problem(rng, n_layers=12, choices=(2, 3, 4, 8))
    lo = allocation_bytes(dict.fromkeys(sens, 2), sizes)
    hi = allocation_bytes(dict.fromkeys(sens, 8), sizes)
    errors = [
        allocation_error(allocate_bits(sens, sizes, budget, (2, 3, 4, 8)), sens)
        for budget in torch.linspace(lo, hi, 60).tolist()
    ]
    assert all(e2 <= e1 + 1e-12 for e1, e2 in itertools.pairwise(errors))
    assert errors[-1] == pytest.approx(allocation_error(dict.fromkeys(sens, 8), sens))
    assert errors[0] == pytest.approx(allocation_error(dict.fromkeys(sens, 2), sens))


def test_path_walks_hulls_and_skips_points_above_them():
    # layer "a": 3 bits is barely better than 2 (above the 2 -> 4 chord): never chosen
    sens = {"a": {2: 1.0, 3: 0.95, 4: 0.1}, "b": {2: 0.5, 3: 0.2, 4: 0.1}}
    sizes = {"a": 8, "b": 8}
    start, ups = allocation_path(sens, sizes, choices=(2, 3, 4))
    assert start == {"a": 2, "b": 2}
    assert [(u.layer, u.old_bits, u.new_bits) for u in ups] == [
        ("a", 2, 4),  # slope 0.9 / 2 bytes = 0.45
        ("b", 2, 3),  # 0.3 / 1 = 0.3
        ("b", 3, 4),  # 0.1 / 1 = 0.1
    ]
    slopes = [u.slope for u in ups]
    assert slopes == sorted(slopes, reverse=True)


def test_bits_per_weight_overhead_counts():
    sens = {"a": {2: 1.0, 4: 0.1}}
    sizes = {"a": 64}
    bpw = {2: 2.25, 4: 4.25}  # one fp16 scale per 64 weights
    assert allocation_bytes({"a": 4}, sizes, bpw) == 34.0
    assert allocate_bits(sens, sizes, 33.9, (2, 4), bpw) == {"a": 2}
    assert allocate_bits(sens, sizes, 34.0, (2, 4), bpw) == {"a": 4}


def test_bad_problems_raise():
    sens = {"a": {2: 1.0, 4: 0.5}}
    with pytest.raises(ValueError, match="budget_bytes"):
        allocate_bits(sens, {"a": 8}, 1.0, choices=(2, 4))
    with pytest.raises(ValueError, match="same layer names"):
        allocate_bits(sens, {"b": 8}, 100, choices=(2, 4))
    with pytest.raises(ValueError, match="lacks the widths"):
        allocate_bits(sens, {"a": 8}, 100, choices=(2, 3, 4))
    with pytest.raises(ValueError, match="sizes"):
        allocate_bits(sens, {"a": 0}, 100, choices=(2, 4))
    with pytest.raises(ValueError, match="bits_per_weight"):
        allocate_bits(sens, {"a": 8}, 100, choices=(2, 4), bits_per_weight={2: 5.0, 4: 4.5})
