"""Error correction after PTQ: bias correction, CLE, AdaRound, smoothing, progressive."""

import copy

import pytest
import torch
from _digits_p45 import split, trained
from torch import nn

import inwhale
from inwhale.models import accuracy
from inwhale.nn import FakeQuantize, QuantLinear
from inwhale.ptq import (
    QConfig,
    adaround_,
    bias_correct_,
    equalize_pair_,
    equalize_sequential_,
    fold_bn_sequential,
    prepare,
    progressive_calibrate_,
    smooth_pair_,
)
from inwhale.ptq.adaround import rectified_sigmoid, round_reg
from inwhale.ptq.bias_correction import output_mean_error
from inwhale.ptq.cle import channel_ranges
from inwhale.ptq.smoothing import smoothing_scales


def _frozen_qlinear(lin, bits):
    q = QuantLinear.from_float(lin, FakeQuantize(bits, symmetric=True, narrow_range=True,
                                                 granularity=inwhale.PerAxis(0)))
    q.weight_fq(q.weight)
    q.weight_fq.freeze()
    return q


def test_bias_correction_removes_mean_error_and_matches_formula():
    m = trained("mlp")
    x = split()[0].flatten(1)
    q = _frozen_qlinear(m[1], 3)
    eps = q.quantized_weight() - q.weight  # ε = W̃ − W
    expected = eps @ x.mean(0)  # ε·E[x], by hand
    delta = bias_correct_(q, x)
    torch.testing.assert_close(delta, expected, atol=1e-5, rtol=1e-4)
    err = (q(x) - m[1](x)).mean(0)  # after correction the mean output error vanishes
    assert err.abs().max() < 1e-5
    assert expected.abs().max() > 1e-3  # there was something to correct


def test_bias_correction_conv_and_missing_bias():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    from inwhale.nn import QuantConv2d
    q = QuantConv2d.from_float(conv, FakeQuantize(2, symmetric=True, narrow_range=True,
                                                  granularity=inwhale.PerAxis(0)))
    q.weight_fq(q.weight), q.weight_fq.freeze()
    x = torch.rand(8, 2, 6, 6) + 0.5
    bias_correct_(q, x)
    assert q.bias is not None
    assert output_mean_error(q, x).abs().max() > 0  # the weight error is still there ...
    assert (q(x) - conv(x)).mean(dim=(0, 2, 3)).abs().max() < 1e-5  # ... but unbiased


def test_cle_preserves_function_and_equalizes_ranges():
    m = fold_bn_sequential(trained("cnn"))
    X = split()[2][:128]
    ref = m(X)
    eq = copy.deepcopy(m)
    r1_before, r2_before = channel_ranges(eq[1], eq[4])
    assert (r1_before / r2_before).max() / (r1_before / r2_before).min() > 1.5
    assert equalize_sequential_(eq) == 1  # conv1 → conv2 (the linear follows a Flatten)
    torch.testing.assert_close(eq(X), ref, atol=1e-5, rtol=1e-5)
    r1, r2 = channel_ranges(eq[1], eq[4])
    torch.testing.assert_close(r1, r2, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(r1, torch.sqrt(r1_before * r2_before), rtol=1e-5, atol=1e-7)


def test_cle_pair_on_mlp_chain_converges():
    m = copy.deepcopy(trained("mlp"))
    X = split()[2].flatten(1)
    ref = m(X)
    assert equalize_sequential_(m, iterations=50) == 2
    torch.testing.assert_close(m(X), ref, atol=1e-5, rtol=1e-5)
    for a, b in ((m[1], m[3]), (m[3], m[5])):
        r1, r2 = channel_ranges(a, b)
        torch.testing.assert_close(r1, r2, rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match="outputs"):
        equalize_pair_(nn.Linear(2, 3), nn.Linear(2, 1))


def test_adaround_beats_nearest_on_tiny_layer():
    torch.manual_seed(0)
    lin = nn.Linear(16, 8)
    x = torch.randn(256, 16) @ torch.randn(16, 16) * 0.5  # correlated inputs
    q = _frozen_qlinear(lin, 3)
    stats = adaround_(q, x, iters=200, lr=3e-2)
    assert stats["mse_adaround"] < 0.8 * stats["mse_nearest"]
    near = inwhale.fake_quantize(lin.weight.detach(), q.weight_fq.qparams())
    out_mse = lambda w: float((nn.functional.linear(x, w) - nn.functional.linear(x, lin.weight)).pow(2).mean())
    assert out_mse(q.weight.detach()) < out_mse(near)
    # bias correction afterwards still sees the float weight it must compare with
    w_float = lin.weight.detach()
    delta = bias_correct_(q, x, float_weight=w_float)
    torch.testing.assert_close(delta, (q.weight.detach() - w_float) @ x.mean(0), atol=1e-5, rtol=1e-4)
    # hard rounding lands on the grid: the frozen quantizer reproduces the weight exactly
    assert torch.equal(q.quantized_weight(), q.weight)
    # every weight rounded to one of its two neighbours
    v = lin.weight.detach() / q.weight_fq.qparams().scale
    k = q.weight.detach() / q.weight_fq.qparams().scale
    assert ((k - torch.floor(v)).round().abs() <= 1).all()


def test_rectified_sigmoid_and_regularizer():
    V = torch.tensor([-3.0, 0.3, 2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: torch.sigmoid(v) * 1.2 - 0.1, (V,))
    h = rectified_sigmoid(torch.tensor([-100.0, 100.0]))
    assert h.tolist() == [0.0, 1.0]
    assert round_reg(torch.tensor([0.0, 1.0]), 2.0).item() == 0.0
    assert round_reg(torch.tensor([0.5]), 20.0).item() == 1.0


def test_smoothing_keeps_function_and_balances_ranges():
    m = copy.deepcopy(trained("mlp"))
    X = split()[0].flatten(1)
    ref = m(X)
    act = m[2](m[1](X)).abs().amax(0)
    s = smooth_pair_(m[1], m[3], act, alpha=0.5)
    torch.testing.assert_close(m(X), ref, atol=1e-5, rtol=1e-5)
    act_after = m[2](m[1](X)).abs().amax(0)
    w_after = m[3].weight.abs().amax(0)
    live = act > 0
    torch.testing.assert_close(act_after[live], w_after[live], rtol=1e-4, atol=1e-6)
    assert (s > 0).all()
    assert smoothing_scales(torch.tensor([4.0]), torch.tensor([[1.0]]), 1.0).item() == 4.0
    with pytest.raises(ValueError, match="alpha"):
        smoothing_scales(torch.tensor([4.0]), torch.tensor([[1.0]]), 2.0)


def test_progressive_calibration_with_bias_correction_helps_at_2_bits():
    m = trained("mlp")
    Xtr, _, Xte, yte = split()
    from inwhale.ptq.pipeline import ptq_quantize
    plain = accuracy(ptq_quantize(m, QConfig(2, 8), [Xtr[:512]]), Xte, yte)
    prog = progressive_calibrate_(prepare(m, QConfig(2, 8)), Xtr[:512], bias_correction=True)
    assert accuracy(prog, Xte, yte) > plain + 0.02
    # progressive without corrections uses upstream-quantized inputs for the ranges
    p2 = progressive_calibrate_(prepare(m, QConfig(8, 8)), Xtr[:512])
    assert all(fq.observe is False for fq in p2.modules() if isinstance(fq, FakeQuantize))
