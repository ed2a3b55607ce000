"""Companding: µ-law and A-law compressors, companded quantizers, and the G.711 codec.

References: ITU-T Recommendation G.711, "Pulse code modulation (PCM) of voice
frequencies" (1972; µ = 255, A = 87.6); Smith, "Instantaneous companding of quantized
signals", Bell System Technical Journal 36 (1957) for the µ-law curve; the reference C
implementation ``g711.c`` (Sun Microsystems, public domain) for the 8-bit code.

A compander quantizes ``F(x)`` uniformly instead of ``x``: small amplitudes get fine steps,
large ones coarse steps, so the *relative* error is roughly constant over a wide range.
For ``|x| ≤ 1``:

    µ-law   F_µ(x) = sgn(x) · ln(1 + µ|x|) / ln(1 + µ)
            F_µ⁻¹(y) = sgn(y) · ((1 + µ)^|y| − 1) / µ

    A-law   F_A(x) = sgn(x) · A|x| / (1 + ln A)                |x| < 1/A
                   = sgn(x) · (1 + ln(A|x|)) / (1 + ln A)       1/A ≤ |x| ≤ 1
            F_A⁻¹(y) = sgn(y) · |y|(1 + ln A) / A               |y| < 1/(1 + ln A)
                     = sgn(y) · exp(|y|(1 + ln A) − 1) / A      otherwise

A companded ``b``-bit quantizer is ``x̂ = x_max · F⁻¹(Q_b(F(x / x_max)))`` with ``Q_b`` the
symmetric uniform quantizer of the core (narrow range, codes ``±(2^(b−1) − 1)``).

**G.711** does not evaluate logarithms: it approximates the curves by 8 straight segments
per sign, each twice as wide as the last, with 16 steps in each. An 8-bit codeword is
``sign | 3-bit segment | 4-bit step``, stored inverted (µ-law: all bits; A-law: even bits,
XOR 0x55). Silence encodes as 0xFF (µ-law) and 0xD5 (A-law). :func:`mulaw_encode` etc.
work on 16-bit linear PCM and agree bit for bit with ``g711.c`` (and Python's ``audioop``).

Glossary: ``µ``, ``A`` compression constants; ``F`` compressor, ``F⁻¹`` expander;
``x_max`` the full-scale amplitude; ``Q_b`` uniform quantizer with ``b`` bits.

>>> round(mu_law_compress(torch.tensor(0.01)).item(), 4)   # ln(3.55)/ln(256)
0.2285
"""

from __future__ import annotations

import math

import torch

from inwhale.core.affine import fake_quantize
from inwhale.core.checks import check_bits, check_codes, check_tensor
from inwhale.core.qparams import qparams_from_range

MU_G711 = 255.0
"""µ of North-American / Japanese G.711."""
A_G711 = 87.6
"""A of European G.711."""


def mu_law_compress(x: torch.Tensor, mu: float = MU_G711) -> torch.Tensor:
    """``F_µ(x) = sgn(x) ln(1 + µ|x|) / ln(1 + µ)`` for ``|x| ≤ 1`` (values beyond clip)."""
    x = check_tensor(x, "x", allow_empty=True).clamp(-1, 1)
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


def mu_law_expand(y: torch.Tensor, mu: float = MU_G711) -> torch.Tensor:
    """``F_µ⁻¹(y) = sgn(y) ((1 + µ)^|y| − 1) / µ``."""
    check_tensor(y, "y", allow_empty=True)
    return torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu


def a_law_compress(x: torch.Tensor, A: float = A_G711) -> torch.Tensor:
    """``F_A(x)``: linear below ``1/A``, logarithmic above (see module docstring)."""
    a = check_tensor(x, "x", allow_empty=True).clamp(-1, 1).abs()
    d = 1 + math.log(A)
    y = torch.where(a < 1 / A, A * a / d, (1 + torch.log(torch.clamp(A * a, min=1.0))) / d)
    return torch.sign(x) * y


def a_law_expand(y: torch.Tensor, A: float = A_G711) -> torch.Tensor:
    """``F_A⁻¹(y)``, the inverse of :func:`a_law_compress`."""
    b = check_tensor(y, "y", allow_empty=True).abs()
    d = 1 + math.log(A)
    x = torch.where(b < 1 / d, b * d / A, torch.exp(b * d - 1) / A)
    return torch.sign(y) * x


def companded_fake_quantize(x: torch.Tensor, bits: int = 8, law: str = "mu",
                            x_max: float | None = None) -> torch.Tensor:
    """``x_max · F⁻¹(Q_b(F(x / x_max)))`` with the G.711 constant of ``law`` ("mu" or "a").

    Args:
        x: finite floating tensor.
        bits: bits of the uniform quantizer in the compressed domain.
        law: ``"mu"`` (µ = 255) or ``"a"`` (A = 87.6).
        x_max: full scale; default ``max|x|``.

    >>> companded_fake_quantize(torch.tensor([0.001, 0.5, 1.0]), bits=4, law="mu")
    tensor([0.0000, 0.4507, 1.0000])
    """
    laws = {"mu": (mu_law_compress, mu_law_expand), "a": (a_law_compress, a_law_expand)}
    if law not in laws:
        raise ValueError(f"law must be 'mu' or 'a', got {law!r}")
    compress, expand = laws[law]
    check_tensor(x, "x")
    if check_bits(bits) < 2:
        raise ValueError("bits must be at least 2 (a symmetric narrow-range grid of 1 bit has "
                         "the single level 0)")
    scale = float(x.abs().max()) if x_max is None else float(x_max)
    if scale <= 0:
        raise ValueError("x_max must be positive (got an all-zero x or x_max <= 0)")
    qp = qparams_from_range(-1.0, 1.0, bits=bits, symmetric=True, narrow_range=True)
    xc = x.double() if x.dtype == torch.float64 else x.float()
    y = fake_quantize(compress(xc / scale), qp)
    return (expand(y) * scale).to(x.dtype)


# ---------------------------------------------------------------------------------------
# G.711 8-bit codec (segmented approximation), integer arithmetic as in g711.c
# ---------------------------------------------------------------------------------------

_MU_BIAS, _MU_CLIP = 0x84, 8159
_SEG_UEND = torch.tensor([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_SEG_AEND = torch.tensor([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _check_pcm(pcm: torch.Tensor) -> torch.Tensor:
    return check_codes(pcm, "pcm", -32768, 32767).long()


def _segment(v: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """First segment whose end is ≥ v (8 when beyond the last one)."""
    return torch.searchsorted(ends.to(v.device), v.contiguous(), right=False)


def mulaw_encode(pcm: torch.Tensor) -> torch.Tensor:
    """16-bit linear PCM → 8-bit G.711 µ-law codewords (uint8).

    >>> mulaw_encode(torch.tensor([0, 1000, -1000, 32767])).tolist()   # 0 → 0xFF
    [255, 206, 78, 128]
    """
    p = _check_pcm(pcm) >> 2  # 14-bit
    mask = torch.where(p < 0, 0x7F, 0xFF)
    v = p.abs().clamp(max=_MU_CLIP) + (_MU_BIAS >> 2)
    seg = _segment(v, _SEG_UEND)
    u = (seg << 4) | ((v >> (seg + 1)) & 0xF)
    u = torch.where(seg >= 8, 0x7F, u)
    return (u ^ mask).to(torch.uint8)


def mulaw_decode(code: torch.Tensor) -> torch.Tensor:
    """8-bit µ-law codewords → 16-bit linear PCM (int16). 0xFF → 0, 0x80 → 32124.

    >>> mulaw_decode(torch.tensor([0xFF, 0x80, 0x00, 0xCE], dtype=torch.uint8)).tolist()
    [0, 32124, -32124, 988]
    """
    u = ~check_codes(code, "code", 0, 255).long() & 0xFF
    t = (((u & 0x0F) << 3) + _MU_BIAS) << ((u & 0x70) >> 4)
    return torch.where((u & 0x80) != 0, _MU_BIAS - t, t - _MU_BIAS).to(torch.int16)


def alaw_encode(pcm: torch.Tensor) -> torch.Tensor:
    """16-bit linear PCM → 8-bit G.711 A-law codewords (uint8). 0 → 0xD5.

    >>> alaw_encode(torch.tensor([0, 1000, -1000, 32767])).tolist()
    [213, 250, 122, 170]
    """
    p = _check_pcm(pcm) >> 3  # 13-bit
    mask = torch.where(p >= 0, 0xD5, 0x55)
    v = torch.where(p >= 0, p, -p - 1)
    seg = _segment(v, _SEG_AEND)
    step = torch.where(seg < 2, v >> 1, v >> seg.clamp(max=7)) & 0xF
    a = torch.where(seg >= 8, 0x7F, (seg << 4) | step)
    return (a ^ mask).to(torch.uint8)


def alaw_decode(code: torch.Tensor) -> torch.Tensor:
    """8-bit A-law codewords → 16-bit linear PCM (int16). 0xD5 → 8, 0xAA → 32256.

    >>> alaw_decode(torch.tensor([0xD5, 0x55, 0xAA], dtype=torch.uint8)).tolist()
    [8, -8, 32256]
    """
    a = check_codes(code, "code", 0, 255).long() ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = torch.where(seg == 0, t + 8, (t + 0x108) << (seg - 1).clamp(min=0))
    return torch.where((a & 0x80) != 0, t, -t).to(torch.int16)


__all__ = [
    "A_G711",
    "MU_G711",
    "a_law_compress",
    "a_law_expand",
    "alaw_decode",
    "alaw_encode",
    "companded_fake_quantize",
    "mu_law_compress",
    "mu_law_expand",
    "mulaw_decode",
    "mulaw_encode",
]
