"""µ-law / A-law closed forms by hand, exact round trips, and G.711 against ``audioop``."""

import math
import warnings

import pytest
import torch
from _reference import require

from inwhale.formats.companding import (
    a_law_compress,
    a_law_expand,
    alaw_decode,
    alaw_encode,
    companded_fake_quantize,
    mu_law_compress,
    mu_law_expand,
    mulaw_decode,
    mulaw_encode,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = require("audioop")  # CPython's C codec, removed in 3.13


def test_mu_law_hand_values():
    x = torch.tensor([0.0, 1.0, -1.0, 0.5, 1 / 255], dtype=torch.float64)
    y = mu_law_compress(x)
    hand = [0.0, 1.0, -1.0, math.log(128.5) / math.log(256), math.log(2) / math.log(256)]
    assert y.tolist() == pytest.approx(hand, abs=1e-15)


def test_a_law_hand_values_both_pieces():
    A, d = 87.6, 1 + math.log(87.6)
    x = torch.tensor([0.0, 0.005, 1 / 87.6, 0.5, -1.0], dtype=torch.float64)
    hand = [0.0, A * 0.005 / d, 1 / d, (1 + math.log(A * 0.5)) / d, -1.0]
    assert a_law_compress(x).tolist() == pytest.approx(hand, abs=1e-15)


@pytest.mark.parametrize(("fwd", "inv"), [(mu_law_compress, mu_law_expand),
                                           (a_law_compress, a_law_expand)], ids=["mu", "A"])
def test_compander_round_trip_is_exact(fwd, inv):
    x = torch.linspace(-1, 1, 100_001, dtype=torch.float64)
    assert torch.allclose(inv(fwd(x)), x, rtol=0, atol=1e-14)


def test_companded_quantizer_keeps_relative_error_flat():
    """Over 2 decades of amplitude 8-bit µ-law and A-law keep the mean relative error
    within a factor 2 (≈ 1–2 %); a uniform 8-bit grid is 10× worse at the small end."""
    from inwhale.core.affine import fake_quantize
    from inwhale.core.qparams import qparams_from_range

    amps = torch.tensor([1e-2, 1e-1, 1.0], dtype=torch.float64)
    x = amps[:, None] * torch.linspace(0.5, 1.0, 1001, dtype=torch.float64)[None]
    rel = lambda xh: ((xh - x).abs() / x).mean(dim=1)
    for law in ("mu", "a"):
        r = rel(companded_fake_quantize(x, bits=8, law=law, x_max=1.0))
        assert float(r.max() / r.min()) < 2 and float(r.max()) < 0.02
    qp = qparams_from_range(-1.0, 1.0, bits=8, symmetric=True, narrow_range=True)
    uni = rel(fake_quantize(x, qp))
    assert float(uni[0]) > 10 * float(r[0])


def test_companded_quantizer_reconstructs_levels_exactly():
    # the 8-bit compressed grid: 255 levels; its expanded values are fixed points
    from inwhale.core.qparams import qparams_from_range

    qp = qparams_from_range(-1.0, 1.0, bits=8, symmetric=True, narrow_range=True)
    y = torch.arange(-127, 128, dtype=torch.float64) * qp.scale.double()
    levels = mu_law_expand(y)
    assert torch.allclose(companded_fake_quantize(levels, 8, "mu", x_max=1.0), levels,
                          rtol=0, atol=1e-12)


ALL_PCM = torch.arange(-32768, 32768)
ALL_CODES = torch.arange(256, dtype=torch.uint8)


def _audioop(fn, data: torch.Tensor, out_dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        raw = fn(data.numpy().tobytes(), 2)
    return torch.frombuffer(bytearray(raw), dtype=out_dtype)


def test_mulaw_encode_matches_audioop_on_all_16bit_inputs():
    ref = _audioop(audioop.lin2ulaw, ALL_PCM.to(torch.int16), torch.uint8)
    assert torch.equal(mulaw_encode(ALL_PCM), ref)


def test_alaw_encode_matches_audioop_on_all_16bit_inputs():
    ref = _audioop(audioop.lin2alaw, ALL_PCM.to(torch.int16), torch.uint8)
    assert torch.equal(alaw_encode(ALL_PCM), ref)


def test_decoders_match_audioop_on_all_codes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        u = audioop.ulaw2lin(bytes(ALL_CODES.numpy()), 2)
        a = audioop.alaw2lin(bytes(ALL_CODES.numpy()), 2)
    assert torch.equal(mulaw_decode(ALL_CODES), torch.frombuffer(bytearray(u), dtype=torch.int16))
    assert torch.equal(alaw_decode(ALL_CODES), torch.frombuffer(bytearray(a), dtype=torch.int16))


def test_g711_known_codewords():
    # G.711 / g711.c: silence is 0xFF (µ) and 0xD5 (A); full scale decodes to 32124 / 32256
    assert mulaw_encode(torch.tensor([0])).item() == 0xFF
    assert alaw_encode(torch.tensor([0])).item() == 0xD5
    assert mulaw_decode(torch.tensor([0x80, 0x00], dtype=torch.uint8)).tolist() == [32124, -32124]
    assert alaw_decode(torch.tensor([0xAA, 0x2A], dtype=torch.uint8)).tolist() == [32256, -32256]


def test_g711_is_monotone_and_roundtrips_its_levels():
    dec = mulaw_decode(ALL_CODES).long()
    assert torch.equal(mulaw_decode(mulaw_encode(dec)).long(), dec)
    dec_a = alaw_decode(ALL_CODES).long()
    assert torch.equal(alaw_decode(alaw_encode(dec_a)).long(), dec_a)
    lin = mulaw_decode(mulaw_encode(ALL_PCM)).long()
    assert bool((lin[1:] >= lin[:-1]).all())


def test_bad_input():
    with pytest.raises(ValueError, match="law"):
        companded_fake_quantize(torch.ones(3), law="b")
    with pytest.raises(TypeError, match="pcm"):
        mulaw_encode(torch.ones(3))
    with pytest.raises(ValueError, match="pcm"):
        alaw_encode(torch.tensor([40000]))
    with pytest.raises(ValueError, match="x_max"):
        companded_fake_quantize(torch.zeros(3))
