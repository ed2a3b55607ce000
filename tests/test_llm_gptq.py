"""GPTQ against independent references: RTN (H = I), the OBS update of the paper written
with explicit inverse-Hessian downdates (no Cholesky, no lazy batches), and the layer-wise
output error it is meant to reduce."""

import pytest
import torch

from inwhale.core.affine import fake_quantize
from inwhale.core.granularity import PerAxis
from inwhale.core.qparams import choose_qparams
from inwhale.llm.gptq import (
    collect_hessians,
    gptq_quantize_,
    gptq_quantize_weight,
    gptq_quantize_weights,
)
from inwhale.llm.harness import decoder_blocks, find_linears
from inwhale.llm.rtn import rtn_quantize_, rtn_weight


def tiny_llama(seed: int = 0, layers: int = 2):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=64, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).eval()


def correlated_layer(seed: int = 0, n: int = 1024, i: int = 64, o: int = 32):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(i, i, generator=g) / i**0.5 + torch.eye(i)
    X = torch.randn(n, i, generator=g) @ A * torch.linspace(0.2, 3.0, i)  # correlated, unequal
    W = torch.randn(o, i, generator=g) * 0.1
    return W, X, 2 * X.T @ X / n


@pytest.mark.parametrize("group_size", [None, 16, 24])
@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_beats_rtn_on_output_error(group_size, act_order):
    W, X, H = correlated_layer()
    Q = gptq_quantize_weight(W, H, bits=3, group_size=group_size, act_order=act_order).Q
    R = rtn_weight(W, bits=3, group_size=group_size)
    err_gptq = ((X @ (W - Q).T) ** 2).sum()
    err_rtn = ((X @ (W - R).T) ** 2).sum()
    assert err_gptq < (0.6 if act_order else 0.9) * err_rtn


@pytest.mark.parametrize("group_size", [None, 16, 24])
def test_identity_hessian_is_exactly_rtn(group_size):
    W, _, _ = correlated_layer(1)
    for c in (1.0, 3.7):
        Q = gptq_quantize_weight(W, c * torch.eye(64), bits=3, group_size=group_size).Q
        assert torch.equal(Q, rtn_weight(W, bits=3, group_size=group_size))


def obq_reference(W, H, bits, percdamp=0.01):
    """Equation (2) of the paper, fixed column order, float64, explicit H⁻¹ downdates."""
    W = W.double().clone()
    qp = choose_qparams(W.float(), bits=bits, granularity=PerAxis(0))
    H = H.double() + percdamp * torch.diag(H).mean() * torch.eye(H.shape[0], dtype=torch.float64)
    Hinv = torch.linalg.inv(H)
    Q = torch.zeros_like(W)
    for j in range(W.shape[1]):
        q = fake_quantize(W[:, j : j + 1].float(), qp).double()[:, 0]
        Q[:, j] = q
        W -= ((W[:, j] - q) / Hinv[j, j])[:, None] * Hinv[j][None, :]      # δ_F
        Hinv -= Hinv[:, j : j + 1] @ Hinv[j : j + 1, :] / Hinv[j, j]       # remove column j
    return Q.float()


def test_matches_obs_update_with_explicit_inverse():
    W, _, H = correlated_layer(2, i=48, o=16)
    Q = gptq_quantize_weight(W, H, bits=4, group_size=None, blocksize=16).Q
    ref = obq_reference(W, H, bits=4)
    agree = (Q - ref).abs() < 1e-4
    assert agree.float().mean() > 0.99               # rare ties may round the other way
    assert torch.allclose(Q[agree], ref[agree])


def test_blocksize_does_not_change_result():
    W, _, H = correlated_layer(3)
    a = gptq_quantize_weight(W, H, bits=4, group_size=16, blocksize=16).Q
    b = gptq_quantize_weight(W, H, bits=4, group_size=16, blocksize=64).Q
    assert (a - b).abs().max() < 1e-4


@pytest.mark.parametrize("group_size", [None, 16])
@pytest.mark.parametrize("act_order", [False, True])
def test_dead_column_is_zeroed(group_size, act_order):
    """An input that is always 0 (H_jj = 0) carries no information: its weights become 0
    exactly (not merely small), and it costs no loss."""
    W, _, H = correlated_layer(4)
    H[5, :] = 0
    H[:, 5] = 0
    res = gptq_quantize_weight(W, H, bits=4, group_size=group_size, act_order=act_order)
    assert torch.all(res.Q[:, 5] == 0)
    assert torch.all(res.losses[:, 5] == 0)
    assert W[:, 5].abs().min() > 0                        # the float weights were not 0


def test_cholesky_failure_names_layer_and_damping():
    W = torch.randn(4, 8)
    with pytest.raises(RuntimeError, match=r"blocks\.3\.q.*percdamp"):
        gptq_quantize_weight(W, -torch.eye(8), bits=4, group_size=None, percdamp=0.0,
                             name="blocks.3.q")


def test_bad_arguments():
    W = torch.randn(4, 8)
    with pytest.raises(ValueError, match="group_size"):
        gptq_quantize_weight(W, torch.eye(8), bits=4, group_size=16)
    with pytest.raises(ValueError, match="H must have shape"):
        gptq_quantize_weight(W, torch.eye(4), bits=4, group_size=None)
    with pytest.raises(ValueError, match="bits"):
        gptq_quantize_weight(W, torch.eye(8), bits=0, group_size=None)


def test_gptq_on_tiny_llama_sequential_and_with_hessians():
    model = tiny_llama()
    ids = torch.randint(0, 128, (4096,), generator=torch.Generator().manual_seed(0))
    assert len(decoder_blocks(model)) == 2
    report = gptq_quantize_(model, ids, bits=3, group_size=32, n_samples=8, seq_len=64,
                            progress=False)
    assert len(report["layers"]) == 14
    for name in report["layers"]:                   # each row group holds <= 2^3 levels
        w = dict(model.named_modules())[name].weight
        assert max(len(torch.unique(w[r, :32])) for r in range(4)) <= 8
    other = tiny_llama()
    names = list(report["layers"])
    Hs = collect_hessians(other, names, torch.randint(0, 128, (8, 64)))
    rep2 = gptq_quantize_(other, None, bits=3, group_size=None, act_order=True, hessians=Hs,
                          progress=False)
    assert rep2["layers"] == names


def test_gptq_lowers_logit_error_vs_rtn_on_tiny_llama():
    ids = torch.randint(0, 128, (8192,), generator=torch.Generator().manual_seed(1))
    ref_model = tiny_llama()
    x = ids[None, -64:]
    ref = ref_model(x).logits
    g, r = tiny_llama(), tiny_llama()
    gptq_quantize_(g, ids[:4096], bits=3, group_size=None, n_samples=16, seq_len=64,
                   progress=False)
    rtn_quantize_(r, bits=3, group_size=None, progress=False)
    assert ((g(x).logits - ref) ** 2).mean() < ((r(x).logits - ref) ** 2).mean()


def test_stacked_rows_equal_separate_calls():
    """q/k/v-style layers sharing H are solved as one stacked matrix: rows are independent."""
    torch.manual_seed(3)
    X = torch.randn(512, 48) * torch.linspace(0.2, 3, 48)
    H = 2 * X.T @ X / 512
    A, B = torch.randn(20, 48), torch.randn(12, 48)
    both = gptq_quantize_weight(torch.cat([A, B]), H, bits=3, group_size=16).Q
    a = gptq_quantize_weight(A, H, bits=3, group_size=16).Q
    b = gptq_quantize_weight(B, H, bits=3, group_size=16).Q
    torch.testing.assert_close(both, torch.cat([a, b]), rtol=0, atol=1e-6)


def test_batched_speedup_matches_single_matrix_solver_with_ragged_groups():
    """The book's whole-model numbers come from gptq_quantize_weights (Hessians given, no
    act-order): each layer of the stack must get what the one-matrix solver gives it. Width
    576 = 4 x 128 + 64, SmolLM2's hidden size, so the last group of every row is short."""
    layers = []
    for seed in range(3):
        W, _, H = correlated_layer(seed, n=2048, i=576, o=24)
        layers.append((W * (1 + seed), H))                    # unlike weights and Hessians
    Ws, Hs = [W for W, _ in layers], [H for _, H in layers]
    for group_size in (128, None):
        batched = gptq_quantize_weights(Ws, Hs, bits=3, group_size=group_size)
        for (W, H), res in zip(layers, batched, strict=True):
            single = gptq_quantize_weight(W, H, bits=3, group_size=group_size)
            step = (W.amax(1) - W.amin(1)).max() / 7            # one 3-bit grid step, at most
            differ = (res.Q - single.Q).abs() > 1e-5
            # batched matmuls may round in the last bit and flip a rare tie; never more
            assert differ.float().mean() < 1e-3
            assert (res.Q - single.Q).abs().max() <= step + 1e-6
            torch.testing.assert_close(res.losses.sum(), single.losses.sum(), rtol=1e-3, atol=0)
    assert len({tuple(r.Q.shape) for r in batched}) == 1


def test_gptq_with_given_hessians_batched_equals_per_layer_solves():
    """gptq_quantize_ with Hessians (the batched branch) writes, for every linear, what the
    one-matrix solver gives on that linear's (stacked) rows."""
    model, ref = tiny_llama(seed=4), tiny_llama(seed=4)
    names = list(find_linears(model))
    Hs = collect_hessians(model, names, torch.randint(0, 128, (8, 64),
                                                      generator=torch.Generator().manual_seed(4)))
    report = gptq_quantize_(model, None, bits=3, group_size=48, hessians=Hs, progress=False)
    assert report.layers == names and report["bits"] == 3
    lin, ref_lin = dict(model.named_modules()), dict(ref.named_modules())
    for group in (["model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.k_proj",
                   "model.layers.1.self_attn.v_proj"], ["model.layers.0.mlp.down_proj"]):
        W = torch.cat([ref_lin[n].weight for n in group])
        Q = gptq_quantize_weight(W, Hs[group[0]], bits=3, group_size=48).Q
        got = torch.cat([lin[n].weight for n in group])
        assert ((got - Q).abs() > 1e-5).float().mean() < 1e-3
