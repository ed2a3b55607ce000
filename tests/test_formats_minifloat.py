"""Minifloats against PyTorch's own casts (FP8, float16, bfloat16) and the OCP MX tables."""

import dataclasses

import pytest
import torch

from inwhale.formats.minifloat import (
    FP4_E2M1,
    FP6_E2M3,
    FP6_E3M2,
    FP8_E4M3,
    FP8_E5M2,
    MinifloatFormat,
    minifloat_decode,
    minifloat_encode,
    minifloat_quantize,
)

FP8 = [(FP8_E4M3, torch.float8_e4m3fn), (FP8_E5M2, torch.float8_e5m2)]


def same_bits(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Equal float32 bit patterns (so −0 ≠ +0), or both NaN."""
    return (a.view(torch.int32) == b.view(torch.int32)) | (a.isnan() & b.isnan())


def random_fp32_patterns(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(-(2**31), 2**31, (n,), dtype=torch.int64, generator=g)
    return bits.to(torch.int32).view(torch.float32)


def fp32_neighbours(v: torch.Tensor, k: int = 2) -> torch.Tensor:
    """Every float32 within ``k`` ulps of each value of ``v`` (both signs)."""
    b = v.float().abs().view(torch.int32).long()
    near = (b[:, None] + torch.arange(-k, k + 1)[None]).clamp(0, 0x7F800000).flatten()
    x = near.to(torch.int32).view(torch.float32)
    return torch.cat([x, -x])


def critical_points(fmt: MinifloatFormat) -> torch.Tensor:
    """Every representable value, every midpoint (tie) between neighbours, the overflow
    boundary and the smallest subnormal's half, each with its float32 neighbours."""
    g = fmt.grid()
    g = g[g >= 0]
    ulp_top = g[-1] - g[-2]
    pts = torch.cat([g, (g[1:] + g[:-1]) / 2, g[-1:] + ulp_top / 2, g[-1:] + ulp_top,
                     torch.tensor([fmt.min_subnormal / 2, 2.0**fmt.emin, 1e30, 3.4e38])])
    return torch.cat([fp32_neighbours(pts.float()), torch.tensor([torch.inf, -torch.inf])])


@pytest.mark.parametrize(("fmt", "dtype"), FP8, ids=["e4m3fn", "e5m2"])
def test_fp8_matches_torch_on_random_bit_patterns(fmt, dtype):
    x = random_fp32_patterns(2**21, seed=1)  # NaN, ±inf, subnormals, everything
    ref = x.to(dtype)
    assert bool(same_bits(minifloat_quantize(x, fmt), ref.float()).all())
    assert torch.equal(minifloat_encode(x, fmt), ref.view(torch.uint8))


@pytest.mark.parametrize(("fmt", "dtype"), FP8, ids=["e4m3fn", "e5m2"])
def test_fp8_matches_torch_at_every_tie_and_boundary(fmt, dtype):
    x = critical_points(fmt)
    ref = x.to(dtype)
    assert bool(same_bits(minifloat_quantize(x, fmt), ref.float()).all())
    assert torch.equal(minifloat_encode(x, fmt), ref.view(torch.uint8))


@pytest.mark.parametrize(("fmt", "dtype"), FP8, ids=["e4m3fn", "e5m2"])
def test_fp8_decode_matches_torch_for_all_256_patterns(fmt, dtype):
    codes = torch.arange(256, dtype=torch.uint8)
    ref = codes.view(dtype).float()
    assert bool(same_bits(minifloat_decode(codes, fmt), ref).all())


def test_fp8_overflow_rules_of_torch():
    """What torch does (checked here so a change in torch shows up): e4m3fn saturates,
    even +inf; e5m2 rounds to nearest even and overflows to inf from 61440 on."""
    x = torch.tensor([464.0, 479.9, 480.0, 1e6, torch.inf, -torch.inf])
    assert x.to(torch.float8_e4m3fn).float().tolist() == [448.0] * 5 + [-448.0]
    y = torch.tensor([61439.0, 61440.0, torch.inf])
    assert y.to(torch.float8_e5m2).float().tolist() == [57344.0, torch.inf, torch.inf]


def test_non_saturating_e4m3_overflows_to_nan():
    fmt = dataclasses.replace(FP8_E4M3, saturate=False)
    out = minifloat_quantize(torch.tensor([464.0, 464.1, 480.0, torch.inf, -1e9]), fmt)
    assert out[0].item() == 448.0  # a tie rounds to the even mantissa 1.110₂ · 2^8
    assert bool(out[1:].isnan().all())


def test_saturating_e5m2_clamps():
    fmt = dataclasses.replace(FP8_E5M2, saturate=True)
    out = minifloat_quantize(torch.tensor([61440.0, torch.inf, -1e9]), fmt)
    assert out.tolist() == [57344.0, 57344.0, -57344.0]


@pytest.mark.parametrize(
    ("fmt", "dtype"),
    [(MinifloatFormat(5, 10, has_inf=True, has_nan=True, saturate=False), torch.float16),
     (MinifloatFormat(8, 7, has_inf=True, has_nan=True, saturate=False), torch.bfloat16)],
    ids=["float16", "bfloat16"],
)
def test_generic_format_reproduces_ieee_half_and_bfloat16(fmt, dtype):
    x = torch.cat([random_fp32_patterns(2**19, seed=2), critical_points(fmt)[:200_000]])
    ref = x.to(dtype)
    assert bool(same_bits(minifloat_quantize(x, fmt), ref.float()).all())
    num = ~x.isnan()  # torch keeps NaN payload bits; we encode one canonical NaN
    assert torch.equal(minifloat_encode(x[num], fmt).to(torch.int16), ref[num].view(torch.int16))


# OCP MX spec v1.0, section 5.3: the element formats' parameters.
@pytest.mark.parametrize(
    ("fmt", "bias", "max_normal", "min_normal", "min_sub"),
    [(FP8_E4M3, 7, 448.0, 2.0**-6, 2.0**-9), (FP8_E5M2, 15, 57344.0, 2.0**-14, 2.0**-16),
     (FP6_E3M2, 3, 28.0, 0.25, 0.0625), (FP6_E2M3, 1, 7.5, 1.0, 0.125),
     (FP4_E2M1, 1, 6.0, 1.0, 0.5)],
)
def test_format_constants_match_the_ocp_spec(fmt, bias, max_normal, min_normal, min_sub):
    assert fmt.beta == bias
    assert fmt.max_finite == max_normal
    assert 2.0**fmt.emin == min_normal
    assert fmt.min_subnormal == min_sub


def test_fp4_grid_is_the_spec_table():
    assert FP4_E2M1.grid().tolist() == [-6, -4, -3, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 3, 4, 6]


def test_fp6_and_fp4_have_every_pattern_finite_and_count():
    for fmt, n in ((FP6_E3M2, 64), (FP6_E2M3, 64), (FP4_E2M1, 16)):
        v = fmt.values()
        assert v.numel() == n and bool(torch.isfinite(v).all())
        assert fmt.grid().numel() == n - 1  # ±0 merge


def test_fp4_rounding_by_hand():
    x = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 100.0, -0.26, -0.0])
    # ties to even mantissa: 0.25→0, 0.75→1 (1.0 = 1.0₂), 1.25→1, 1.75→2, 2.5→2, 3.5→4, 5→4
    expect = [0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 6.0, -0.5, -0.0]
    out = minifloat_quantize(x, FP4_E2M1)
    assert out.tolist() == expect
    assert torch.signbit(out[-1])


def test_encode_decode_round_trip_every_format():
    for fmt in (FP8_E4M3, FP8_E5M2, FP6_E3M2, FP6_E2M3, FP4_E2M1):
        codes = torch.arange(2**fmt.total_bits)
        vals = minifloat_decode(codes, fmt)
        back = minifloat_encode(vals, fmt)
        finite = torch.isfinite(vals)
        assert torch.equal(back[finite].long(), codes[finite])


def test_bad_input():
    with pytest.raises(ValueError, match="exp_bits"):
        MinifloatFormat(0, 3)
    with pytest.raises(ValueError, match="saturate"):
        MinifloatFormat(2, 1, saturate=False)
    with pytest.raises(ValueError, match="has_inf"):
        MinifloatFormat(5, 2, has_inf=True)
    with pytest.raises(TypeError, match="floating"):
        minifloat_quantize(torch.tensor([1, 2]), FP8_E4M3)
    with pytest.raises(ValueError, match="NaN"):
        minifloat_encode(torch.tensor([torch.nan]), FP4_E2M1)
    with pytest.raises(ValueError, match="codes"):
        minifloat_decode(torch.tensor([16]), FP4_E2M1)
