"""KV-cache quantization hooks (inwhale.llm.kv) against torch's fake-quant kernel and a
hand-wrapped reference model (a tiny random LLaMA from transformers)."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from _reference import require
from torch import nn

from inwhale.llm.kv import (
    KVSpec,
    capture_kv,
    kv_bytes_per_token,
    kv_dims,
    kv_fake_quantize,
    kv_quantize_,
    kv_relative_error,
)

HEAD_DIM = 16


# ---------------------------------------------------------------------------------------------
# the independent reference: hand-computed min-max parameters + torch's per-channel kernel
# ---------------------------------------------------------------------------------------------


def reference_rows(rows: torch.Tensor, bits: int, symmetric: bool) -> torch.Tensor:
    """Fake-quantize each row of ``rows`` (R, n) with its own min-max scale (torch kernel)."""
    rows = rows.float()
    if symmetric:  # narrow signed range [-(2^(b-1)-1), 2^(b-1)-1], z = 0
        qmax = 2 ** (bits - 1) - 1
        qmin = -qmax
        scale = (rows.abs().amax(1) / qmax).clamp_min(torch.finfo(torch.float32).eps)
        zp = torch.zeros(rows.shape[0], dtype=torch.int32)
    else:  # unsigned [0, 2^b - 1], range widened to contain 0
        qmin, qmax = 0, 2**bits - 1
        lo, hi = rows.amin(1).clamp(max=0), rows.amax(1).clamp(min=0)
        scale = ((hi - lo) / (qmax - qmin)).clamp_min(torch.finfo(torch.float32).eps)
        zp = (qmin - torch.round(lo / scale)).clamp(qmin, qmax).to(torch.int32)
    return torch.fake_quantize_per_channel_affine(rows, scale, zp, 0, qmin, qmax)


def reference_kv(x: torch.Tensor, head_dim: int, bits: int, axis: str,
                 group_size: int | None = None, symmetric: bool = False) -> torch.Tensor:
    """Reference for a (B, T, C) projection output."""
    b, t, c = x.shape
    if axis == "token":
        rows = x.reshape(-1, group_size or head_dim)  # one row per token, head (and group)
        return reference_rows(rows, bits, symmetric).reshape(b, t, c)
    rows = x.transpose(1, 2).reshape(-1, t)  # one row per (sequence, channel)
    return reference_rows(rows, bits, symmetric).reshape(b, c, t).transpose(1, 2)


class RefQuant(nn.Module):
    """A linear followed by the reference quantizer: the model the hooks should reproduce."""

    def __init__(self, linear: nn.Linear, **kw: object) -> None:
        super().__init__()
        self.linear, self.kw = linear, kw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reference_kv(self.linear(x), HEAD_DIM, **self.kw)


@pytest.fixture(scope="module")
def tiny():
    transformers = require("transformers")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=101, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=HEAD_DIM,
        max_position_embeddings=64)
    model = transformers.LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 101, (2, 24))
    return model, ids


def logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids, use_cache=False).logits


# ---------------------------------------------------------------------------------------------
# kv_fake_quantize == reference
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("axis,group_size", [("token", None), ("token", 8), ("channel", None)])
@pytest.mark.parametrize("symmetric", [False, True])
def test_fake_quantize_kv_matches_torch_kernel(bits, axis, group_size, symmetric):
    torch.manual_seed(bits)
    x = torch.randn(3, 11, 2 * HEAD_DIM) * torch.linspace(0.1, 5.0, 2 * HEAD_DIM)
    got = kv_fake_quantize(x, HEAD_DIM, KVSpec(bits, axis, group_size, symmetric))
    want = reference_kv(x, HEAD_DIM, bits, axis, group_size, symmetric)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert not torch.equal(got, x)  # it did quantize


def test_fake_quantize_kv_keeps_dtype_and_shape():
    x = torch.randn(2, 5, 32, dtype=torch.float16)
    y = kv_fake_quantize(x, HEAD_DIM, KVSpec(8, "channel"))
    assert y.dtype == torch.float16 and y.shape == x.shape


# ---------------------------------------------------------------------------------------------
# hooks on a real transformers model
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("keys,values,bits", [("channel", "token", 4), ("token", "token", 2),
                                              ("token", None, 3)])
def test_hooked_model_matches_reference_model(tiny, keys, values, bits):
    model, ids = tiny
    ref = copy.deepcopy(model)
    for layer in ref.model.layers:
        attn = layer.self_attn
        attn.k_proj = RefQuant(attn.k_proj, bits=bits, axis=keys)
        if values is not None:
            attn.v_proj = RefQuant(attn.v_proj, bits=bits, axis=values)
    want = logits(ref, ids)
    with kv_quantize_(model, bits=bits, keys=keys, values=values) as handle:
        got = logits(model, ids)
    assert len(handle.layers) == 2 * (2 if values else 1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert (got - logits(model, ids)).abs().max() > 1e-4  # quantization changed the logits


def test_remove_restores_identical_logits(tiny):
    model, ids = tiny
    before = logits(model, ids)
    handle = kv_quantize_(model, bits=2, keys="channel", values="token", group_size=8)
    assert not torch.allclose(logits(model, ids), before, atol=1e-3)
    handle.remove()
    handle.remove()  # idempotent
    assert torch.equal(logits(model, ids), before)
    assert all(not m._forward_hooks for m in model.modules())


def test_sixteen_bits_is_nearly_the_float_model(tiny):
    model, ids = tiny
    before = logits(model, ids)
    with kv_quantize_(model, bits=16, keys="channel", values="token"):
        torch.testing.assert_close(logits(model, ids), before, rtol=0, atol=1e-4)
    with kv_quantize_(model, bits=4, keys=None, values=None) as handle:  # nothing hooked
        assert torch.equal(logits(model, ids), before) and handle.layers == []


def test_error_decreases_with_bits(tiny):
    model, ids = tiny
    kv = capture_kv(model, ids)
    for name, x in kv.items():
        for axis in ("token", "channel"):
            errs = [kv_relative_error(x, KVSpec(b, axis)) for b in (2, 3, 4, 6, 8)]
            assert all(a > b for a, b in itertools.pairwise(errs)), (name, axis, errs)
            assert errs[0] > 0.05 and errs[-1] < 0.02


def test_channel_beats_token_on_outlier_channels():
    torch.manual_seed(1)
    offset = torch.zeros(HEAD_DIM)
    offset[3] = 20.0  # one outlier channel, large for every token (like keys)
    keys = torch.randn(1, 256, 1, HEAD_DIM) + offset
    tok, ch = (kv_relative_error(keys, KVSpec(4, a)) for a in ("token", "channel"))
    assert ch < 0.5 * tok
    values = torch.randn(1, 256, 1, HEAD_DIM) * torch.rand(1, 256, 1, 1).pow(4) * 10
    tok, ch = (kv_relative_error(values, KVSpec(4, a)) for a in ("token", "channel"))
    assert tok < ch  # outlier tokens, no outlier channels: per token wins


def test_capture_kv_returns_pre_rope_projection(tiny):
    model, ids = tiny
    kv = capture_kv(model, ids, layers=[0])
    assert sorted(kv) == ["model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.v_proj"]
    layer = model.model.layers[0]
    with torch.no_grad():
        k = layer.self_attn.k_proj(layer.input_layernorm(model.model.embed_tokens(ids)))
    assert kv["model.layers.0.self_attn.k_proj"].shape == (2, 24, 2, HEAD_DIM)
    torch.testing.assert_close(kv["model.layers.0.self_attn.k_proj"], k.unflatten(-1, (2, 16)))


# ---------------------------------------------------------------------------------------------
# bytes per token
# ---------------------------------------------------------------------------------------------


def test_bytes_per_token_by_hand():
    layers, heads, d = 30, 3, 64  # SmolLM2-135M
    assert kv_bytes_per_token(layers, heads, d) == 2 * 2 * layers * heads * d  # fp16
    # 2-bit symmetric per token, groups of 32: 64*2/8 = 16 bytes + 2 groups * 1 fp16 scale
    k = KVSpec(2, "token", 32, symmetric=True)
    # 2-bit asymmetric per channel, one (scale, zero) pair of fp16 per channel per 64 tokens
    v = KVSpec(2, "channel")
    want = layers * heads * ((16 + 2 * 2) + (16 + 64 * 2 * 2 / 64))
    assert kv_bytes_per_token(layers, heads, d, k, v, tokens_per_scale=64) == want
    assert kv_dims(tiny_config()) == (2, 2, 16)


def tiny_config():
    from types import SimpleNamespace

    return SimpleNamespace(num_hidden_layers=2, num_key_value_heads=2, num_attention_heads=4,
                           hidden_size=64)


# ---------------------------------------------------------------------------------------------
# bad arguments
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,error,word", [
    (dict(bits=1), ValueError, "bits"),
    (dict(bits=4.0), TypeError, "bits"),
    (dict(keys="row"), ValueError, "keys"),
    (dict(values="head"), ValueError, "values"),
    (dict(keys="token", group_size=5), ValueError, "group_size"),
    (dict(key_suffix="wk"), ValueError, "key_suffix"),
    (dict(values="token", value_suffix="wv"), ValueError, "value_suffix"),
    (dict(head_dim=5), ValueError, "head_dim"),
    (dict(head_dim=0), ValueError, "head_dim"),
])
def test_bad_arguments_name_the_argument(tiny, kwargs, error, word):
    model, _ = tiny
    with pytest.raises(error, match=word):
        kv_quantize_(model, **kwargs)
    assert all(not m._forward_hooks for m in model.modules())


def test_bad_spec_and_inputs():
    with pytest.raises(ValueError, match="group_size"):
        KVSpec(4, "channel", group_size=8)
    with pytest.raises(ValueError, match="axis"):
        KVSpec(4, "tokens")
    with pytest.raises(ValueError, match="head_dim"):
        kv_fake_quantize(torch.randn(2, 3, 20), 16, KVSpec())
    with pytest.raises(TypeError, match="spec"):
        kv_fake_quantize(torch.randn(2, 3, 16), 16, "token")
    with pytest.raises(ValueError, match="x"):
        kv_relative_error(torch.randn(3, 16), KVSpec())
    with pytest.raises(ValueError, match="tokens_per_scale"):
        kv_bytes_per_token(30, 3, 64, tokens_per_scale=0)
