"""Quantized model files from untrusted hands (issue 13 §2): every tampered file is refused
with a ``ValueError``, and the model it was loaded into is left bit-for-bit as it was."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from inwhale.llm.storage import load_quantized, save_quantized

pytest.importorskip("safetensors")
pytest.importorskip("transformers")

BITS, GROUP = 4, 32


def tiny_llama(seed: int = 0) -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=96,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=64, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).eval()


# ---- reading and rewriting the raw container (the safetensors spec: u64 length, JSON, bytes)

def read_raw(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def write_raw(path: Path, header: dict, data: bytes) -> None:
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)  # the spec pads the header with spaces to 8 bytes
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)


def edit_record(fn: Callable[[dict], None]) -> Callable[[dict, bytes], tuple[dict, bytes]]:
    """A tamper that edits the inwhale JSON record."""
    def tamper(header: dict, data: bytes) -> tuple[dict, bytes]:
        record = json.loads(header["__metadata__"]["inwhale"])
        fn(record)
        header["__metadata__"]["inwhale"] = json.dumps(record)
        return header, data
    return tamper


def set_meta(value: str) -> Callable[[dict, bytes], tuple[dict, bytes]]:
    def tamper(header: dict, data: bytes) -> tuple[dict, bytes]:
        header["__metadata__"]["inwhale"] = value
        return header, data
    return tamper


def drop(key: str) -> Callable[[dict, bytes], tuple[dict, bytes]]:
    """Remove a tensor and its bytes (the other tensors' offsets shift down)."""
    def tamper(header: dict, data: bytes) -> tuple[dict, bytes]:
        start, end = header.pop(key)["data_offsets"]
        for k, v in header.items():
            if k != "__metadata__" and v["data_offsets"][0] >= end:
                v["data_offsets"] = [o - (end - start) for o in v["data_offsets"]]
        return header, data[:start] + data[end:]
    return tamper


def swap_offsets(a: str, b: str) -> Callable[[dict, bytes], tuple[dict, bytes]]:
    def tamper(header: dict, data: bytes) -> tuple[dict, bytes]:
        header[a]["data_offsets"], header[b]["data_offsets"] = (
            header[b]["data_offsets"], header[a]["data_offsets"])
        return header, data
    return tamper


def relabel(key: str, dtype: str) -> Callable[[dict, bytes], tuple[dict, bytes]]:
    """Change a tensor's declared dtype, keeping its bytes (same item size: bf16 ↔ f16)."""
    def tamper(header: dict, data: bytes) -> tuple[dict, bytes]:
        header[key]["dtype"] = dtype
        return header, data
    return tamper


def retype(key: str, dtype: str, itemsize: int, values: Callable[[int], bytes]
           ) -> Callable[[dict, bytes], tuple[dict, bytes]]:
    """Replace a tensor's bytes by ``values(n)`` of another dtype (same shape); the tensor
    moves to the end of the data section."""
    def tamper(header: dict, data: bytes) -> tuple[dict, bytes]:
        n = 1
        for d in header[key]["shape"]:
            n *= d
        new = values(n)
        assert len(new) == n * itemsize
        entry = dict(header[key], dtype=dtype)
        header, data = drop(key)(header, data)
        header[key] = dict(entry, data_offsets=[len(data), len(data) + len(new)])
        return header, data + new
    return tamper


def poke_scale(key: str, value: float) -> Callable[[dict, bytes], tuple[dict, bytes]]:
    """Overwrite the first fp16 scale of ``key`` with ``value``."""
    def tamper(header: dict, data: bytes) -> tuple[dict, bytes]:
        start = header[key]["data_offsets"][0]
        b = bytearray(data)
        b[start : start + 2] = struct.pack("<e", value)
        return header, bytes(b)
    return tamper


Q = "model.layers.0.self_attn.q_proj"
OPROJ = "model.layers.0.self_attn.o_proj"
K = "model.layers.0.self_attn.k_proj"
NORM = "model.layers.0.input_layernorm.weight"

# name → (tamper, words the ValueError must contain)
TAMPERED = {
    "scales stored as bf16": (relabel(f"{Q}.scales", "BF16"), "scales"),
    "storage_bits changed": (edit_record(lambda r: r.update(storage_bits=8)), "storage_bits"),
    "bits changed": (edit_record(lambda r: r.update(bits=3)), "tampered"),
    "bits missing": (edit_record(lambda r: r.pop("bits")), "bits"),
    "bits not an int": (edit_record(lambda r: r.update(bits="4")), "bits"),
    "group_size 0": (edit_record(lambda r: r.update(group_size=0)), "group_size"),
    "group_size changed": (edit_record(lambda r: r.update(group_size=16)), "tampered"),
    "a linear's shape changed": (edit_record(lambda r: r["linears"].update({Q: [64, 32]})),
                                 "match"),
    "scales missing": (drop(f"{Q}.scales"), "scales"),
    "qzeros missing": (drop(f"{Q}.qzeros"), "qzeros"),
    "qweight missing": (drop(f"{Q}.qweight"), "qweight"),
    "metadata not JSON": (set_meta("{bits: 4"), "json"),
    "record not an object": (set_meta("[4, 32]"), "object"),
    "offsets of two tensors swapped": (swap_offsets(f"{Q}.scales", f"{OPROJ}.qweight"), "tampered"),
    "a NaN scale": (poke_scale(f"{K}.scales", float("nan")), "scale"),
    "an infinite scale": (poke_scale(f"{K}.scales", float("inf")), "scale"),
    "a negative scale": (poke_scale(f"{K}.scales", -0.5), "scale"),
    "norm weight cast to int16": (retype(NORM, "I16", 2, lambda n: b"\x01\x00" * n), NORM),
    "norm weight relabelled bf16": (relabel(NORM, "BF16"), NORM),
    "other_dtype unknown": (edit_record(lambda r: r.update(other_dtype="int8")),
                            "other_dtype"),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tamper") / "m.safetensors"
    save_quantized(tiny_llama(), path, bits=BITS, group_size=GROUP)
    return path


def test_the_untampered_file_loads(saved) -> None:
    load_quantized(saved, tiny_llama(seed=1))


@pytest.mark.parametrize("case", list(TAMPERED))
def test_tampered_file_is_refused_and_the_model_is_untouched(saved, tmp_path, case) -> None:
    tamper, words = TAMPERED[case]
    header, data = read_raw(saved)
    bad = tmp_path / "bad.safetensors"
    write_raw(bad, *tamper(header, data))
    model = tiny_llama(seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as err:
        load_quantized(bad, model)
    assert words.lower() in str(err.value).lower(), str(err.value)
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k, v in before.items():  # bit for bit, NaN patterns included
        assert after[k].dtype == v.dtype and torch.equal(
            after[k].view(-1).view(torch.uint8) if v.numel() else after[k],
            v.view(-1).view(torch.uint8) if v.numel() else v), k


def test_gpt2_conv1d_model_is_refused_not_saved_empty(tmp_path) -> None:
    """GPT-2 keeps its projections in transformers' Conv1D: saving must not report 0 layers."""
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64,
                                       n_positions=32, bos_token_id=0, eos_token_id=0))
    with pytest.raises(ValueError, match="Conv1D"):
        save_quantized(model, tmp_path / "g.safetensors", bits=4, group_size=16)
    assert not (tmp_path / "g.safetensors").exists()
