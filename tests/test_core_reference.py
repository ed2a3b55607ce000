"""The core against PyTorch's own quantization kernels, bit for bit."""

import warnings

import pytest
import torch

import inwhale
from inwhale import PerAxis, PerGroup, PerToken, choose_qparams, fake_quantize, quantize


def adversarial(x: torch.Tensor, qp: inwhale.QParams) -> torch.Tensor:
    """``x`` plus exact ties, values at and beyond the clip range, and ±0."""
    s = float(qp.scale.flatten()[0])
    z = float(qp.zero_point.flatten()[0])
    ties = (torch.arange(-300, 300, dtype=torch.float32) + 0.5) * s
    edges = torch.tensor([(qp.qmin - z) * s, (qp.qmax - z) * s]) + torch.tensor([[-s], [0.0], [s]])
    extremes = torch.tensor([-0.0, 0.0, 1e30, -1e30, 1e-30, -1e-30])
    return torch.cat([x.flatten(), ties, edges.flatten(), extremes])


SCHEMES = [
    dict(bits=8, symmetric=False),
    dict(bits=8, symmetric=True),
    dict(bits=8, symmetric=True, narrow_range=True),
    dict(bits=8, symmetric=False, signed=True),
    dict(bits=4, symmetric=False),
    dict(bits=4, symmetric=True),
    dict(bits=2, symmetric=False),
    dict(bits=3, symmetric=True, narrow_range=True),
]


@pytest.mark.parametrize("spec", SCHEMES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fake_quantize_per_tensor_matches_aten(spec, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(20_000, generator=g) * (10 ** (seed - 1))
    qp = choose_qparams(x, **spec)
    xs = adversarial(x, qp)
    ref = torch.fake_quantize_per_tensor_affine(
        xs, float(qp.scale), int(qp.zero_point), qp.qmin, qp.qmax
    )
    assert torch.equal(fake_quantize(xs, qp), ref)


@pytest.mark.parametrize("spec", SCHEMES)
@pytest.mark.parametrize("axis", [0, 1])
def test_fake_quantize_per_channel_matches_aten(spec, axis):
    g = torch.Generator().manual_seed(axis)
    w = torch.randn(48, 96, generator=g) * torch.rand(48, 1, generator=g) * 4
    w[3] = 0.0  # an all-zero channel (scale = eps)
    w[:, 5] += 7.0  # an outlier column
    qp = choose_qparams(w, granularity=PerAxis(axis), **spec)
    ref = torch.fake_quantize_per_channel_affine(
        w, qp.scale.flatten(), qp.zero_point.flatten(), axis, qp.qmin, qp.qmax
    )
    assert torch.equal(fake_quantize(w, qp), ref)


def test_per_channel_ties_match_aten():
    s = torch.tensor([0.1, 0.25, 0.03])
    qp = inwhale.QParams(s.reshape(3, 1), torch.tensor([[3], [0], [-5]], dtype=torch.int32),
                         -128, 127, PerAxis(0), 8)
    k = torch.arange(-140, 140, dtype=torch.float32) + 0.5
    w = k.unsqueeze(0) * s.unsqueeze(1)  # every value an exact tie (up to fp rounding)
    ref = torch.fake_quantize_per_channel_affine(w, s, qp.zero_point.flatten(), 0, -128, 127)
    assert torch.equal(fake_quantize(w, qp), ref)


@pytest.mark.parametrize(("dtype", "symmetric"), [(torch.quint8, False), (torch.qint8, True),
                                                  (torch.qint8, False)])
@pytest.mark.parametrize("seed", [0, 1])
def test_codes_match_quantize_per_tensor(dtype, symmetric, seed):
    """Codes equal ``torch.quantize_per_tensor(...).int_repr()`` except at near-ties.

    The rule for the differences: ``torch.quantize_per_tensor`` (FBGEMM's vectorised path)
    evaluates ``x·s⁻¹ + z`` as one fused multiply-add, rounded once, and then rounds to an
    integer; the core (like ``torch.fake_quantize_per_tensor_affine``) rounds the product
    ``x·s⁻¹`` to float32 first and adds the integer ``z`` after rounding. The results can only
    differ where ``x·s⁻¹`` lies within a float32 rounding error of a half-integer tie; with
    ``z = 0`` (symmetric) they never differ.
    """
    torch.manual_seed(seed)
    x = torch.randn(50_000) * 3
    signed = dtype == torch.qint8
    qp = choose_qparams(x, bits=8, symmetric=symmetric, signed=signed)
    xs = adversarial(x, qp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = torch.quantize_per_tensor(xs, float(qp.scale), int(qp.zero_point), dtype)
    ref = ref.int_repr().to(torch.int32)
    ours = quantize(xs, qp).to(torch.int32)
    exact = xs.double() * (1.0 / qp.scale).double()  # the product without float32 rounding
    near_tie = ((exact - torch.floor(exact)) - 0.5).abs() < 2.0**-14
    differ = ours != ref
    assert not bool((differ & ~near_tie).any())
    assert int((ours - ref).abs().max()) <= 1
    if symmetric:
        assert not bool(differ.any())


def test_per_group_equals_loop_over_slices():
    torch.manual_seed(0)
    w = torch.randn(8, 576)
    qp = choose_qparams(w, bits=4, symmetric=True, granularity=PerGroup(128))
    assert qp.scale.shape == (8, 5, 1)  # 576 = 4·128 + 64: a ragged fifth group
    got = fake_quantize(w, qp)
    for r in range(8):
        for start in range(0, 576, 128):
            sl = w[r, start:start + 128]
            ref = fake_quantize(sl, choose_qparams(sl, bits=4, symmetric=True))
            assert torch.equal(got[r, start:start + 128], ref)


def test_per_group_along_axis_0_and_3d():
    torch.manual_seed(1)
    x = torch.randn(100, 6, 4)
    qp = choose_qparams(x, bits=4, granularity=PerGroup(32, axis=0))
    assert qp.scale.shape == (6, 4, 4, 1)  # axis moved last, 100 -> 4 groups of 32 (last: 4)
    got = fake_quantize(x, qp)
    sl = x[96:, 2, 3]
    assert torch.equal(got[96:, 2, 3], fake_quantize(sl, choose_qparams(sl, bits=4)))


def test_per_token_equals_per_row():
    torch.manual_seed(2)
    a = torch.randn(2, 7, 64)
    qp = choose_qparams(a, bits=8, symmetric=True, granularity=PerToken())
    assert qp.scale.shape == (2, 7, 1)
    ref = torch.stack([fake_quantize(row, choose_qparams(row, bits=8, symmetric=True))
                       for row in a.reshape(-1, 64)]).reshape(a.shape)
    assert torch.equal(fake_quantize(a, qp), ref)


def test_dequantize_inverts_codes_exactly():
    torch.manual_seed(3)
    x = torch.randn(1000)
    qp = choose_qparams(x, bits=8)
    q = quantize(x, qp)
    ref = (q.to(torch.float32) - qp.zero_point) * qp.scale
    assert torch.equal(inwhale.dequantize(q, qp), ref)
    assert torch.equal(inwhale.dequantize(q, qp), fake_quantize(x, qp))


def test_float_domain_zero_point_is_the_exact_min_max_one():
    """``zero_point_domain="float"``: z = q_min − lo/s unrounded (hand computation), the same
    scale as the int domain, and the range minimum lands exactly on q_min."""
    from inwhale.core import qparams_from_range

    qi = qparams_from_range(-0.9, 2.1, bits=4)
    qf = qparams_from_range(-0.9, 2.1, bits=4, zero_point_domain="float")
    assert torch.equal(qi.scale, qf.scale)
    assert qi.zero_point.item() == 4                      # round(4.5) = 4, half to even
    assert qf.zero_point.dtype == torch.float32 and qf.zero_point_domain == "float"
    assert abs(qf.zero_point.item() - 4.5) < 1e-6         # 0 − (−0.9)/0.2
    assert fake_quantize(torch.tensor([-0.9]), qf).item() == pytest.approx(-0.9, abs=1e-6)
    with pytest.raises(ValueError, match="zero_point_domain"):
        qparams_from_range(-1.0, 1.0, zero_point_domain="half")
