"""MX block formats against the OCP MX v1.0 rules, computed by hand."""

import pytest
import torch

from inwhale.formats.minifloat import FP4_E2M1, FP8_E4M3, minifloat_quantize
from inwhale.formats.mx import (
    MX_FORMATS,
    MXFP4_E2M1,
    MXFP6_E2M3,
    MXFP6_E3M2,
    MXFP8_E4M3,
    MXFP8_E5M2,
    MXINT8,
    mx_fake_quantize,
    mx_quantize,
    shared_exponent,
)


def test_emax_of_each_element_format_is_the_spec_value():
    # OCP MX v1.0, Table 1: emax_elem = 8, 15, 4, 2, 2 and 0 for INT8
    got = [f.emax_elem for f in (MXFP8_E4M3, MXFP8_E5M2, MXFP6_E3M2, MXFP6_E2M3, MXFP4_E2M1,
                                 MXINT8)]
    assert got == [8, 15, 4, 2, 2, 0]


def test_bits_per_element():
    assert [f.bits_per_element() for f in MX_FORMATS] == [8.25, 8.25, 6.25, 6.25, 4.25, 8.25]
    assert MXFP4_E2M1.bits_per_element(16) == (16 * 4 + 8) / 16


def test_shared_scale_rule_by_hand():
    x = torch.zeros(2, 64)
    x[0, 3], x[0, 40], x[1, 0], x[1, 33] = 5.0, -0.01, 1e-30, 448.0 * 3
    e = shared_exponent(x, MXFP8_E4M3).flatten().tolist()
    # blocks: max 5 → ⌊log₂5⌋=2 → 2−8=−6; max 0.01 → −7−8=−15; 1e-30 → −100−8=−108;
    # 1344 → 10−8 = 2
    assert e == [-6, -15, -108, 2]
    assert shared_exponent(torch.zeros(32), MXFP4_E2M1).item() == -127  # all-zero block


def test_mxfp4_block_by_hand():
    x = torch.linspace(-1, 1, 32) * 7.9  # amax 7.9: ⌊log₂ 7.9⌋ = 2, X = 2^(2−2) = 1
    t = mx_quantize(x, MXFP4_E2M1)
    assert t.shared_exp.item() == 0
    expect = minifloat_quantize(x, FP4_E2M1)  # X = 1: plain E2M1 with saturation (7.9 → 6)
    assert torch.equal(t.dequantize(), expect)
    assert t.dequantize().abs().max().item() == 6.0


def test_elements_are_scaled_grid_values_and_scale_is_power_of_two():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 96, generator=g) * torch.logspace(-3, 2, 96)
    for fmt in (MXFP8_E4M3, MXFP6_E3M2, MXFP4_E2M1):
        t = mx_quantize(x, fmt)
        grid = fmt.element.grid().float()
        assert bool(torch.isin(t.elements, grid).all())
        xhat = t.dequantize()
        X = torch.pow(2.0, t.shared_exp.float()).repeat_interleave(32, dim=-2).reshape(8, 96)
        assert torch.equal(xhat, t.elements * X)


def test_mxfp8_e4m3_matches_scale_then_torch_cast():
    """Independent reference: divide by X, cast with torch's saturating e4m3fn, multiply."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 128, generator=g) * 0.05
    e = shared_exponent(x, MXFP8_E4M3)
    X = torch.pow(2.0, e.float())
    ref = ((x.view(64, 4, 32) / X).to(torch.float8_e4m3fn).float() * X).view(64, 128)
    assert torch.equal(mx_fake_quantize(x, MXFP8_E4M3), ref)


def test_mxint8_elements():
    # spec: int8 two's complement with implicit scale 2^-6; we keep [-127, 127]
    x = torch.zeros(32)
    x[:5] = torch.tensor([1.0, 0.5, 1 / 128, -1.999, 3 / 256])  # amax 1.999 → X = 2^0
    t = mx_quantize(x, MXINT8)
    assert t.shared_exp.item() == 0
    # 1.0 → 64/64; 0.5 → 32/64; 1/128 = 0.5/64 → tie → 0; −1.999 → −127/64 (clamped); 0.75/64 → 1
    assert t.elements[:5].tolist() == [1.0, 0.5, 0.0, -127 / 64, 1 / 64]


def test_mx_error_shrinks_with_more_bits():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(32, 256, generator=g)
    err = {f.name: float(((mx_fake_quantize(x, f) - x) ** 2).mean()) for f in MX_FORMATS}
    others = [v for k, v in err.items() if k not in ("MXFP4 E2M1", "MXINT8")]
    assert err["MXFP4 E2M1"] > max(others) and err["MXINT8"] < min(others)
    # 3 mantissa bits beat 2 at equal width; E4M3 ≈ E2M3 and E5M2 ≈ E3M2 (a block needs
    # little exponent range)
    assert err["MXFP8 E4M3"] < err["MXFP8 E5M2"] and err["MXFP6 E2M3"] < err["MXFP6 E3M2"]


def test_ragged_last_block_and_dtype():
    x = torch.randn(3, 40, dtype=torch.bfloat16)
    y = mx_fake_quantize(x, MXFP8_E4M3)
    assert y.shape == x.shape and y.dtype == torch.bfloat16
    assert mx_quantize(x, MXFP8_E4M3).shared_exp.shape == (3, 2, 1)


def test_bad_input():
    with pytest.raises(TypeError):
        mx_quantize(torch.ones(32, dtype=torch.int32), MXFP8_E4M3)
    with pytest.raises(TypeError, match="MXFormat"):
        mx_quantize(torch.ones(32), FP8_E4M3)
    with pytest.raises(ValueError, match="finite"):
        mx_quantize(torch.full((32,), torch.inf), MXFP8_E4M3)
    with pytest.raises(ValueError, match="block_size"):
        mx_quantize(torch.ones(16), MXFP8_E4M3)
