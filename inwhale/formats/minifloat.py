"""Minifloats: generic ExMy floating-point formats (FP8, FP6, FP4) with subnormals.

References: IEEE 754-2019 (the pattern every format below follows); Micikevicius et al.,
"FP8 Formats for Deep Learning" (2022) for E4M3 / E5M2; the OCP Microscaling (MX)
Formats Specification v1.0 (2023) for FP6 E3M2 / E2M3 and FP4 E2M1.

A bit pattern ``s | E (e bits) | M (m bits)`` stands for

    x = (−1)^s · 2^(E − β) · (1 + M / 2^m)        if E ≥ 1       (normal)
    x = (−1)^s · 2^(1 − β) · (M / 2^m)            if E = 0       (subnormal)

so the format has ``2^m`` evenly spaced values in every binade ``[2^k, 2^(k+1))`` and a
uniform ("subnormal") stretch of step ``2^(1 − β − m)`` down to zero. Formats differ in
what the top exponent ``E = 2^e − 1`` means:

* **IEEE-like** (``has_inf=True``, e.g. E5M2): ``M = 0`` is ±inf, ``M ≠ 0`` is NaN.
* **"fn"** (finite + NaN, e.g. E4M3fn): only ``E = M = all ones`` is NaN; the rest of the
  top binade holds finite values, which buys E4M3 its range up to 448.
* **finite only** (FP6, FP4): every pattern is a number.

Conversion (:func:`minifloat_quantize`) rounds to nearest, ties to even, as IEEE 754
``roundTiesToEven``: with ``k = max(⌊log₂|x|⌋, 1 − β)`` and ``u = 2^(k − m)`` (the spacing
in ``x``'s binade, or the subnormal step),

    Q(x) = sign(x) · u · round_half_even(|x| / u).

A result above the largest finite value ``x_max`` **overflows**: with ``saturate=True`` it
becomes ``±x_max`` (so do ±inf); with ``saturate=False`` it becomes ±inf (IEEE-like) or NaN
("fn"). NaN stays NaN.

What PyTorch does (checked bit for bit in ``tests/test_formats_minifloat.py``): the cast
``x.to(torch.float8_e4m3fn)`` **saturates** (448 for every finite x ≥ 464 and for +inf),
i.e. :data:`FP8_E4M3`; ``x.to(torch.float8_e5m2)`` follows IEEE (x ≥ 61440 → inf), i.e.
:data:`FP8_E5M2`.

Glossary: ``e`` exponent bits, ``m`` mantissa bits, ``β`` exponent bias (default
``2^(e−1) − 1``), ``E``/``M`` the stored exponent / mantissa fields, ``u`` the spacing
(unit in the last place), ``x_max`` the largest finite value.

Worked example, FP4 E2M1 (β = 1): values 0, 0.5, 1, 1.5, 2, 3, 4, 6. ``2.5`` is a tie
between 2 (mantissa 0, even) and 3 → 2; ``5`` is a tie between 4 and 6 → 4; 7 → 6.

>>> minifloat_quantize(torch.tensor([2.5, 5.0, 7.0, 0.2, -0.3]), FP4_E2M1)
tensor([ 2.0000,  4.0000,  6.0000,  0.0000, -0.5000])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inwhale._deprecated import renamed
from inwhale.core.checks import check_codes


@dataclass(frozen=True)
class MinifloatFormat:
    """An ExMy floating-point format: 1 sign bit, ``exp_bits``, ``man_bits``.

    Attributes:
        exp_bits: exponent field width ``e`` (1..8).
        man_bits: mantissa (fraction) field width ``m`` (0..23).
        bias: exponent bias ``β``; ``None`` means ``2^(e−1) − 1``.
        has_inf: top exponent with ``M = 0`` is ±inf, other ``M`` NaN (IEEE-like).
        has_nan: the format has NaN (if not ``has_inf``: only the all-ones pattern).
        saturate: overflow and ±inf convert to ±x_max instead of inf / NaN.
        name: a label for plots and tables.
    """

    exp_bits: int
    man_bits: int
    bias: int | None = None
    has_inf: bool = False
    has_nan: bool = False
    saturate: bool = True
    name: str = ""

    def __post_init__(self) -> None:
        for field_name, lo, hi in (("exp_bits", 1, 8), ("man_bits", 0, 23)):
            v = getattr(self, field_name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"{field_name} must be an int in [{lo}, {hi}], got {v!r}")
        if self.has_inf and not self.has_nan:
            raise ValueError("has_inf=True needs has_nan=True (IEEE-like top exponent)")
        if not self.saturate and not (self.has_inf or self.has_nan):
            raise ValueError("saturate=False needs a format with inf or NaN to overflow to")
        if self.bias is not None and not isinstance(self.bias, int):
            raise TypeError(f"bias must be an int or None, got {type(self.bias).__name__}")

    @property
    def total_bits(self) -> int:
        """Bits per value: ``1 + e + m``."""
        return 1 + self.exp_bits + self.man_bits

    @property
    def beta(self) -> int:
        """The exponent bias ``β``."""
        return 2 ** (self.exp_bits - 1) - 1 if self.bias is None else self.bias

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal, ``1 − β``."""
        return 1 - self.beta

    @property
    def max_finite(self) -> float:
        """Largest finite value ``x_max`` (448 for E4M3fn, 57344 for E5M2, 6 for E2M1)."""
        top = 2**self.exp_bits - 1 - (1 if self.has_inf else 0)  # top finite exponent field
        frac_max = 2**self.man_bits - 1 - (1 if self.has_nan and not self.has_inf else 0)
        if frac_max < 0:  # e.g. E?M0 fn: the whole top binade is NaN
            top, frac_max = top - 1, 2**self.man_bits - 1
        return 2.0 ** (top - self.beta) * (1 + frac_max / 2**self.man_bits)

    @property
    def emax(self) -> int:
        """Exponent of the largest binade, ``⌊log₂ x_max⌋`` (8 for E4M3, 2 for E2M1)."""
        return int(torch.tensor(self.max_finite).log2().floor())

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value ``2^(1 − β − m)``."""
        return 2.0 ** (self.emin - self.man_bits)

    def values(self) -> torch.Tensor:
        """Every bit pattern ``0 … 2^(1+e+m) − 1`` decoded to float64 (NaN / ±inf included).

        >>> FP4_E2M1.values()[:8].tolist()
        [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
        """
        e, m = self.exp_bits, self.man_bits
        p = torch.arange(2**self.total_bits, dtype=torch.int64)
        E, M = (p >> m) & (2**e - 1), p & (2**m - 1)
        frac = M.double() / 2**m
        mag = torch.where(E == 0, frac * 2.0**self.emin,
                          (1 + frac) * torch.pow(2.0, (E - self.beta).double()))
        top = E == 2**e - 1
        if self.has_inf:
            mag = torch.where(top & (M == 0), torch.inf, mag)
            mag = torch.where(top & (M != 0), torch.nan, mag)
        elif self.has_nan:
            mag = torch.where(top & (M == 2**m - 1), torch.nan, mag)
        return torch.where((p >> (e + m)) == 1, -mag, mag)

    def grid(self) -> torch.Tensor:
        """The sorted, distinct finite values (−0 merged with +0), float64."""
        v = self.values()
        return torch.unique(v[torch.isfinite(v)])


def _floor_log2(a: torch.Tensor) -> torch.Tensor:
    """``⌊log₂ a⌋`` for float64 ``a > 0`` read from the exponent field (int64, exact for
    normal float64; zero and subnormals give −1023, which callers clamp)."""
    return ((a.view(torch.int64) >> 52) & 0x7FF) - 1023


def _pow2(k: torch.Tensor) -> torch.Tensor:
    """``2^k`` as float64 for integer ``k ∈ [−1022, 1023]``, built from its bit pattern."""
    return ((k + 1023) << 52).view(torch.float64)


def _spacing(a: torch.Tensor, fmt: MinifloatFormat) -> torch.Tensor:
    """``u = 2^(max(⌊log₂ a⌋, emin) − m)`` for finite magnitudes ``a ≥ 0`` (float64, exact)."""
    return _pow2(torch.clamp(_floor_log2(a), min=fmt.emin) - fmt.man_bits)


def minifloat_quantize(x: torch.Tensor, fmt: MinifloatFormat) -> torch.Tensor:
    """Round ``x`` to the nearest value of ``fmt`` (ties to even), as real numbers.

    Formula in the module docstring. Computed in float64 (exact for float32 input), returned
    in ``x``'s dtype; shapes are kept. Signed zeros are kept (``−0.0 → −0.0``); values
    below half the smallest subnormal flush to ±0; NaN → NaN; overflow per ``fmt.saturate``.

    Args:
        x: floating tensor of any shape (NaN and ±inf allowed).
        fmt: the target format.

    Returns:
        Tensor like ``x`` holding only values of ``fmt`` (and ±inf / NaN where the format
        has them).

    >>> minifloat_quantize(torch.tensor([300.0, 460.0, 470.0, 1e6]), FP8_E4M3)
    tensor([288., 448., 448., 448.])
    >>> minifloat_quantize(torch.tensor([57344.0, 61439.0, 61440.0]), FP8_E5M2)
    tensor([57344., 57344.,    inf])
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError("x must be a floating-point torch.Tensor")
    if not isinstance(fmt, MinifloatFormat):
        raise TypeError(f"fmt must be a MinifloatFormat, got {type(fmt).__name__}")
    xd = x.double()
    a = xd.abs()
    u = _spacing(torch.where(torch.isfinite(a), a, 0.0), fmt)
    q = torch.round(a / u) * u  # torch.round is round-half-to-even
    over = q > fmt.max_finite  # ±inf lands here too
    if fmt.saturate:
        q = torch.where(over, fmt.max_finite, q)
    else:
        q = torch.where(over, torch.inf if fmt.has_inf else torch.nan, q)
    q = torch.where(torch.isnan(xd), torch.nan, q)
    return torch.copysign(q, xd).to(x.dtype)


def minifloat_encode(x: torch.Tensor, fmt: MinifloatFormat) -> torch.Tensor:
    """Round ``x`` to ``fmt`` and return the bit patterns ``s|E|M`` as integers.

    Patterns are returned as ``uint8`` for formats of ≤ 8 bits (FP4/FP6 use the low bits),
    ``int32`` otherwise. NaN encodes as the all-ones magnitude (``0x7F`` for FP8) with the
    input's sign, as PyTorch does; a NaN input to a format without NaN raises.

    >>> minifloat_encode(torch.tensor([1.0, -0.5, 448.0]), FP8_E4M3).tolist()
    [56, 176, 126]
    """
    q = minifloat_quantize(x, fmt).double()
    nan = torch.isnan(q)
    if bool(nan.any()) and not fmt.has_nan:
        raise ValueError(f"x holds NaN, which format {fmt.name or fmt} cannot encode")
    e, m = fmt.exp_bits, fmt.man_bits
    a = torch.where(nan | torch.isinf(q), 0.0, q.abs())
    u = _spacing(a, fmt)
    sub = a < 2.0**fmt.emin
    E = torch.where(sub, 0, _floor_log2(a) + fmt.beta)
    M = torch.round(a / u).to(torch.int64) - torch.where(sub, 0, 2**m)
    bits = (E << m) | M
    bits = torch.where(torch.isinf(q), (2**e - 1) << m, bits)
    bits = torch.where(nan, 2 ** (e + m) - 1, bits)
    bits = bits | (torch.signbit(q).to(torch.int64) << (e + m))
    return bits.to(torch.uint8 if fmt.total_bits <= 8 else torch.int32)


def minifloat_decode(codes: torch.Tensor, fmt: MinifloatFormat) -> torch.Tensor:
    """Bit patterns → float32 values, by lookup in :meth:`MinifloatFormat.values`.

    >>> minifloat_decode(torch.tensor([56, 176, 126, 127], dtype=torch.uint8), FP8_E4M3)
    tensor([  1.0000,  -0.5000, 448.0000,      nan])
    """
    c = check_codes(codes, "codes", 0, 2**fmt.total_bits - 1).to(torch.int64)
    return fmt.values().to(codes.device)[c].float()


FP8_E4M3 = MinifloatFormat(4, 3, has_nan=True, saturate=True, name="FP8 E4M3")
"""E4M3fn: max 448, no inf, NaN = S.1111.111; saturating, like ``torch.float8_e4m3fn``."""
FP8_E5M2 = MinifloatFormat(5, 2, has_inf=True, has_nan=True, saturate=False, name="FP8 E5M2")
"""E5M2: IEEE-like, max 57344, ±inf; overflow → inf, like ``torch.float8_e5m2``."""
FP6_E3M2 = MinifloatFormat(3, 2, name="FP6 E3M2")
"""OCP MX FP6 E3M2: bias 3, max 28, no inf / NaN."""
FP6_E2M3 = MinifloatFormat(2, 3, name="FP6 E2M3")
"""OCP MX FP6 E2M3: bias 1, max 7.5, no inf / NaN."""
FP4_E2M1 = MinifloatFormat(2, 1, name="FP4 E2M1")
"""OCP MX FP4 E2M1: bias 1, values ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}."""

__all__ = [
    "FP4_E2M1",
    "FP6_E2M3",
    "FP6_E3M2",
    "FP8_E4M3",
    "FP8_E5M2",
    "MinifloatFormat",
    "minifloat_decode",
    "minifloat_encode",
    "minifloat_quantize",
]


# Old names (verb first), importable for one release; see inwhale._deprecated.
quantize_minifloat = renamed(minifloat_quantize, "quantize_minifloat")
encode_minifloat = renamed(minifloat_encode, "encode_minifloat")
decode_minifloat = renamed(minifloat_decode, "decode_minifloat")
