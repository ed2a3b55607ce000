"""NF4 against the published table (QLoRA / bitsandbytes), blockwise absmax and double quantization."""

import pytest
import torch

from inwhale.formats.minifloat import FP8_E4M3, minifloat_quantize
from inwhale.formats.nf4 import (
    nf4_bits_per_param,
    nf4_quantize,
    nf4_values,
    nf_offset,
    normal_float_values,
)

# The NF4 data type as published (QLoRA, Dettmers et al. 2023, appendix E; bitsandbytes)
NF4_PUBLISHED = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]


def test_nf4_matches_published_table():
    assert nf4_values().tolist() == pytest.approx(NF4_PUBLISHED, abs=1e-6)


def test_offset_is_the_published_one():
    assert nf_offset(4) == pytest.approx(0.9677083, abs=1e-7)


def test_construction_properties_other_widths():
    for b in (2, 3, 5):
        v = normal_float_values(b)
        assert v.numel() == 2**b and v[0] == -1 and v[-1] == 1
        assert int((v == 0).sum()) == 1 and int((v > 0).sum()) == 2 ** (b - 1)


def test_blockwise_absmax_by_hand():
    w = torch.tensor([0.5, -1.0, 0.0, 2.0, 0.1, 0.2, -0.3, 0.05])
    t = nf4_quantize(w, block_size=4)
    assert t.absmax.tolist() == [2.0, pytest.approx(0.3)]
    nf = torch.tensor(NF4_PUBLISHED)
    for blk, c in ((w[:4], 2.0), (w[4:], 0.3)):
        ref = nf[(blk[:, None] / c - nf[None]).abs().argmin(dim=1)] * c  # brute-force nearest
        got = t.dequantize()[: 4] if c == 2.0 else t.dequantize()[4:]
        assert torch.allclose(got, ref, atol=1e-7)


def test_absmax_of_each_block_is_exact():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(128, 64, generator=g)
    wh = nf4_quantize(w, 64).dequantize()
    assert torch.equal(wh.abs().amax(dim=1), w.abs().amax(dim=1))  # ±1 codes give the absmax


def test_bits_per_param():
    assert nf4_bits_per_param() == 4.5
    assert nf4_bits_per_param(double_quant=True) == pytest.approx(4.127, abs=5e-4)
    g = torch.Generator().manual_seed(1)
    w = torch.randn(1024, 1024, generator=g)
    assert nf4_quantize(w).bits_per_param() == 4.5
    dq = nf4_quantize(w, double_quant=True)
    # 4-bit codes + 8-bit constants + a float32 c₂ per 256 blocks + one float32 mean
    assert dq.bits_per_param() == pytest.approx(4 + 8 / 64 + 32 / (64 * 256) + 32 / 2**20,
                                                abs=1e-9)


def test_double_quantization_reconstructs_constants_by_hand():
    g = torch.Generator().manual_seed(2)
    w = torch.randn(64 * 512, generator=g) * 0.02
    plain, dq = nf4_quantize(w), nf4_quantize(w, double_quant=True)
    c = plain.absmax
    mu = c.mean()
    q8, c2, mu_stored = dq.dq
    assert torch.equal(mu_stored, mu) and q8.numel() == 512 and c2.numel() == 2
    blocks = (c - mu).view(2, 256)
    amax2 = blocks.abs().amax(dim=1, keepdim=True)
    ref = minifloat_quantize(blocks / amax2 * 448, FP8_E4M3) / 448 * amax2 + mu
    assert torch.allclose(dq.absmax, ref.flatten(), rtol=0, atol=1e-9)
    # the weight error grows only a little
    e_plain = float(((plain.dequantize() - w) ** 2).mean())
    e_dq = float(((dq.dequantize() - w) ** 2).mean())
    assert abs(e_dq - e_plain) < 0.05 * e_plain


def test_nf4_beats_uniform_int4_on_gaussian_weights():
    from inwhale.core import PerGroup, choose_qparams, fake_quantize

    g = torch.Generator().manual_seed(3)
    w = torch.randn(256, 256, generator=g)
    e_nf4 = float(((nf4_quantize(w).dequantize() - w) ** 2).mean())
    qp = choose_qparams(w, bits=4, symmetric=True, narrow_range=True, granularity=PerGroup(64))
    e_int4 = float(((fake_quantize(w, qp) - w) ** 2).mean())
    assert e_nf4 < 0.9 * e_int4


def test_bad_input():
    with pytest.raises(ValueError, match="bits"):
        nf_offset(1)
    with pytest.raises(ValueError, match="finite"):
        nf4_quantize(torch.tensor([torch.nan]))
    with pytest.raises(ValueError, match="block_size"):
        nf4_quantize(torch.ones(8), block_size=0)
    with pytest.raises(TypeError):
        nf4_quantize(torch.ones(8, dtype=torch.int64))
