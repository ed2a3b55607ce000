"""QAT quantizers against independent references: PyTorch's learnable fake-quant kernel
(LSQ), hand formulas, least squares, brute force, SciPy, gradcheck on smooth parts."""


import numpy as np
import pytest
import scipy.stats
import torch

from inwhale.formats.log import pot_fake_quantize
from inwhale.qat import (
    INQ,
    PACT,
    ABCWeight,
    DoReFaActivation,
    DoReFaWeight,
    LSQPlusQuantizer,
    LSQQuantizer,
    RelaxedQuantizer,
    TTQWeight,
    XNORWeight,
    kurtosis,
    kurtosis_loss,
    pot_quantize,
)
from inwhale.qat.binary import abc_bases, sign_ste
from inwhale.qat.inq import pot_exponents
from inwhale.qat.relaxed import cell_probabilities, relaxed_quantize


def test_lsq_matches_torch_learnable_fake_quant():
    torch.manual_seed(0)
    x = torch.randn(1000) * 1.5
    q = LSQQuantizer(4)
    q(x)  # lazy init: s = 2·mean|x|/sqrt(Qp)
    assert torch.allclose(q.step, 2 * x.abs().mean() / 7**0.5)
    xa = x.clone().requires_grad_()
    y = q(xa)
    (y * torch.linspace(-1, 1, 1000)).sum().backward()
    xb = x.clone().requires_grad_()
    s = q.step.detach().clone().reshape(1).requires_grad_()
    z = torch.zeros(1, requires_grad=True)
    g = 1.0 / (1000 * 7) ** 0.5
    ref = torch._fake_quantize_learnable_per_tensor_affine(xb, s, z, -8, 7, g)
    (ref * torch.linspace(-1, 1, 1000)).sum().backward()
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close(xa.grad, xb.grad)
    torch.testing.assert_close(q.step.grad.reshape(1), s.grad, rtol=1e-4, atol=1e-6)


def test_lsq_per_channel_and_lsq_plus_offset_gradient():
    w = torch.randn(6, 5)
    q = LSQQuantizer(3, per_channel=True)
    q(w)
    assert q.step.shape == (6, 1)
    qp = LSQPlusQuantizer(2)
    x = torch.linspace(-1.0, 3.0, 101, requires_grad=True)
    y = qp(x)
    assert torch.allclose(qp.offset, torch.tensor(-1.0))
    torch.testing.assert_close(qp.step.detach(), torch.tensor(4.0 / 3))
    y.sum().backward()
    # ∂x̂/∂β = 1 − ∂x̂/∂x: zero inside the range, one where clipped (nothing clips here)
    assert abs(float(qp.offset.grad)) < 1e-5
    assert torch.equal(x.grad, torch.ones_like(x))


def test_pact_forward_and_alpha_gradient():
    act = PACT(bits=3, alpha=2.0)
    x = torch.linspace(-1, 4, 501, requires_grad=True)
    y = act(x)
    levels = torch.round(x.detach().clamp(0, 2) * 7 / 2) * 2 / 7
    torch.testing.assert_close(y, levels)
    upstream = torch.rand(501, generator=torch.Generator().manual_seed(0))
    (y * upstream).sum().backward()
    torch.testing.assert_close(act.alpha.grad, upstream[x.detach() >= 2].sum())
    torch.testing.assert_close(x.grad, upstream * ((x.detach() >= 0) & (x.detach() < 2)).float())
    with pytest.raises(ValueError, match="alpha"):
        PACT(2, alpha=0.0)


def test_dorefa_formulas():
    w = torch.randn(4, 9)
    t = torch.tanh(w)
    u = t / (2 * t.abs().max()) + 0.5
    ref = 2 * torch.round(u * 3) / 3 - 1
    torch.testing.assert_close(DoReFaWeight(2)(w), ref)
    torch.testing.assert_close(DoReFaWeight(1)(w), w.abs().mean() * torch.sign(w))
    x = torch.linspace(-0.5, 1.5, 41) + 0.013  # no value on a rounding tie
    torch.testing.assert_close(DoReFaActivation(3)(x), torch.round(x.clamp(0, 1) * 7) / 7)


def test_binary_quantizers():
    x = torch.tensor([-1.5, -1.0, 0.0, 0.5, 2.0], requires_grad=True)
    sign_ste(x).backward(torch.ones(5))
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    W = torch.randn(3, 20)
    out = XNORWeight()(W)
    for c in range(3):  # α = mean|W_c| minimises ‖W_c − α·sign(W_c)‖² (scan of α)
        alphas = torch.linspace(0.01, 3, 3000)
        err = ((W[c] - alphas[:, None] * torch.sign(W[c])) ** 2).sum(1)
        assert abs(float(alphas[err.argmin()]) - float(out[c].abs()[0])) < 2e-3
    B, alpha = abc_bases(W, 3)
    ref = np.linalg.lstsq(B.reshape(3, -1).T.numpy().astype(np.float64),
                          W.reshape(-1).numpy().astype(np.float64), rcond=None)[0]
    np.testing.assert_allclose(alpha.numpy(), ref, rtol=1e-5, atol=1e-6)
    errs = [float(((ABCWeight(M)(W) - W) ** 2).mean()) for M in (1, 2, 3, 5)]
    assert errs == sorted(errs, reverse=True)
    wl = W.clone().requires_grad_()
    ABCWeight(3)(wl).sum().backward()
    assert torch.equal(wl.grad, torch.ones_like(W))


def test_ttq_values_and_gradients():
    w = torch.tensor([-1.0, -0.5, -0.02, 0.01, 0.3, 0.8], requires_grad=True)
    q = TTQWeight(t=0.05)
    y = q(w)
    pos, neg = torch.tensor([0, 0, 0, 0, 1, 1.0]), torch.tensor([1, 1, 0, 0, 0, 0.0])
    assert torch.allclose(q.w_p, torch.tensor(0.55)) and torch.allclose(q.w_n, torch.tensor(0.75))
    torch.testing.assert_close(y.detach(), 0.55 * pos - 0.75 * neg)
    g = torch.tensor([0.1, -0.2, 0.3, 0.4, -0.5, 0.6])
    y.backward(g)
    torch.testing.assert_close(q.w_p.grad, (g * pos).sum())
    torch.testing.assert_close(q.w_n.grad, -(g * neg).sum())
    scale = 0.55 * pos + 0.75 * neg + (1 - pos - neg)
    torch.testing.assert_close(w.grad, scale * g / 1.0)  # max|w| = 1


def test_inq_pot_quantize_and_freezing():
    n1, n2 = pot_exponents(0.9, 5)
    levels = torch.tensor([0.0] + [2.0**n for n in range(n2, n1 + 1)])
    w = torch.randn(2000) * 0.3
    q = pot_fake_quantize(w, 5, e_max=n1, e_min=n2, log_domain=False)   # the one PoT quantizer
    brute = torch.sign(w) * levels[(w.abs()[:, None] - levels[None]).abs().argmin(1)]
    assert torch.equal(q, brute)
    with pytest.warns(DeprecationWarning, match="pot_fake_quantize"):
        assert torch.equal(pot_quantize(w, n1, n2), brute)               # the old name
    lin = torch.nn.Linear(10, 4)
    inq = INQ([lin.weight], bits=5)
    inq.step(0.5)
    assert abs(inq.frozen_fraction() - 0.5) < 0.03
    frozen = lin.weight.detach()[inq.masks[0]].clone()
    opt = torch.optim.SGD(lin.parameters(), lr=0.5)
    lin(torch.randn(8, 10)).pow(2).sum().backward()
    opt.step()
    inq.restore_()
    assert torch.equal(lin.weight.detach()[inq.masks[0]], frozen)
    inq.step(1.0)
    e1, e2 = inq.exps[0]
    allowed = set([0.0] + [s * 2.0**n for n in range(e2, e1 + 1) for s in (1, -1)])
    assert set(lin.weight.detach().flatten().tolist()) <= allowed


def test_relaxed_quantization():
    grid = torch.arange(-8, 8, dtype=torch.float64) * 0.25
    x = torch.linspace(-3, 3, 97, dtype=torch.float64)
    p = cell_probabilities(x, grid, torch.tensor(0.25, dtype=torch.float64),
                           torch.tensor(0.1, dtype=torch.float64))
    torch.testing.assert_close(p.sum(-1), torch.ones(97, dtype=torch.float64))
    # σ, τ → 0: nearest rounding with clipping
    near = relaxed_quantize(x, grid, torch.tensor(0.25, dtype=torch.float64),
                            torch.tensor(1e-4, dtype=torch.float64), tau=1e-3)
    ref = torch.fake_quantize_per_tensor_affine(x.float(), 0.25, 0, -8, 7).double()
    off_tie = ((x / 0.25) % 1 - 0.5).abs() > 0.01
    torch.testing.assert_close(near[off_tie], ref[off_tie])
    # smooth everywhere: gradcheck in x, s and σ with fixed Gumbel noise
    G = torch.randn(5, 16, dtype=torch.float64) * 0.1
    xs = torch.randn(5, dtype=torch.float64, requires_grad=True)
    s = torch.tensor(0.25, dtype=torch.float64, requires_grad=True)
    sig = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    f = lambda a, b, c: relaxed_quantize(a, b * torch.arange(-8, 8, dtype=torch.float64), b, c,
                                         0.5, G)
    assert torch.autograd.gradcheck(f, (xs, s, sig))
    rq = RelaxedQuantizer(3).eval()
    w = torch.randn(50)
    rq(w)
    assert len(torch.unique(rq(w))) <= 8


def test_kurtosis_matches_scipy():
    for dist in (np.random.default_rng(0).normal(size=5000),
                 np.random.default_rng(1).uniform(size=5000),
                 np.random.default_rng(2).laplace(size=5000)):
        ref = scipy.stats.kurtosis(dist, fisher=False)
        assert abs(float(kurtosis(torch.tensor(dist))) - ref) < 1e-8
    ws = [torch.randn(100), torch.rand(100)]
    expected = np.mean([(scipy.stats.kurtosis(w.numpy(), fisher=False) - 1.8) ** 2 for w in ws])
    assert abs(float(kurtosis_loss(ws)) - expected) < 1e-4
    with pytest.raises(ValueError):
        kurtosis(torch.ones(1))
