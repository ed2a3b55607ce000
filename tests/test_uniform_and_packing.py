"""Quantizer classes, packing and metrics."""

import math

import pytest
import torch

import inwhale
from inwhale import (
    AffineUniformQuantizer,
    AsymmetricUniformQuantizer,
    DeadZoneQuantizer,
    MidRiseQuantizer,
    PerAxis,
    SymmetricUniformQuantizer,
    choose_qparams,
    quantize,
)
from inwhale.observers import MinMaxObserver


def test_symmetric_and_asymmetric_agree_with_the_functional_core():
    torch.manual_seed(0)
    x = torch.randn(1000)
    for cls, sym in ((SymmetricUniformQuantizer, True), (AsymmetricUniformQuantizer, False)):
        q = cls(bits=6)
        assert torch.equal(q.fake_quantize(x), inwhale.fake_quantize(
            x, choose_qparams(x, bits=6, symmetric=sym)))


def test_observer_and_freeze():
    q = SymmetricUniformQuantizer(bits=8, observer=MinMaxObserver())
    q.quantize(torch.tensor([-1.0, 1.0]))
    q.quantize(torch.tensor([-4.0, 2.0]))  # the observer keeps the running range
    assert float(q.qparams.scale) == pytest.approx(4.0 / 127.5)
    q.freeze()
    q.quantize(torch.tensor([100.0]))
    assert float(q.qparams.scale) == pytest.approx(4.0 / 127.5)


def test_mid_rise_levels():
    q = MidRiseQuantizer(bits=2)
    x = torch.linspace(-1, 1, 1001)
    levels = sorted(set(q.fake_quantize(x).tolist()))
    assert levels == pytest.approx([-1.0, -1 / 3, 1 / 3, 1.0])  # ±Δ/2, ±3Δ/2 with Δ = 2/3
    assert 0.0 not in levels


def test_dead_zone_widens_the_zero_bin():
    x = torch.linspace(-1, 1, 2001)
    plain = SymmetricUniformQuantizer(bits=4, narrow_range=True)
    dz = DeadZoneQuantizer(bits=4, rho=0.2, narrow_range=True)
    zeros_plain = int((plain.quantize(x) == 0).sum())
    zeros_dz = int((dz.quantize(x) == 0).sum())
    # zero bin width: 1 step for plain rounding, 2(1 - rho) = 1.6 steps for the dead zone
    assert zeros_dz / zeros_plain == pytest.approx(1.6, rel=0.02)


def test_signed_unsigned_narrow():
    x = torch.tensor([-1.0, 1.0])
    q = AffineUniformQuantizer(bits=8, symmetric=True, narrow_range=True)
    assert q.quantize(x).tolist() == [-127, 127]
    u = AffineUniformQuantizer(bits=8, symmetric=True, signed=False)
    assert u.quantize(x).dtype == torch.uint8
    assert int(u.qparams.zero_point) == 128


def test_quantizer_errors():
    with pytest.raises(ValueError, match="no parameters yet"):
        SymmetricUniformQuantizer().dequantize(torch.tensor([1], dtype=torch.int8))
    with pytest.raises(ValueError, match="freeze"):
        SymmetricUniformQuantizer().freeze()


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_pack_codes_round_trip_and_size(bits):
    g = torch.Generator().manual_seed(bits)
    codes = torch.randint(0, 2**bits, (1001,), generator=g, dtype=torch.uint8)
    packed = inwhale.pack_codes(codes, bits)
    assert packed.dtype == torch.uint8
    assert packed.numel() == math.ceil(1001 * bits / 8)
    assert torch.equal(inwhale.unpack_codes(packed, bits, 1001), codes)


def test_pack_layout_by_hand():
    assert inwhale.pack_codes(torch.tensor([1, 0, 1, 1, 0, 0, 0, 1]), 1).tolist() == [0b10001101]
    assert inwhale.pack_codes(torch.tensor([3, 2, 1, 0]), 2).tolist() == [0b00011011]


def test_packed_tensor_bytes():
    torch.manual_seed(0)
    w = torch.randn(64, 576)
    qp = choose_qparams(w, bits=4, symmetric=False, granularity=inwhale.PerGroup(128))
    p = inwhale.pack(quantize(w, qp), qp)
    # codes: 64·576·4/8 = 18432 bytes; scales: 64·5 fp16 = 640; zero points: 320 · 4 bits = 160
    assert p.nbytes == 18432 + 640 + 160
    assert p.bits_per_value == pytest.approx(8 * p.nbytes / w.numel())
    assert torch.equal(inwhale.unpack(p), quantize(w, qp))
    sym = choose_qparams(w, bits=8, symmetric=True, granularity=PerAxis(0))
    assert inwhale.pack(quantize(w, sym), sym).nbytes == 64 * 576 + 64 * 2  # no zero points


def test_pack_errors():
    with pytest.raises(ValueError, match="bits must be one of"):
        inwhale.pack_codes(torch.tensor([1]), 3)
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 3\]"):
        inwhale.pack_codes(torch.tensor([4]), 2)
    with pytest.raises(TypeError, match="uint8"):
        inwhale.unpack_codes(torch.tensor([1]), 2, 1)


def test_metrics_by_hand():
    x = torch.tensor([1.0, -1.0, 2.0, -2.0])
    xhat = torch.tensor([1.1, -1.0, 2.0, -2.2])
    assert inwhale.mse(x, xhat) == pytest.approx((0.01 + 0.04) / 4)
    assert inwhale.sqnr_db(x, xhat) == pytest.approx(10 * math.log10(2.5 / 0.0125))
    assert inwhale.max_error(x, xhat) == pytest.approx(0.2)
    assert inwhale.sqnr_db(x, x) == math.inf
    with pytest.raises(ValueError, match="same shape"):
        inwhale.mse(x, xhat[:2])


def test_sqnr_of_a_full_scale_sine_follows_6_02n_plus_1_76():
    t = torch.arange(1_000_000, dtype=torch.float64)
    x = torch.sin(2 * math.pi * t * 0.001234567)  # not a rational multiple of the sampling
    for n in (8, 10, 12):
        # mid-rise: 2^n levels with the outermost at ±1 (a full-scale sine); the law
        # 6.02·n + 1.76 dB comes from the uniform-noise model, exact as n grows.
        xhat = MidRiseQuantizer(bits=n).fake_quantize(x)
        law = 6.02 * n + 1.76
        assert inwhale.sqnr_db(x, xhat) == pytest.approx(law, abs=0.15)
