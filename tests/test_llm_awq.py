"""AWQ: the Hessian form of the output error against the explicit matmul, α = 0 as plain RTN,
a salient channel that the scale search protects, clipping never worse than min–max, and a
scaled-but-unquantized model that computes the same function (the fold is exact)."""

import torch

from inwhale.core.affine import fake_quantize
from inwhale.llm.awq import awq_clip_qparams, awq_quantize_, awq_scale_search, output_error
from inwhale.llm.rtn import rtn_quantize_, rtn_weight


def salient_layer(seed=0, n=512, i=128, o=64):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, i, generator=g)
    X[:, [3, 40]] *= 30.0                               # two salient input channels
    W = torch.randn(o, i, generator=g) * 0.05
    return W, X, X.T @ X / n


def tiny_llama(seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).eval()


def test_output_error_equals_explicit_matmul():
    W, X, H = salient_layer()
    D = W - rtn_weight(W, bits=3, group_size=32)
    assert torch.allclose(output_error(D, H), ((X @ D.T) ** 2).sum() / X.shape[0], rtol=1e-4)


def test_alpha_zero_is_rtn_and_search_protects_salient_channels():
    W, X, H = salient_layer()
    s, alpha, errors = awq_scale_search([W], H, X.abs().mean(0), bits=3, group_size=32)
    assert errors[0] == float(output_error(W - rtn_weight(W, bits=3, group_size=32), H))
    assert alpha > 0 and min(errors) < 0.8 * errors[0]
    assert s[3] > s.median() and s[40] > s.median()


def test_clipping_is_never_worse_than_minmax_per_layer():
    W, _, H = salient_layer(1)
    for group_size in (32, 48, None):
        qp = awq_clip_qparams(W, H, bits=3, group_size=group_size)
        clipped = output_error(W - fake_quantize(W, qp), H)
        plain = output_error(W - rtn_weight(W, bits=3, group_size=group_size), H)
        assert clipped <= plain * (1 + 1e-6)


def test_scale_fold_keeps_the_function():
    model, ref_model = tiny_llama(), tiny_llama()
    ids = torch.randint(0, 128, (4096,), generator=torch.Generator().manual_seed(0))
    x = ids[None, -48:]
    with torch.no_grad():
        ref = ref_model(x).logits
        rep = awq_quantize_(model, ids, bits=16, group_size=32, clip=False, n_samples=4,
                            seq_len=64, progress=False)
        assert len(rep["alpha"]) == 4 and len(rep["layers"]) == 14
        assert (model(x).logits - ref).abs().max() < 1e-3   # 16-bit grid: only the fold


def test_awq_beats_rtn_on_tiny_llama():
    ids = torch.randint(0, 128, (8192,), generator=torch.Generator().manual_seed(1))
    x = ids[None, -64:]
    ref_model, a, r = tiny_llama(), tiny_llama(), tiny_llama()
    with torch.no_grad():
        ref = ref_model(x).logits
        awq_quantize_(a, ids[:4096], bits=3, group_size=32, n_samples=8, seq_len=64,
                      progress=False)
        rtn_quantize_(r, bits=3, group_size=32, progress=False)
        assert ((a(x).logits - ref) ** 2).mean() < ((r(x).logits - ref) ** 2).mean()
