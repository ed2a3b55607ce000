"""Fake quantization with straight-through estimators: forward equals the core, gradients
equal their documented formulas, and autograd's numerical check passes on the smooth parts."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import inwhale
from inwhale.nn import FakeQuantize, QuantConv2d, QuantLinear, fake_quantize_ste, grad_scale
from inwhale.nn.fake_quant import fake_quantize_ste_qp, round_ste


@settings(max_examples=30, deadline=None)
@given(bits=st.integers(2, 8), symmetric=st.booleans(), seed=st.integers(0, 1000))
def test_forward_equals_core_fake_quantize(bits, symmetric, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 16, generator=g) * 3
    for gran in (inwhale.PerTensor(), inwhale.PerAxis(0), inwhale.PerGroup(8)):
        qp = inwhale.choose_qparams(x[:, :], bits=bits, symmetric=symmetric, granularity=gran)
        xs = x * 1.3  # some values clip
        assert torch.equal(fake_quantize_ste_qp(xs, qp), inwhale.fake_quantize(xs, qp))


def test_forward_equals_torch_kernel():
    x = torch.randn(10_000) * 2
    s, z = 0.037, 3
    ref = torch.fake_quantize_per_tensor_affine(x, s, z, -128, 127)
    got = fake_quantize_ste(x, torch.tensor(s), z, -128, 127)
    assert torch.equal(got, ref)


def test_clipped_ste_gradient_is_indicator_of_range():
    x = torch.linspace(-3, 3, 601, requires_grad=True)
    s, z, qmin, qmax = torch.tensor(0.1), 2, -8, 7
    fake_quantize_ste(x, s, z, qmin, qmax).sum().backward()
    codes = torch.round(x.detach() * (1 / s)) + z
    expected = ((codes >= qmin) & (codes <= qmax)).float()
    assert torch.equal(x.grad, expected)
    assert 0 < expected.sum() < len(x)  # both cases occur


def test_identity_ste_gradient_is_one():
    x = torch.linspace(-3, 3, 101, requires_grad=True)
    fake_quantize_ste(x, torch.tensor(0.1), 0, -8, 7, ste="identity").sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_scale_gradient_matches_lsq_formula():
    x = torch.linspace(-2, 2, 401)
    s = torch.tensor(0.13, requires_grad=True)
    qmin, qmax = -8, 7
    fake_quantize_ste(x, s, 0, qmin, qmax).sum().backward()
    v = x * (1 / s.detach())
    r = torch.round(v)
    per = torch.where(r < qmin, torch.tensor(float(qmin)),
                      torch.where(r > qmax, torch.tensor(float(qmax)), r - v))
    assert torch.allclose(s.grad, per.sum(), atol=1e-4)
    assert (r < qmin).any() and (r > qmax).any()  # all three cases occur


def test_gradcheck_on_smooth_part():
    # Where every input is clipped, x̂ = s·(q_clip − z) is smooth in s and constant in x, so
    # the STE gradient is the true one and gradcheck must pass.
    x = torch.tensor([5.0, -5.0, 9.0], dtype=torch.float64, requires_grad=True)
    s = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    f = lambda x_, s_: fake_quantize_ste(x_, s_, 1, -8, 7)
    assert torch.autograd.gradcheck(f, (x, s), eps=1e-6, atol=1e-6)
    # Inside the range the STE deliberately differs from the true (zero) derivative in x.
    xi = torch.tensor([0.31], dtype=torch.float64, requires_grad=True)
    assert not torch.autograd.gradcheck(lambda x_: fake_quantize_ste(x_, s.detach(), 0, -8, 7),
                                        (xi,), eps=1e-6, atol=1e-6, raise_exception=False)


def test_round_ste_and_grad_scale():
    v = torch.tensor([0.5, 1.5, -0.5], requires_grad=True)
    y = round_ste(v)
    assert y.tolist() == [0.0, 2.0, -0.0]
    y.sum().backward()
    assert v.grad.tolist() == [1.0, 1.0, 1.0]
    t = torch.tensor(3.0, requires_grad=True)
    out = grad_scale(t, 0.25)
    assert out.item() == 3.0
    out.backward()
    assert t.grad.item() == 0.25


def test_fake_quantize_module_observe_then_freeze():
    fq = FakeQuantize(8, moving_average=True)
    fq(torch.tensor([-1.0, 1.0]))
    fq(torch.tensor([-3.0, 3.0]))
    qp = fq.qparams()
    ref = inwhale.qparams_from_range(-1.02, 1.02, bits=8)  # moving average with c = 0.01
    assert torch.allclose(qp.scale, ref.scale)
    fq.freeze()
    fq(torch.tensor([-100.0, 100.0]))
    assert torch.equal(fq.qparams().scale, qp.scale)
    x = torch.randn(100)
    assert torch.equal(fq(x), inwhale.fake_quantize(x, qp))


def test_dynamic_fake_quantize_uses_each_tensor():
    fq = FakeQuantize(4, dynamic=True, granularity=inwhale.PerToken())
    x = torch.randn(5, 7)
    ref = inwhale.fake_quantize(x, inwhale.choose_qparams(x, bits=4, granularity=inwhale.PerToken()))
    assert torch.equal(fq(x), ref)


def test_quant_layers_from_float_match_functional():
    torch.manual_seed(0)
    lin = torch.nn.Linear(6, 3)
    q = QuantLinear.from_float(lin, FakeQuantize(4, symmetric=True, granularity=inwhale.PerAxis(0)))
    x = torch.randn(2, 6)
    w_q = inwhale.fake_quantize(lin.weight, inwhale.choose_qparams(
        lin.weight.detach(), bits=4, symmetric=True, granularity=inwhale.PerAxis(0)))
    assert torch.allclose(q(x), torch.nn.functional.linear(x, w_q, lin.bias), atol=1e-6)
    conv = torch.nn.Conv2d(2, 3, 3, padding=1)
    qc = QuantConv2d.from_float(conv)
    xc = torch.randn(1, 2, 5, 5)
    assert torch.allclose(qc(xc), conv(xc))


def test_bad_arguments():
    with pytest.raises(ValueError, match="ste"):
        fake_quantize_ste(torch.ones(2), torch.tensor(1.0), 0, 0, 3, ste="nope")
    with pytest.raises(TypeError, match="x"):
        fake_quantize_ste(torch.ones(2, dtype=torch.int32), torch.tensor(1.0), 0, 0, 3)
    with pytest.raises(TypeError, match="linear"):
        QuantLinear.from_float(torch.nn.Conv2d(1, 1, 1))
