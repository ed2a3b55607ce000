"""GGUF block formats: bit-exact against the gguf package's reference quantizers."""

import numpy as np
import pytest
import torch
from _reference import require

from inwhale.llm.gguf_formats import BLOCK_BYTES, decode, encode

gguf = require("gguf")
from gguf import GGMLQuantizationType as T  # noqa: E402
from gguf import quants as gq  # noqa: E402

FORMATS = ["Q8_0", "Q4_0", "Q4_1"]


def _data() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2048, 256, generator=g) * torch.rand(2048, 1, generator=g) * 3  # 2^19 values
    x[0, :32] = 0.0  # an all-zero block
    x[1, :32] = 5.0  # a constant block
    x[2, :32] = torch.linspace(-1, 1, 32)  # exact ties in Q8_0
    return x


@pytest.mark.parametrize("fmt", FORMATS)
def test_encode_bit_exact_vs_gguf(fmt: str) -> None:
    x = _data()
    ref = gq.quantize(x.numpy(), getattr(T, fmt))
    ours = encode(x, fmt).numpy().reshape(ref.shape)
    assert ours.shape[-1] * 8 / x.shape[-1] == BLOCK_BYTES[fmt] * 8 / 32
    assert np.array_equal(ours, ref)


@pytest.mark.parametrize("fmt", FORMATS)
def test_decode_bit_exact_vs_gguf(fmt: str) -> None:
    ref = gq.quantize(_data().numpy(), getattr(T, fmt))
    expect = gq.dequantize(ref, getattr(T, fmt))
    ours = decode(torch.from_numpy(ref), fmt, tuple(expect.shape)).numpy()
    assert np.array_equal(ours, expect)


def test_q8_0_tiny_blocks_match_llama_cpp_bytes() -> None:
    """Blocks with max|x| below 127 * eps(float32) (~1.5e-5): the core would floor the scale at
    eps, llama.cpp keeps d = max|x|/127 (an fp16 subnormal, or 0) and codes round(x*127/max)."""
    g = torch.Generator().manual_seed(3)
    scales = [1e-5, 3e-6, 1e-7, 1e-9, 1e-20, 1e-30, 0.0, 2e-5]
    x = torch.cat([torch.randn(32, generator=g) * a for a in scales]).reshape(len(scales), 32)
    ref = gq.quantize(x.numpy(), T.Q8_0)
    ours = encode(x, "Q8_0").numpy().reshape(ref.shape)
    assert np.array_equal(ours, ref)
    codes = ours.reshape(len(scales), 34)[:, 2:].view(np.int8)
    assert np.abs(codes[:6]).max(axis=1).tolist() == [127] * 6   # full code range, not x/eps
    assert np.array_equal(decode(torch.from_numpy(ref), "Q8_0", tuple(x.shape)).numpy(),
                          gq.dequantize(ref, T.Q8_0))


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        encode(torch.zeros(31), "Q8_0")
    with pytest.raises(ValueError, match="fmt"):
        encode(torch.zeros(32), "Q3_X")


def test_shipped_model_q4_1_tensor() -> None:
    from inwhale.data.smollm2 import smollm2_gguf_path

    path = smollm2_gguf_path()
    if not path.exists():
        pytest.skip("SmolLM2 GGUF not present")
    reader = gguf.GGUFReader(str(path))
    t = next(t for t in reader.tensors if t.tensor_type == T.Q4_1 and "ffn_down" in t.name)
    raw = np.asarray(t.data)
    expect = gq.dequantize(raw, T.Q4_1)
    ours = decode(torch.from_numpy(raw.copy()), "Q4_1", tuple(expect.shape)).numpy()
    assert np.array_equal(ours, expect)
    # re-encoding the decoded weights reproduces the file's bytes on most blocks
    again = encode(torch.from_numpy(ours), "Q4_1").numpy().reshape(raw.shape)
    assert (again == raw).mean() > 0.9


def test_q6_k_decode_bit_exact_vs_gguf() -> None:
    g = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (512, 210), generator=g, dtype=torch.uint8)
    d = (torch.rand(512, generator=g) * 0.01).half().view(torch.uint8).reshape(512, 2)
    raw[:, 208:] = d  # a finite fp16 super-block scale
    expect = gq.dequantize(raw.numpy(), T.Q6_K)
    ours = decode(raw, "Q6_K", tuple(expect.shape)).numpy()
    assert np.array_equal(ours, expect)
