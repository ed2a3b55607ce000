"""PTQ pipeline, batch-norm folding and integer-only inference on real digits networks."""

from fractions import Fraction

import pytest
import torch
from _digits_p45 import split, trained
from torch import nn

import inwhale
from inwhale.models import accuracy
from inwhale.nn import FakeQuantize, QuantConv2d, QuantLinear
from inwhale.ptq import QConfig, calibrate_, convert_, fold_bn, fold_bn_sequential, prepare
from inwhale.ptq.integer import fixed_point_multiply, integerize, quantize_multiplier
from inwhale.ptq.pipeline import ptq_quantize


def test_prepare_swaps_layers_and_leaves_original():
    m = trained("cnn")
    q = prepare(m, QConfig())
    kinds = [type(x).__name__ for x in q]
    assert kinds.count("QuantConv2d") == 2 and kinds.count("QuantLinear") == 1
    assert isinstance(m[1], nn.Conv2d) and not isinstance(m[1], QuantConv2d)
    # observing, not yet quantizing: the prepared model computes the float function
    _Xtr, _, Xte, _ = split()
    assert torch.allclose(q(Xte[:32]), m(Xte[:32]), atol=1e-6)


def test_static_equals_hand_fake_quant():
    m = trained("mlp")
    Xtr, _, Xte, _ = split()
    q = ptq_quantize(m, QConfig(4, 8), [Xtr[:256]])
    # reference: every layer by hand with the core functions and calibrated ranges
    h, ref = Xtr[:256], Xte[:64]
    layers = [m[1], m[3], m[5]]
    x_cal, x = h.flatten(1), ref.flatten(1)
    for i, lin in enumerate(layers):
        qa = inwhale.choose_qparams(x_cal, bits=8)
        qw = inwhale.choose_qparams(lin.weight.detach(), bits=4, symmetric=True,
                                    narrow_range=True, granularity=inwhale.PerAxis(0))
        wq = inwhale.fake_quantize(lin.weight.detach(), qw)
        x_cal = nn.functional.linear(x_cal, lin.weight, lin.bias)  # float calibration path
        x = nn.functional.linear(inwhale.fake_quantize(x, qa), wq, lin.bias)
        if i < 2:
            x_cal, x = x_cal.relu(), x.relu()
    assert torch.allclose(q(ref), x, atol=1e-5)


def test_modes():
    m = trained("mlp")
    Xtr, _ytr, Xte, yte = split()
    w_only = ptq_quantize(m, QConfig(8, mode="weight_only"), [Xtr[:128]])
    assert w_only[1].act_fq is None
    dyn = ptq_quantize(m, QConfig(8, 8, mode="dynamic"), [Xtr[:128]])
    x = Xte[:5]
    qa = inwhale.choose_qparams(x.flatten(1), bits=8)
    assert torch.equal(dyn[1].act_fq(x.flatten(1)), inwhale.fake_quantize(x.flatten(1), qa))
    f = accuracy(m, Xte, yte)
    for q in (w_only, dyn, ptq_quantize(m, QConfig(8, 8), [Xtr[:128]])):
        assert abs(accuracy(q, Xte, yte) - f) < 0.02  # W8A8 is within 2 points of float
    with pytest.raises(ValueError, match="mode"):
        QConfig(mode="bogus")
    with pytest.raises(ValueError, match="batches"):
        calibrate_(prepare(m, QConfig()), [])


def test_bn_fold_equals_conv_then_bn():
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(5)
    bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 2), bn.bias.data.uniform_(-1, 1)
    bn.eval()
    x = torch.randn(4, 3, 8, 8)
    torch.testing.assert_close(fold_bn(conv, bn)(x), bn(conv(x)), atol=1e-5, rtol=0)
    m = trained("cnn")
    X = split()[2][:64]
    torch.testing.assert_close(fold_bn_sequential(m)(X), m(X), atol=1e-5, rtol=1e-5)
    assert not any(isinstance(x, nn.BatchNorm2d) for x in fold_bn_sequential(m))


def test_fixed_point_multiplier_exact_for_sweep():
    for M in (0.7071, 0.001234, 3.0e-5, 0.5, 0.99999, 1.7):
        M0, n = quantize_multiplier(M)
        assert 2**30 <= int(M0) < 2**31
        assert abs(int(M0) / 2 ** int(n) / M - 1) < 2**-30
        x = torch.arange(-(2**16), 2**16, 7, dtype=torch.int64)
        got = fixed_point_multiply(x, M0, n)
        Mq = Fraction(int(M0), 2 ** int(n))
        exact = torch.tensor([int((Fraction(int(v)) * Mq + Fraction(1, 2)).__floor__())
                              for v in x.tolist()])
        assert torch.equal(got, exact)
        # and the real multiplier M gives the same result except right at a rounding tie
        real = torch.floor(x.double() * M + 0.5).long()
        near_tie = ((x.double() * M) % 1 - 0.5).abs() < 1e-6
        assert torch.equal(got[~near_tie], real[~near_tie])


def test_quantize_multiplier_rejects_bad_input():
    with pytest.raises(ValueError):
        quantize_multiplier(0.0)
    with pytest.raises(ValueError):
        quantize_multiplier(float("inf"))
    with pytest.raises(TypeError):
        fixed_point_multiply(torch.tensor([1.0]), *quantize_multiplier(0.5))


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_integer_pipeline_within_one_lsb_of_fake_quant(kind):
    m = trained(kind)
    if kind == "cnn":
        m = fold_bn_sequential(m)
    Xtr, _ytr, Xte, _yte = split()
    q = ptq_quantize(m, QConfig(8, 8), [Xtr[:256]])
    out = FakeQuantize(8)
    out(q(Xtr[:256]))
    oqp = out.freeze().qparams()
    integer = integerize(q, oqp)
    codes_int = integer.forward_codes(Xte).long()
    assert codes_int.dtype == torch.int64 and next(o for o in integer.ops if hasattr(o, 'w_codes')).w_codes.dtype == torch.int8
    codes_fq = inwhale.quantize(q(Xte), oqp).long()
    assert (codes_int - codes_fq).abs().max() <= 1
    # float-logit head: same predictions as the fake-quantized model almost everywhere
    logits = integerize(q)(Xte)
    assert (logits.argmax(1) == q(Xte).argmax(1)).float().mean() > 0.99


def test_integerize_rejects_batch_norm_and_unfrozen():
    m = trained("cnn")
    q = ptq_quantize(m, QConfig(8, 8), [split()[0][:64]])
    with pytest.raises(TypeError, match="batch norm"):
        integerize(q)
    lin = QuantLinear.from_float(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="FakeQuantize"):
        integerize(nn.Sequential(lin))
    _ = convert_  # the converted path is covered above
