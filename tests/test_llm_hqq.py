"""HQQ against the authors' package (when installed), the soft-threshold closed form, and
its own objective (a lower lp error than round-to-nearest)."""


import pytest
import torch
from _reference import require

from inwhale.llm.hqq import hqq_qparams, hqq_quantize_, hqq_weight, shrink_lp
from inwhale.llm.rtn import rtn_weight


def heavy(o=64, i=256, seed=0):
    g = torch.Generator().manual_seed(seed)                  # Student t, 3 d.o.f.: heavy tails
    chi2 = (torch.randn(3, o, i, generator=g) ** 2).sum(0)
    return torch.randn(o, i, generator=g) / (chi2 / 3).sqrt() * 0.02


def test_shrink_p1_is_the_l1_proximal_map():
    x, beta = torch.linspace(-2, 2, 41), 2.5
    grid = torch.linspace(-3, 3, 60001)                     # brute-force argmin_y
    cost = beta / 2 * (grid[None] - x[:, None]) ** 2 + grid.abs()[None]
    assert torch.allclose(shrink_lp(x, beta, p=1.0), grid[cost.argmin(1)], atol=2e-4)


def test_shrink_rejects_bad_args():
    with pytest.raises(ValueError, match="beta"):
        shrink_lp(torch.ones(2), 0.0)
    with pytest.raises(ValueError, match="p must"):
        shrink_lp(torch.ones(2), 1.0, p=1.5)


@pytest.mark.parametrize("group_size", [64, None])
def test_hqq_lowers_lp_error_vs_rtn(group_size):
    W = heavy()
    lp = lambda E: float(E.abs().pow(0.7).mean())
    for bits in (3, 4):
        err_h = lp(W - hqq_weight(W, bits=bits, group_size=group_size))
        err_r = lp(W - rtn_weight(W, bits=bits, group_size=group_size))
        assert err_h < err_r


def test_float_zero_point_and_ragged_groups():
    W = heavy(i=96)
    qp, errors = hqq_qparams(W, bits=4, group_size=64)
    assert qp.zero_point.is_floating_point() and qp.zero_point.shape == (64, 2, 1)
    assert qp.zero_point_domain == "float" and 1 <= len(errors) <= 20


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_error_per_iteration_matches_the_hqq_package(bits):
    """``errors[k]`` is ``mean|W − Ŵ|`` before the k-th zero-point update. The hqq package's
    own step, run from the same min–max start with the same (constant) beta, must give the
    same numbers, and the two loops must stop at the same step: the first error that does
    not improve on the best so far (hqq breaks there; we keep the best zero point)."""
    opt = require("hqq.core.optimize")
    W = heavy(o=32, i=128, seed=bits)
    qp0, _ = hqq_qparams(W, bits=bits, group_size=64, iters=1)
    _, ours = hqq_qparams(W, bits=bits, group_size=64, kappa=1.0, iters=50)
    Wg = W.reshape(-1, 64)                                           # hqq's layout, axis=1
    scale, zero = (1 / qp0.scale).reshape(-1, 1), qp0.zero_point.reshape(-1, 1).float()
    theirs: list[float] = []
    for _ in range(50):
        W_r, _, zero, scale = opt.optimize_weights_proximal_legacy_step(
            Wg, scale, zero, [0, 2**bits - 1], 10.0, 0.7, 1)
        theirs.append(float((Wg - W_r).abs().mean()))
        if len(theirs) > 1 and theirs[-1] >= min(theirs[:-1]):
            theirs.pop()                                             # hqq stops here
            break
    assert len(ours) == len(theirs) >= 2
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_matches_the_hqq_package():
    opt = require("hqq.core.optimize")
    W = heavy(o=32, i=128, seed=2)
    qp0, _ = hqq_qparams(W, bits=4, group_size=64, iters=1)          # the min–max start
    ours, errs = hqq_qparams(W, bits=4, group_size=64, kappa=1.0, iters=5)
    assert len(errs) == 5                                            # no early stop here
    Wg = W.reshape(-1, 64)                                           # hqq's layout, axis=1
    _, _, zero = opt.optimize_weights_proximal_legacy(
        Wg, (1 / qp0.scale).reshape(-1, 1), qp0.zero_point.reshape(-1, 1).float(), [0, 15],
        axis=1, device="cpu",
        opt_params={"lp_norm": 0.7, "beta": 10.0, "kappa": 1.0, "iters": 4})
    assert torch.allclose(ours.zero_point.reshape(-1, 1), zero, atol=1e-4)


def test_hqq_quantize_model_in_place():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(cfg)
    report = hqq_quantize_(model, None, bits=3, group_size=32, progress=False)
    assert len(report["layers"]) == 7
    w = model.model.layers[0].mlp.down_proj.weight
    assert len(torch.unique(w[0, :32])) <= 8
