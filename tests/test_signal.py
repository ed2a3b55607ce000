"""Signal-processing quantizers against formulas, exact hand results and (for IMA ADPCM) the
standard library's ``audioop`` codec, bit for bit."""

import itertools
import math

import pytest
import torch
from _reference import require

from inwhale import fake_quantize, qparams_from_range, quantize
from inwhale.signal import (
    FLOYD_STEINBERG,
    INDEX_TABLE,
    STEP_TABLE,
    delta_demodulate,
    delta_modulate,
    dithered_quantize,
    dpcm_decode,
    dpcm_encode,
    error_diffusion,
    ima_adpcm_decode,
    ima_adpcm_encode,
    lpc,
    noise_shaped_quantize,
    noise_transfer_function,
    shaping_taps,
    theoretical_error_power,
)
from inwhale.signal._scalar import scalar_codec


def sym_qp(bits, amax=1.0):
    return qparams_from_range(
        torch.tensor(-amax), torch.tensor(amax), bits=bits, symmetric=True, narrow_range=True
    )


def test_scalar_codec_matches_core_bit_for_bit():
    qp = sym_qp(5, 3.0)
    x = 4 * torch.randn(100_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    q, dq = scalar_codec(qp)
    codes = torch.tensor([q(v) for v in x.tolist()])
    assert torch.equal(codes, quantize(x, qp).long())
    assert torch.equal(
        torch.tensor([dq(c) for c in codes.tolist()], dtype=torch.float64), fake_quantize(x, qp)
    )


@pytest.mark.parametrize(
    ("kind", "subtractive"), [("rpdf", True), ("tpdf", True), ("rpdf", False), ("tpdf", False)]
)
def test_dither_error_power_matches_formula(kind, subtractive):
    qp = sym_qp(8)
    step = float(qp.scale)
    g = torch.Generator().manual_seed(0)
    x = 0.5 * torch.sin(torch.linspace(0, 200, 200_000, dtype=torch.float64))
    err = dithered_quantize(x, qp, kind, subtractive, generator=g) - x
    assert float((err**2).mean()) == pytest.approx(
        theoretical_error_power(step, kind, subtractive), rel=0.03
    )


def test_tpdf_moments_do_not_depend_on_the_signal_but_rpdf_power_does():
    qp = sym_qp(8)
    step = float(qp.scale)
    g = torch.Generator().manual_seed(1)
    for offset in (0.0, 0.25, 0.5):  # constant input at a fraction of a step
        x = torch.full((100_000,), (10 + offset) * step, dtype=torch.float64)
        e_t = dithered_quantize(x, qp, "tpdf", generator=g) - x
        assert abs(float(e_t.mean())) < 0.01 * step
        assert float((e_t**2).mean()) == pytest.approx(step**2 / 4, rel=0.03)
    x0 = torch.full((100_000,), 10 * step, dtype=torch.float64)
    xh = torch.full((100_000,), 10.5 * step, dtype=torch.float64)
    p0 = float(((dithered_quantize(x0, qp, "rpdf", generator=g) - x0) ** 2).mean())
    ph = float(((dithered_quantize(xh, qp, "rpdf", generator=g) - xh) ** 2).mean())
    assert ph > 2 * p0  # noise modulation: RPDF power swings with the input (1/12 vs 1/4 step²)
    with pytest.raises(ValueError, match="kind"):
        dithered_quantize(x0, qp, "gauss")


@pytest.mark.parametrize("order", [1, 2])
def test_noise_transfer_function_closed_form(order):
    w = torch.linspace(0, math.pi, 257, dtype=torch.float64)
    mag2 = noise_transfer_function(shaping_taps(order), w).abs() ** 2
    assert torch.allclose(mag2, (2 * torch.sin(w / 2)) ** (2 * order), atol=1e-12)


@pytest.mark.parametrize("order", [1, 2])
def test_noise_shaping_moves_error_out_of_low_band(order):
    qp = sym_qp(6)
    g = torch.Generator().manual_seed(0)
    n = 16384
    x = 0.4 * torch.sin(2 * math.pi * 0.01 * torch.arange(n)) + 0.05 * torch.randn(n, generator=g)
    x = x.double()
    plain = (fake_quantize(x, qp) - x).numpy()
    shaped = (noise_shaped_quantize(x, qp, shaping_taps(order)) - x).numpy()
    import numpy as np

    P = lambda e: np.abs(np.fft.rfft(e)) ** 2 / n
    low = slice(1, n // 32)  # ω < π/16
    assert P(shaped)[low].mean() < 0.1 * P(plain)[low].mean()
    total_gain = sum(c**2 for c in (1, *(-h for h in shaping_taps(order))))  # 2 or 6
    assert float((shaped**2).mean()) == pytest.approx(
        total_gain * float(qp.scale) ** 2 / 12, rel=0.1
    )


def test_error_diffusion_preserves_local_mean_on_photo():
    from inwhale.data.images import china_photo

    img = china_photo(gray=True)[100:164, 200:296]  # (64, 96) crop of the real photo
    qp = qparams_from_range(torch.tensor(0.0), torch.tensor(1.0), bits=1, signed=False)
    out = error_diffusion(img, qp)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    blur = lambda t: torch.nn.functional.avg_pool2d(t[None, None], 8)[0, 0]
    diff_ed = float((blur(out) - blur(img)).abs().mean())
    diff_threshold = float((blur(fake_quantize(img, qp)) - blur(img)).abs().mean())
    assert diff_ed < 0.03 and diff_ed < 0.25 * diff_threshold
    assert sum(w for *_, w in FLOYD_STEINBERG) == 1.0


def test_delta_modulation_granular_and_slope_overload():
    step = 0.1
    slow = torch.sin(torch.linspace(0, 2 * math.pi, 400, dtype=torch.float64))  # |Δx| ≤ 0.016
    rec = delta_demodulate(delta_modulate(slow, step), step)
    assert float((rec - slow)[20:].abs().max()) <= step + 1e-12  # only granular noise
    ramp = 0.3 * torch.arange(100, dtype=torch.float64)  # slope 3δ per sample
    err = ramp - delta_demodulate(delta_modulate(ramp, step), step)
    # the decoder climbs δ per sample while the ramp climbs 3δ: the error grows by 2δ each step
    assert torch.allclose(err, 0.2 * torch.arange(100, dtype=torch.float64) - 0.1, atol=1e-9)


def test_dpcm_closed_loop_exact_decoder_and_bounded_error():
    qp = sym_qp(4, 0.5)
    g = torch.Generator().manual_seed(0)
    x = torch.cumsum(0.05 * torch.randn(3000, generator=g, dtype=torch.float64), 0)  # random walk
    for a in (torch.tensor([1.0]), torch.tensor([1.8, -0.81])):
        codes, xhat = dpcm_encode(x, a, qp)
        assert torch.equal(dpcm_decode(codes, a, qp), xhat)
    codes, xhat = dpcm_encode(x, torch.tensor([1.0]), qp)
    assert float((x - xhat).abs().max()) <= float(qp.scale) / 2 + 1e-12  # never accumulates


def test_lpc_recovers_ar2_and_prediction_gain():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(30_000, generator=g, dtype=torch.float64).tolist()
    xs = [0.0, 0.0]
    for n in range(2, 30_000):
        xs.append(1.2 * xs[-1] - 0.5 * xs[-2] + w[n])
    x = torch.tensor(xs, dtype=torch.float64)
    a = lpc(x, 2)
    assert torch.allclose(a, torch.tensor([1.2, -0.5], dtype=torch.float64), atol=0.02)
    r = x[2:] - a[0] * x[1:-1] - a[1] * x[:-2]
    assert float(r.var()) == pytest.approx(1.0, rel=0.03)  # residual = the driving white noise


def test_ima_tables_known_values():
    assert len(STEP_TABLE) == 89 and STEP_TABLE[:10] == (7, 8, 9, 10, 11, 12, 13, 14, 16, 17)
    assert STEP_TABLE[-1] == 32767 and all(b > a for a, b in itertools.pairwise(STEP_TABLE))
    assert INDEX_TABLE[:8] == (-1, -1, -1, -1, 2, 4, 6, 8) and INDEX_TABLE[8:] == INDEX_TABLE[:8]


def _test_signal(n=4000):
    t = torch.arange(n, dtype=torch.float64) / 8000
    chirp = 12000 * torch.sin(2 * math.pi * (200 * t + 1500 * t**2))
    noise = 800 * torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return (chirp + noise).round().clamp(-32768, 32767).to(torch.int16)


def test_ima_adpcm_bit_exact_with_audioop():
    audioop = require("audioop")
    x = _test_signal()
    ref_bytes, _ = audioop.lin2adpcm(x.numpy().tobytes(), 2, None)
    ref = torch.tensor(list(ref_bytes), dtype=torch.int64)
    ref_codes = torch.stack([ref >> 4, ref & 15], 1).flatten()  # first sample in the high nibble
    codes = ima_adpcm_encode(x)
    assert torch.equal(codes.long(), ref_codes)
    dec_ref, _ = audioop.adpcm2lin(ref_bytes, 2, None)
    import numpy as np

    assert torch.equal(
        ima_adpcm_decode(codes), torch.from_numpy(np.frombuffer(dec_ref, dtype=np.int16).copy())
    )


def test_ima_adpcm_round_trip_snr_and_state_machine():
    x = _test_signal()
    y = ima_adpcm_decode(ima_adpcm_encode(x))
    snr = 10 * math.log10(
        float((x.double() ** 2).mean()) / float(((x.double() - y.double()) ** 2).mean())
    )
    assert snr > 20
    with pytest.raises(TypeError, match="samples must be an integer tensor"):
        ima_adpcm_encode(torch.tensor([0.5]))
