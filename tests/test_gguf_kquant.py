"""Q6_K encoder: its bytes checked through the gguf package's reference decoder.

``gguf.quants`` can dequantize Q6_K but not quantize it, so there is no byte-exact
reference for the encoder. What is checked instead, each against something independent:
the reference decoder reads our bytes to exactly our decoder's values; every decoded value
is the nearest of the 64 levels the stored scales allow (a brute-force search); the search
beats the no-search baseline and stays within 1.5x of an MSE-optimal grid search that even
keeps float32 sub-block scales; re-encoding a decoded tensor is (nearly) a fixed point.
"""

import numpy as np
import pytest
import torch
from _reference import require

from inwhale.llm.gguf_formats import (
    BLOCK_BYTES,
    QK_K,
    decode,
    encode,
    q4_k_dequantize,
    q4_k_quantize,
    q6_k_dequantize,
    q6_k_quantize,
)

gguf = require("gguf")
from gguf import GGMLQuantizationType as T  # noqa: E402
from gguf import quants as gq  # noqa: E402


def _data(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 512, generator=g) * torch.rand(256, 1, generator=g) * 0.1
    x[0, :256] = 0.0  # an all-zero super-block
    x[1, :16] = 0.0  # an all-zero sub-block inside a normal super-block
    x[2, :256] = 0.0
    x[2, 7] = -3.0  # a single spike: every other sub-block's scale rounds to 0
    x[3, :256] = torch.rand(256, generator=g)  # all positive
    x[4, :256] = -torch.rand(256, generator=g)  # all negative
    x[5, :256] *= 1e4  # large values
    return x


def _mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a.reshape(b.shape).double() - b.double()) ** 2).mean())


def test_bytes_decode_identically_through_gguf() -> None:
    x = _data()
    b = encode(x, "Q6_K")
    assert b.shape == (x.numel() // QK_K, BLOCK_BYTES["Q6_K"]) and b.dtype == torch.uint8
    assert b.numel() * 8 / x.numel() == 6.5625
    ref = gq.dequantize(b.numpy().reshape(x.shape[0], -1), T.Q6_K)
    ours = decode(b, "Q6_K", tuple(x.shape))
    assert np.array_equal(ours.numpy(), ref)
    assert _mse(ours, x) < 1e-3 * float((x.double() ** 2).mean())  # and it is close to x


def test_every_value_is_the_nearest_stored_level() -> None:
    x = _data(1)
    b = q6_k_quantize(x)
    dec = torch.from_numpy(gq.dequantize(b.numpy(), T.Q6_K)).reshape(-1, 16)  # (n*16, 16)
    sigma = b[:, 192:208].contiguous().view(torch.int8).float()  # (n, 16) int8 scales
    d = torch.from_numpy(b[:, 208:210].numpy().copy().view(np.float16).astype(np.float32))
    step = (d * sigma).reshape(-1, 1)  # (n*16, 1)
    levels = step[:, :, None] * (torch.arange(64) - 32.0)  # (n*16, 1, 64) all 64 levels
    xs = x.reshape(-1, 16)
    best = (xs[..., None] - levels).abs().amin(-1)  # brute force over the levels
    err = (xs - dec).abs()
    assert torch.all(err <= best + 1e-6 * xs.abs().amax())
    assert torch.all(dec[step.squeeze(1) == 0] == 0)


def test_search_beats_no_search_and_stays_near_a_grid_search() -> None:
    torch.manual_seed(2)
    x = torch.distributions.StudentT(3.0).sample((512, 256)) * 0.02  # heavy-tailed weights
    searched = _mse(q6_k_dequantize(q6_k_quantize(x)), x)
    plain = _mse(q6_k_dequantize(q6_k_quantize(x, search=False)), x)
    # reference: per sub-block of 16, the MSE-best of 81 steps x_max/-k, k in [28, 36],
    # float32 step (Q6_K stores it as an 8-bit fraction of an fp16 d)
    sub = x.reshape(-1, 16)
    xmax = sub.gather(1, sub.abs().argmax(1, keepdim=True))
    best = torch.full((sub.shape[0],), float("inf"))
    for k in torch.linspace(28, 36, 81):
        step = xmax / -k
        best = torch.minimum(best, ((torch.clamp(torch.round(sub / step), -32, 31) * step
                                     - sub) ** 2).sum(1))
    grid = float(best.sum() / x.numel())
    assert searched < plain
    assert searched < 1.5 * grid


def test_error_between_q8_0_and_q4_0() -> None:
    x = _data(3)
    errs = {f: _mse(decode(encode(x, f), f, tuple(x.shape)), x) for f in ("Q8_0", "Q6_K", "Q4_0")}
    assert errs["Q8_0"] < errs["Q6_K"] < errs["Q4_0"] / 8


def test_reencoding_a_decoded_tensor_is_stable() -> None:
    x = _data(4)
    b1 = q6_k_quantize(x)
    x1 = q6_k_dequantize(b1).reshape(x.shape)
    b2 = q6_k_quantize(x1)
    x2 = q6_k_dequantize(b2).reshape(x.shape)
    assert _mse(x2, x1) < 0.01 * _mse(x1, x)  # the second pass moves values by far less
    assert float((b2 == b1).all(1).float().mean()) > 0.6  # most super-blocks: same bytes
    b3 = q6_k_quantize(x2)
    assert float((b3 == b2).all(1).float().mean()) > 0.95  # and it settles


def test_edge_cases() -> None:
    z = q6_k_quantize(torch.zeros(2 * QK_K))
    assert torch.equal(z, torch.zeros(2, 210, dtype=torch.uint8))
    spike = torch.zeros(QK_K)
    spike[100] = 0.5
    assert torch.equal(q6_k_dequantize(q6_k_quantize(spike)).reshape(-1), spike)  # exact
    assert torch.equal(q6_k_quantize(torch.ones(QK_K, dtype=torch.float16)),
                       q6_k_quantize(torch.ones(QK_K)))


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="multiple of 256"):
        encode(torch.zeros(255), "Q6_K")
    with pytest.raises(ValueError, match="multiple of 256"):
        q6_k_quantize(torch.zeros(32))
    with pytest.raises(TypeError, match="floating"):
        q6_k_quantize(torch.zeros(256, dtype=torch.int32))
    with pytest.raises(ValueError, match="overflows float16"):
        q6_k_quantize(torch.full((256,), 1e12))
    with pytest.raises(ValueError, match="finite"):
        q6_k_quantize(torch.full((256,), float("nan")))


def test_real_smollm2_weights() -> None:
    from inwhale.data.smollm2 import smollm2_gguf_path

    path = smollm2_gguf_path()
    if not path.exists():
        pytest.skip("SmolLM2 GGUF not present")
    reader = gguf.GGUFReader(str(path))
    t = next(t for t in reader.tensors if t.name == "blk.15.ffn_down.weight")
    w = torch.from_numpy(gq.dequantize(np.asarray(t.data), t.tensor_type).copy())
    g = torch.Generator().manual_seed(0)
    w = w + 1e-3 * w.std() * torch.randn(w.shape, generator=g)  # off the file's Q4_1 grid
    errs = {f: _mse(decode(encode(w, f), f, tuple(w.shape)), w) for f in ("Q8_0", "Q6_K", "Q4_0")}
    assert errs["Q8_0"] < errs["Q6_K"] < errs["Q4_0"] / 8
    searched = errs["Q6_K"]
    assert searched < _mse(q6_k_dequantize(q6_k_quantize(w, search=False)), w)


# ---- Q4_K ------------------------------------------------------------------------------------


def test_q4_k_bytes_decode_identically_through_gguf() -> None:
    x = _data(5)
    b = encode(x, "Q4_K")
    assert b.shape == (x.numel() // QK_K, BLOCK_BYTES["Q4_K"]) and b.numel() * 8 / x.numel() == 4.5
    ref = gq.dequantize(b.numpy().reshape(x.shape[0], -1), T.Q4_K)
    ours = decode(b, "Q4_K", tuple(x.shape))
    assert np.array_equal(ours.numpy(), ref)
    assert torch.all(ours.reshape(-1, QK_K)[0] == 0)  # the all-zero super-block


def test_q4_k_every_value_is_the_nearest_stored_level() -> None:
    x = _data(6)
    b = q4_k_quantize(x)
    dec = torch.from_numpy(gq.dequantize(b.numpy(), T.Q4_K)).reshape(-1, 32)  # (n*8, 32)
    # scales and mins read back through gguf's own unpacking of the 12 scale bytes
    sc, mn = (torch.from_numpy(t.astype(np.float32)) for t in
              gq.Q4_K.get_scale_min(b[:, 4:16].numpy().copy()))
    d, dmin = (torch.from_numpy(b[:, i:i + 2].numpy().copy().view(np.float16).astype(np.float32))
               for i in (0, 2))
    step, off = (d * sc).reshape(-1, 1), (dmin * mn).reshape(-1, 1)  # (n*8, 1)
    levels = (step * torch.arange(16.0) - off)[:, None, :]  # (n*8, 1, 16)
    xs = x.reshape(-1, 32)
    best = (xs[..., None] - levels).abs().amin(-1)
    assert torch.all((xs - dec).abs() <= best + 1e-6 * xs.abs().amax())


def test_q4_k_beats_q4_0_at_the_same_bits_and_min_max_int4() -> None:
    torch.manual_seed(2)
    x = torch.distributions.StudentT(3.0).sample((512, 256)) * 0.02
    q4k = _mse(q4_k_dequantize(q4_k_quantize(x)), x)
    assert q4k < _mse(decode(encode(x, "Q4_0"), "Q4_0", tuple(x.shape)), x)  # both 4.5 bits
    # reference: min-max asymmetric 4-bit per 32 with float32 scale and zero point
    from inwhale import PerGroup, choose_qparams, fake_quantize

    ref = _mse(fake_quantize(x, choose_qparams(x, bits=4, granularity=PerGroup(32))), x)
    assert q4k < ref


def test_q4_k_bad_input() -> None:
    with pytest.raises(ValueError, match="multiple of 256 elements for Q4_K"):
        encode(torch.zeros(32), "Q4_K")
    with pytest.raises(ValueError, match="overflows float16"):
        q4_k_quantize(torch.linspace(0, 1e12, 256))
