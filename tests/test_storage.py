"""Packed W-bit storage: exact sizes, bitwise-identical reload, clear errors."""

import copy
import json
import struct

import pytest
import torch
from _reference import require
from torch import nn

from inwhale.llm.storage import (
    bits_per_weight,
    fake_quantize_for_storage_,
    load_quantized,
    pack_linear_weight,
    save_float,
    save_quantized,
    unpack_linear_weight,
)

require("safetensors")


def tiny_llama(seed: int = 0, hidden: int = 64, tie: bool = True) -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=128, hidden_size=hidden, intermediate_size=96,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=64, tie_word_embeddings=tie)
    return LlamaForCausalLM(cfg).eval()


def _ids() -> torch.Tensor:
    return torch.randint(0, 128, (2, 24), generator=torch.Generator().manual_seed(1))


def _safetensors_header(path) -> tuple[int, dict]:
    """(header length, header) read from the raw bytes, as the safetensors spec defines them."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))  # little-endian u64 header length
        return n, json.loads(f.read(n))


@pytest.mark.parametrize("bits,group_size", [(4, 32), (4, 48), (3, 64), (8, 40), (2, 16)])
def test_reload_is_bitwise_the_in_memory_model(tmp_path, bits, group_size) -> None:
    model = tiny_llama()
    before = copy.deepcopy(model.state_dict())
    save_quantized(model, tmp_path / "m.safetensors", bits=bits, group_size=group_size)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # unchanged
    fq = fake_quantize_for_storage_(copy.deepcopy(model), bits=bits, group_size=group_size)
    loaded = load_quantized(tmp_path / "m.safetensors", lambda: tiny_llama(seed=7))
    ids = _ids()
    with torch.no_grad():
        a, b = fq(ids).logits, loaded(ids).logits
    assert torch.equal(a, b)
    assert not torch.equal(a, model(ids).logits)  # and quantization did change something
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight  # still tied


def test_weight_matches_torch_fake_quantize_with_fp16_scales() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(24, 128, generator=g) * 0.1
    w[0, :32] += 1.0  # a group that does not contain zero
    rows = w.reshape(-1, 32)  # (O*G, g): one group per row
    lo, hi = rows.amin(1).clamp(max=0), rows.amax(1).clamp(min=0)
    scale = ((hi - lo) / 15).half().float()  # stored scale
    zero = (0 - torch.round(lo / ((hi - lo) / 15))).clamp(0, 15).int()
    expect = torch.fake_quantize_per_channel_affine(rows, scale, zero, 0, 0, 15).reshape(w.shape)
    got = unpack_linear_weight(pack_linear_weight(w, bits=4, group_size=32))
    assert torch.equal(got, expect)


def test_packed_sizes_are_exact(tmp_path) -> None:
    model = tiny_llama(hidden=64)
    path = tmp_path / "m.safetensors"
    info = save_quantized(model, path, bits=4, group_size=48)  # 64 = 48 + 16: ragged groups
    n, header = _safetensors_header(path)
    meta = header.pop("__metadata__")
    record = json.loads(meta["inwhale"])
    assert meta["format"] == "inwhale-packed-v1" and record["bits"] == 4
    sizes = {k: v["data_offsets"][1] - v["data_offsets"][0] for k, v in header.items()}
    assert info["file_bytes"] == path.stat().st_size == 8 + n + sum(sizes.values())
    n_w = lin = 0
    for name, (o, i) in record["linears"].items():
        groups = -(-i // 48)
        assert sizes[f"{name}.qweight"] == -(-o * i * 4 // 8)
        assert header[f"{name}.scales"]["dtype"] == "F16"
        assert header[f"{name}.scales"]["shape"] == [o, groups]
        assert sizes[f"{name}.qzeros"] == -(-o * groups * 4 // 8)
        n_w, lin = n_w + o * i, lin + o * i * bits_per_weight(4, 48, (o, i)) / 8
    assert len(record["linears"]) == 14 and info["linear_weights"] == n_w
    assert info["linear_bytes"] == pytest.approx(lin, abs=len(record["linears"]))  # padding
    assert "lm_head.weight" not in header and "model.embed_tokens.weight" in header
    assert header["model.embed_tokens.weight"]["dtype"] == "F16"
    fp32 = save_float(model, tmp_path / "f32.safetensors")
    n32, _ = _safetensors_header(tmp_path / "f32.safetensors")
    assert fp32 == 8 + n32 + 4 * sum(p.numel() for p in model.parameters())  # tied: once
    assert info["file_bytes"] < fp32 / 3


def test_bits_per_weight_formula() -> None:
    assert bits_per_weight(4, 128, (576, 1536)) == 4 + 12 * 20 / 1536
    assert bits_per_weight(4, 128, (1536, 576)) == 4 + 5 * 20 / 576  # ragged: 5 groups
    assert bits_per_weight(8, 32, (4, 64)) == 8 + 2 * 24 / 64


def test_float32_other_params_and_untied_head(tmp_path) -> None:
    model = tiny_llama(tie=False)
    path = tmp_path / "m.safetensors"
    save_quantized(model, path, bits=4, group_size=32, other_dtype=torch.float32)
    loaded = load_quantized(path, tiny_llama(seed=3, tie=False))
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)  # fp32, skipped: exact
    assert torch.equal(loaded.model.norm.weight, model.model.norm.weight)


def test_bad_arguments(tmp_path) -> None:
    model = tiny_llama()
    path = tmp_path / "m.safetensors"
    with pytest.raises(ValueError, match="bits"):
        save_quantized(model, path, bits=1)
    with pytest.raises(TypeError, match="bits"):            # the library's rule: a type error
        save_quantized(model, path, bits=4.0)
    with pytest.raises(ValueError, match="group_size"):
        save_quantized(model, path, group_size=0)
    with pytest.raises(ValueError, match="exceeds in_features"):
        save_quantized(model, path, group_size=512)
    with pytest.raises(ValueError, match="other_dtype"):
        save_quantized(model, path, other_dtype=torch.int8)
    with pytest.raises(ValueError, match="tied"):
        save_quantized(model, path, group_size=32, skip=())
    save_quantized(model, path, bits=4, group_size=32)
    with pytest.raises(ValueError, match="does not match"):
        load_quantized(path, tiny_llama(hidden=32))
    with pytest.raises(ValueError, match="does not match"):  # one layer fewer than the file
        from transformers import LlamaConfig, LlamaForCausalLM

        load_quantized(path, LlamaForCausalLM(LlamaConfig(
            vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=1,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)))
    with pytest.raises(FileNotFoundError, match="path"):
        load_quantized(tmp_path / "nope.safetensors", model)
    save_float(model, tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="not an inwhale-packed-v1"):
        load_quantized(tmp_path / "plain.safetensors", model)
    with pytest.raises(TypeError, match="model"):
        load_quantized(path, "llama")


def test_plain_module_and_extra_tensors(tmp_path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 8), nn.LayerNorm(8))
    path = tmp_path / "seq.safetensors"
    info = save_quantized(model, path, bits=8, group_size=64, skip=())
    assert info["bits_per_weight"] == info["theoretical_bits_per_weight"] == 8 + 24 / 64
    loaded = load_quantized(path, nn.Sequential(nn.Linear(64, 8), nn.LayerNorm(8)))
    x = torch.randn(3, 64)
    fq = fake_quantize_for_storage_(copy.deepcopy(model), bits=8, group_size=64, skip=())
    assert torch.equal(loaded(x), fq(x))
    with pytest.raises(ValueError, match=r"the file's \['1.bias', '1.weight'\]"):
        load_quantized(path, nn.Sequential(nn.Linear(64, 8)))
