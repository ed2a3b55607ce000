"""GPTQ's modes from the reference code: act-order with dynamic groups (``g_idx``), static
groups, and true-sequential quantization inside a block."""

import pytest
import torch
from test_llm_gptq import tiny_llama  # the same tiny random LLaMA as the other GPTQ tests

from inwhale.core.affine import dequantize, fake_quantize
from inwhale.core.granularity import PerAxis
from inwhale.core.qparams import choose_qparams
from inwhale.llm import gptq as gptq_module
from inwhale.llm.gptq import gptq_quantize_, gptq_quantize_weight
from inwhale.llm.harness import block_linears, decoder_blocks
from inwhale.llm.rtn import rtn_weight


def spread_layer(seed: int = 0, i: int = 48, o: int = 12, n: int = 512):
    """Random W and a random SPD H = 2XᵀX/n whose diagonal spans two orders of magnitude."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(i, i, generator=g) / i**0.5 + torch.eye(i)
    X = torch.randn(n, i, generator=g) @ A * torch.logspace(-1, 1, i)[torch.randperm(i, generator=g)]
    W = torch.randn(o, i, generator=g)
    return W, 2 * X.T @ X / n


def obs_loss(W, Q, H):
    """tr((W − Q) H (W − Q)ᵀ): the layer-wise output error GPTQ minimizes."""
    D = (W - Q).double()
    return float(torch.trace(D @ H.double() @ D.T))


# --------------------------------------------------------------------------------------------
# act-order with g_idx
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("group_size", [8, 16, 20])
def test_codes_through_g_idx_reproduce_the_weight_exactly(group_size):
    W, H = spread_layer()
    res = gptq_quantize_weight(W, H, bits=3, group_size=group_size, act_order=True)
    codes = res.codes()
    assert codes.shape == W.shape and not codes.is_floating_point()
    assert int(codes.min()) >= 0 and int(codes.max()) <= 7
    assert torch.equal(dequantize(codes, res.column_qparams()), res.Q)
    # by hand: s·(q − z) with the scale and zero point of column c's group g_idx[c]
    s = res.qparams.scale[:, res.g_idx]
    z = res.qparams.zero_point[:, res.g_idx]
    assert torch.equal((codes.float() - z) * s, res.Q)
    n_groups = -(-W.shape[1] // group_size)
    assert res.qparams.scale.shape == (W.shape[0], n_groups)
    assert torch.equal(torch.bincount(res.g_idx, minlength=n_groups)[:-1],
                       torch.full((n_groups - 1,), group_size))   # full groups but the last


def test_one_group_equals_plain_act_order():
    W, H = spread_layer(1)
    plain = gptq_quantize_weight(W, H, bits=3, group_size=None, act_order=True)
    whole = gptq_quantize_weight(W, H, bits=3, group_size=W.shape[1], act_order=True)
    assert torch.equal(plain.Q, whole.Q)          # one group = the rows' min–max, fixed at step 0
    assert torch.equal(plain.g_idx, torch.zeros(W.shape[1], dtype=torch.long))
    assert torch.equal(plain.qparams.scale, whole.qparams.scale)


def test_group_assignment_by_hand():
    """diag H = [1, 4, 2, 3, 5, 0.5] -> order 4, 1, 3, 2, 0, 5 -> groups {4,1}, {3,2}, {0,5}."""
    H = torch.diag(torch.tensor([1.0, 4.0, 2.0, 3.0, 5.0, 0.5]))
    W = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    res = gptq_quantize_weight(W, H, bits=2, group_size=2, act_order=True)
    assert res.perm.tolist() == [4, 1, 3, 2, 0, 5]
    assert res.g_idx.tolist() == [2, 0, 1, 1, 0, 2]
    # H diagonal: no error is propagated, so each group's parameters are the min–max of its
    # original columns {4,1}, {3,2}, {0,5}
    for g, cols in enumerate([[4, 1], [3, 2], [0, 5]]):
        qp = choose_qparams(W[:, cols], bits=2, granularity=PerAxis(0))
        assert torch.equal(res.qparams.scale[:, g : g + 1], qp.scale)
        assert torch.equal(res.Q[:, cols], fake_quantize(W[:, cols], qp))
    static = gptq_quantize_weight(W, H, bits=2, group_size=2, act_order=True, static_groups=True)
    assert static.g_idx.tolist() == [0, 0, 1, 1, 2, 2]   # contiguous, original order


def act_order_reference(W, H, bits, group_size, percdamp=0.01):
    """Dynamic-group act-order written plainly: float64, explicit H⁻¹ downdates, a group's
    parameters from the current (updated) weights of the next group_size permuted columns."""
    perm = torch.argsort(torch.diag(H), descending=True)
    W = W[:, perm].double().clone()
    Hp = H[perm][:, perm].double()
    Hinv = torch.linalg.inv(Hp + percdamp * torch.diag(Hp).mean() * torch.eye(len(perm),
                                                                              dtype=torch.float64))
    Q = torch.zeros_like(W)
    g_idx = torch.empty(len(perm), dtype=torch.long)
    for j in range(W.shape[1]):
        if j % group_size == 0:
            qp = choose_qparams(W[:, j : j + group_size].float(), bits=bits, granularity=PerAxis(0))
        g_idx[perm[j]] = j // group_size
        Q[:, j] = fake_quantize(W[:, j : j + 1].float(), qp).double()[:, 0]
        W -= ((W[:, j] - Q[:, j]) / Hinv[j, j])[:, None] * Hinv[j][None, :]
        Hinv -= Hinv[:, j : j + 1] @ Hinv[j : j + 1, :] / Hinv[j, j]
    return Q[:, torch.argsort(perm)].float(), g_idx


def test_matches_a_plain_act_order_reference():
    W, H = spread_layer(2, i=40, o=10)
    res = gptq_quantize_weight(W, H, bits=4, group_size=8, act_order=True, blocksize=16)
    Q, g_idx = act_order_reference(W, H, bits=4, group_size=8)
    assert torch.equal(res.g_idx, g_idx)
    agree = (res.Q - Q).abs() < 1e-4
    assert agree.float().mean() > 0.99               # a rare tie may round the other way
    assert torch.allclose(res.Q[agree], Q[agree])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_act_order_g_idx_beats_rtn_on_spread_diagonal(seed):
    W, H = spread_layer(seed, i=64, o=16)
    assert torch.diag(H).max() > 50 * torch.diag(H).min()
    for group_size in (16, 32):
        Q = gptq_quantize_weight(W, H, bits=3, group_size=group_size, act_order=True).Q
        R = rtn_weight(W, bits=3, group_size=group_size)
        assert obs_loss(W, Q, H) <= obs_loss(W, R, H)


def test_static_groups_without_act_order_use_the_float_weights_groups():
    W, H = spread_layer(3)
    res = gptq_quantize_weight(W, H, bits=3, group_size=16, static_groups=True)
    for g in range(3):
        qp = choose_qparams(W[:, 16 * g : 16 * (g + 1)], bits=3, granularity=PerAxis(0))
        assert torch.equal(res.qparams.scale[:, g : g + 1], qp.scale)
    assert torch.equal(dequantize(res.codes(), res.column_qparams()), res.Q)


# --------------------------------------------------------------------------------------------
# true-sequential
# --------------------------------------------------------------------------------------------


def _record_hessians(monkeypatch):
    """Wrap the one-matrix solver that gptq_quantize_ calls; keep each group's Hessian."""
    seen = {}
    solver = gptq_module.gptq_quantize_weight

    def spy(W, H, **kw):
        seen[kw["name"]] = H.clone()
        return solver(W, H, **kw)

    monkeypatch.setattr(gptq_module, "gptq_quantize_weight", spy)
    return seen


def test_true_sequential_quantizes_in_data_flow_order_with_new_hessians(monkeypatch):
    ids = torch.randint(0, 128, (2048,), generator=torch.Generator().manual_seed(0))
    kw = dict(bits=3, group_size=32, n_samples=8, seq_len=64, progress=False)
    seen = _record_hessians(monkeypatch)
    model = tiny_llama()
    rep = gptq_quantize_(model, ids, true_sequential=True, **kw)
    seq = dict(seen)
    seen.clear()
    plain = tiny_llama()
    rep_plain = gptq_quantize_(plain, ids, **kw)
    names = list(block_linears(model))
    assert rep.layers == rep_plain.layers == names and rep["true_sequential"]
    p = "model.layers.0."
    assert list(seq)[:4] == [f"{p}self_attn.q_proj + {p}self_attn.k_proj + {p}self_attn.v_proj",
                             f"{p}self_attn.o_proj", f"{p}mlp.gate_proj + {p}mlp.up_proj",
                             f"{p}mlp.down_proj"]
    assert len(seq) == 8
    for name in names:                         # every linear quantized: <= 8 levels per group
        w = dict(model.named_modules())[name].weight
        assert max(len(torch.unique(w[r, :32])) for r in range(4)) <= 8
    # block 0, q/k/v: same inputs, same Hessian; o_proj: recollected after q/k/v were quantized
    qkv = f"{p}self_attn.q_proj + {p}self_attn.k_proj + {p}self_attn.v_proj"
    torch.testing.assert_close(seq[qkv], seen[qkv], rtol=1e-5, atol=1e-6)
    o = f"{p}self_attn.o_proj"
    assert (seq[o] - seen[o]).norm() > 1e-3 * seen[o].norm()


def test_true_sequential_needs_calibration_data():
    model = tiny_llama()
    Hs = {n: torch.eye(m.in_features) for n, m in block_linears(model).items()}
    with pytest.raises(ValueError, match="true_sequential"):
        gptq_quantize_(model, None, hessians=Hs, true_sequential=True, progress=False)
    assert len(decoder_blocks(model)) == 2


def test_block_run_cut_short_gives_the_same_hessians():
    """True-sequential stops each block run at the group's last linear: same statistics."""
    from inwhale.llm.harness import first_block_inputs, run_block

    model = tiny_llama()
    block = decoder_blocks(model)[0]
    records = first_block_inputs(model, torch.randint(0, 128, (4, 32)), batch_size=2)
    linears = block_linears(model, block)
    group = {n: linears[n] for n in linears if "gate_proj" in n or "up_proj" in n}
    full = gptq_module._block_hessians(block, records, group)
    short = gptq_module._block_hessians(block, records, group, stop_after=list(group)[-1])
    assert full.keys() == short.keys() and len(full) == 2
    for n in full:
        assert torch.equal(full[n], short[n])
    assert run_block(block, records, group, lambda n, x: None, stop_after=next(iter(group))) == []
    with pytest.raises(ValueError, match="stop_after"):
        run_block(block, records, group, lambda n, x: None, stop_after="model.nope")
