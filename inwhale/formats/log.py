"""Logarithmic (power-of-two) quantization, and the shift-only arithmetic it allows.

Reference: Miyashita, Lee, Murmann, "Convolutional Neural Networks using Logarithmic Data
Representation" (2016); Zhou et al., "Incremental Network Quantization" (ICLR 2017) for
power-of-two weights with a zero code.

A ``b``-bit power-of-two (PoT) code is a sign bit plus a ``(b−1)``-bit exponent index
``k ∈ {0, …, 2^(b−1) − 1}``; ``k = 0`` means zero and ``k ≥ 1`` means ``2^(e_min + k − 1)``:

    levels = {0} ∪ {±2^e : e = e_min, …, e_max},   e_min = e_max − (2^(b−1) − 2)

The top exponent ``e_max`` is set from the tensor, ``e_max = ⌊log₂ max|x|⌉`` (rounded with
the same rule as the values). A value is quantized by rounding its exponent,

    Q(x) = sign(x) · 2^clamp(r(log₂|x|), e_min, e_max),     and 0 if |x| < 2^(e_min − 1)

where ``r`` rounds in the **log domain** (``round(log₂|x|)``, threshold at the geometric
mean ``√2·2^e``, as Miyashita et al.) or the **linear domain** (threshold at the arithmetic
mean ``1.5·2^e``, the nearest level, which minimises the squared error). The relative step
is constant (a factor 2), so small values keep their relative precision.

Why hardware likes it: multiplying an integer ``a`` by ``±2^e`` is a shift. A dot product
with PoT weights needs no multiplier at all:

    Σ_i a_i · s_i · 2^(e_i) = 2^(e_min) · Σ_i s_i · (a_i << (e_i − e_min))

with integer activations ``a_i``, signs ``s_i ∈ {−1, 0, 1}`` and only left shifts of
non-negative amounts; the one scaling by ``2^(e_min)`` is applied once at the end (itself a
shift for a fixed-point output). :func:`pot_matmul_shift` computes exactly this.

Glossary: ``b`` bits, ``k`` exponent index, ``e`` exponent, ``e_min``/``e_max`` its range,
``s`` sign, ``a`` integer activation, ``r`` the exponent rounding rule.

>>> pot_fake_quantize(torch.tensor([0.9, -0.3, 0.04, 0.001]), bits=4)
tensor([ 1.0000, -0.2500,  0.0312,  0.0000])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inwhale.core.checks import check_bits, check_codes, check_tensor


def _round_exponent(a: torch.Tensor, log_domain: bool) -> torch.Tensor:
    """Exponent of the nearest power of two to ``a > 0`` (int64)."""
    _, ex = torch.frexp(a)  # a = f · 2^ex, f ∈ [0.5, 1): floor(log2 a) = ex − 1
    fl = ex.to(torch.int64) - 1
    frac = a / torch.pow(2.0, fl.to(a.dtype))  # ∈ [1, 2)
    thresh = 2**0.5 if log_domain else 1.5
    return fl + (frac >= thresh).to(torch.int64)


@dataclass
class PoTCodes:
    """Power-of-two codes: ``x̂ = sign · 2^exponent`` (sign 0 means x̂ = 0).

    Attributes:
        sign: int8 in {−1, 0, 1}, the input's shape.
        exponent: int16 exponents ``e`` (meaningless where sign == 0; set to ``e_min``).
        e_min, e_max: the exponent range.
        bits: ``b``.
    """

    sign: torch.Tensor
    exponent: torch.Tensor
    e_min: int
    e_max: int
    bits: int

    def dequantize(self) -> torch.Tensor:
        """``sign · 2^exponent`` as float32."""
        return self.sign.float() * torch.pow(2.0, self.exponent.float())

    def index(self) -> torch.Tensor:
        """The stored ``(b−1)``-bit exponent index ``k`` (0 = zero), uint8."""
        k = torch.where(self.sign == 0, 0, self.exponent.long() - self.e_min + 1)
        return k.to(torch.uint8)


@torch.no_grad()
def pot_quantize(x: torch.Tensor, bits: int = 4, e_max: int | None = None,
                 log_domain: bool = True, *, e_min: int | None = None) -> PoTCodes:
    """Power-of-two quantization of ``x`` with ``bits`` (sign + ``bits−1`` exponent bits).

    The library's one power-of-two quantizer: the log-domain codes of Miyashita et al. and,
    with ``log_domain=False`` and an explicit exponent range, INQ's set
    ``{0} ∪ {±2^n : e_min ≤ n ≤ e_max}`` (:mod:`inwhale.qat.inq`).

    Args:
        x: finite floating tensor.
        bits: ``b ≥ 2``; there are ``2^(b−1) − 1`` magnitudes plus zero.
        e_max: top exponent; default: the rounded exponent of ``max|x|``.
        log_domain: round exponents in the log domain (Miyashita) instead of to the
            nearest level (ties go up, as ``|x| = 1.5·2^n`` rounds to ``2^(n+1)``).
        e_min: lowest exponent; default (and at most ``2^(b−1) − 1`` levels below
            ``e_max``): ``e_max − 2^(b−1) + 2``, every code used.

    Returns:
        :class:`PoTCodes`.

    >>> c = pot_quantize(torch.tensor([0.9, -0.3, 0.04]), bits=3)   # levels 0, ±¼, ±½, ±1
    >>> c.sign.tolist(), c.exponent.tolist(), c.e_min, c.e_max
    ([1, -1, 0], [0, -2, -2], -2, 0)
    """
    check_tensor(x)
    check_bits(bits)
    if bits < 2:
        raise ValueError(f"bits must be >= 2 (a sign and an exponent), got {bits}")
    a = x.abs().double()
    if e_max is None:
        amax = a.max().clamp(min=torch.finfo(torch.float32).tiny)
        e_max = int(_round_exponent(amax, log_domain))
    lowest = e_max - (2 ** (bits - 1) - 2)
    if e_min is None:
        e_min = lowest
    elif not lowest <= e_min <= e_max:
        raise ValueError(f"e_min must be in [{lowest}, {e_max}] for bits={bits} and "
                         f"e_max={e_max}, got {e_min}")
    e = _round_exponent(a.clamp(min=torch.finfo(torch.float64).tiny), log_domain)
    e = e.clamp(e_min, e_max)
    zero = a < 2.0 ** (e_min - 1)  # closer to 0 than to the smallest level 2^e_min
    sign = torch.where(zero, 0, torch.sign(x)).to(torch.int8)
    e = torch.where(zero, e_min, e).to(torch.int16)
    return PoTCodes(sign, e, e_min, e_max, bits)


def pot_fake_quantize(x: torch.Tensor, bits: int = 4, e_max: int | None = None,
                      log_domain: bool = True, *, e_min: int | None = None) -> torch.Tensor:
    """``pot_quantize(x, …).dequantize()`` in ``x``'s dtype."""
    return pot_quantize(x, bits, e_max, log_domain, e_min=e_min).dequantize().to(x.dtype)


def pot_matmul_shift(a: torch.Tensor, w: PoTCodes) -> tuple[torch.Tensor, int]:
    """``a @ Ŵᵀ`` for integer activations and PoT weights, with shifts and adds only.

    Computes the integer accumulator ``acc[n, o] = Σ_i s[o,i] · (a[n,i] << (e[o,i] − e_min))``
    so that ``a @ Ŵᵀ = acc · 2^(e_min)`` exactly.

    Args:
        a: integer tensor (N, I) (e.g. int8 activations).
        w: :class:`PoTCodes` of a weight of shape (O, I).

    Returns:
        ``(acc, e_min)``: int64 accumulator (N, O) and the exponent of its unit.

    >>> w = pot_quantize(torch.tensor([[0.5, -0.25]]), bits=3)
    >>> acc, e = pot_matmul_shift(torch.tensor([[3, 4]]), w)
    >>> acc.tolist(), e, acc.item() * 2.0**e       # 3·½ − 4·¼ = 0.5
    ([[4]], -3, 0.5)
    """
    check_codes(a, "a")
    if a.ndim != 2:
        raise ValueError(f"a must be a 2-D integer tensor (N, I), got shape {tuple(a.shape)}")
    if w.sign.ndim != 2 or w.sign.shape[1] != a.shape[1]:
        raise ValueError(f"weight codes must be (O, {a.shape[1]}), got {tuple(w.sign.shape)}")
    shift = (w.exponent.long() - w.e_min)  # (O, I), all ≥ 0
    terms = a.long()[:, None, :] << shift[None]  # (N, O, I): a_i · 2^(e_i − e_min)
    s = w.sign[None]
    terms = torch.where(s < 0, -terms, torch.where(s == 0, 0, terms))  # negate or drop
    acc = terms.sum(dim=-1)  # (N, O)
    return acc, w.e_min


__all__ = ["PoTCodes", "pot_fake_quantize", "pot_matmul_shift", "pot_quantize"]
