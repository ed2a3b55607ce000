"""LLM.int8() decomposition, W8A8 fake quant, SmoothQuant folding and ZeroQuant."""

import copy

import pytest
import torch
from _reference import require
from torch import nn

from inwhale.llm.act_quant import W8A8Linear, quantize_activation, w8a8_quantize_
from inwhale.llm.llm_int8 import (
    LLMInt8Linear,
    int8_matmul_decomposed,
    int8_matmul_int32,
    llm_int8_quantize_,
)
from inwhale.llm.smoothquant import smooth_, smoothing_factors
from inwhale.llm.zeroquant import zeroquant_quantize_


def _xw(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 64, generator=g)
    x[:, [3, 40]] *= 20.0  # two outlier feature columns
    return x, torch.randn(32, 64, generator=g) * 0.1


def _vectorwise_reference(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Hand-written vector-wise int8: per-row absmax/127 for x, per-output-row for w."""
    sx = x.abs().amax(1, keepdim=True) / 127
    sw = w.abs().amax(1, keepdim=True) / 127
    return (torch.round(x / sx) * sx) @ (torch.round(w / sw) * sw).T


def test_all_outliers_is_exact() -> None:
    x, w = _xw()
    torch.testing.assert_close(int8_matmul_decomposed(x, w, threshold=0.0), x @ w.T)


def test_no_outliers_is_plain_vectorwise() -> None:
    x, w = _xw()
    y = int8_matmul_decomposed(x, w, threshold=float("inf"))
    torch.testing.assert_close(y, _vectorwise_reference(x, w), atol=1e-5, rtol=1e-5)


def test_int32_path_equals_fake_quant() -> None:
    x, w = _xw(1)
    for tau in (6.0, float("inf")):
        torch.testing.assert_close(int8_matmul_int32(x, w, tau), int8_matmul_decomposed(x, w, tau),
                                   atol=1e-5, rtol=1e-5)


def test_decomposition_helps_with_outliers() -> None:
    x, w = _xw(2)
    exact = x @ w.T
    err_dec = (int8_matmul_decomposed(x, w, 6.0) - exact).norm()
    err_plain = (int8_matmul_decomposed(x, w, float("inf")) - exact).norm()
    assert err_dec < 0.5 * err_plain


def test_quantize_activation_per_token_matches_torch() -> None:
    x, _ = _xw()
    s = x.abs().amax(1) / 127
    ref = torch.fake_quantize_per_channel_affine(x, s, torch.zeros(16, dtype=torch.int32), 0,
                                                 -127, 127)
    torch.testing.assert_close(quantize_activation(x, 8, "token"), ref, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="granularity"):
        quantize_activation(x, 8, "channel")


def test_module_swaps() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 8))
    x = torch.randn(5, 64) * 3
    ref = model(x)
    m1, m2, m3 = copy.deepcopy(model), copy.deepcopy(model), copy.deepcopy(model)
    assert len(w8a8_quantize_(m1, progress=False).layers) == 2
    assert isinstance(m1[0], W8A8Linear)
    assert len(llm_int8_quantize_(m2, threshold=0.0, progress=False).layers) == 2
    assert isinstance(m2[0], LLMInt8Linear)
    torch.testing.assert_close(m2(x), ref, atol=1e-5, rtol=1e-5)  # all outliers: exact
    assert m2[0].outlier_fraction == 1.0
    zeroquant_quantize_(m3, bits=4, group_size=32, progress=False)
    w = m3[0].weight.reshape(32, 2, 32)
    assert all(g.unique().numel() <= 15 for g in w.reshape(-1, 32))  # 4-bit narrow: 15 levels
    assert (m1(x) - ref).abs().max() < 0.1 * ref.abs().max()


def test_smoothing_factors_formula() -> None:
    a, w = torch.tensor([8.0, 0.5, 2.0]), torch.tensor([[1.0, -2.0, 0.5], [0.25, 1.0, -4.0]])
    s = smoothing_factors(a, [w], alpha=0.75)
    torch.testing.assert_close(s, a**0.75 / torch.tensor([1.0, 2.0, 4.0]) ** 0.25)


def _tiny_llama():
    transformers = require("transformers")
    cfg = transformers.LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128,
                                   num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # non-trivial norm weights and an outlier channel
        for p in model.parameters():
            if p.ndim == 1:
                p.copy_(torch.rand_like(p) + 0.5)
        model.model.layers[0].input_layernorm.weight[7] = 30.0
    return model


def test_smoothing_is_identity_in_float() -> None:
    from inwhale.llm.harness import linear_input_absmax, norm_linear_pairs

    model = _tiny_llama()
    ids = torch.randint(0, 128, (2, 24), generator=torch.Generator().manual_seed(0))
    ref = model(ids).logits
    pairs = norm_linear_pairs(model)
    absmax = linear_input_absmax(model, [p.linear_names[0] for p in pairs], ids)
    assert len(pairs) == 4
    smooth_(pairs, absmax, alpha=0.5)
    torch.testing.assert_close(model(ids).logits, ref, atol=1e-4, rtol=1e-4)
    # the outlier channel of layer 0 shrank to the others' size after smoothing
    after = linear_input_absmax(model, [pairs[0].linear_names[0]], ids)[pairs[0].linear_names[0]]
    assert after.max() / after.median() < absmax[pairs[0].linear_names[0]].max() / absmax[
        pairs[0].linear_names[0]].median()


def test_smoothquant_factors_are_the_ptq_smoothing_scales():
    """One migration formula: the LLM factors for linears sharing an input are the ptq
    smoothing scales of their stacked weights; a dead channel (zero range) keeps s = 1."""
    from inwhale.ptq.smoothing import smoothing_scales

    g = torch.Generator().manual_seed(7)
    a = torch.rand(16, generator=g) * 10
    a[3] = 0.0                                                   # an input that is always 0
    ws = [torch.randn(8, 16, generator=g), torch.randn(4, 16, generator=g) * 3]
    s = smoothing_factors(a, ws, alpha=0.6)
    assert torch.equal(s, smoothing_scales(a, torch.cat(ws), 0.6))
    w_max = torch.cat(ws).abs().amax(0)
    expect = a.pow(0.6) / w_max.pow(0.4)                         # SmoothQuant eq. (4)
    keep = torch.arange(16) != 3
    torch.testing.assert_close(s[keep], expect[keep], rtol=1e-6, atol=0)
    assert s[3] == 1.0
