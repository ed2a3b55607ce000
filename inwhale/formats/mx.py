"""Microscaling (MX) block formats: a shared power-of-two scale per block of 32 elements.

Reference: Open Compute Project, "OCP Microscaling Formats (MX) Specification" v1.0
(2023), sections 5–6; Rouhani et al., "Microscaling Data Formats for Deep Learning" (2023).

An MX block is ``k = 32`` consecutive elements ``V_1 … V_k`` (along the last axis) stored
as one 8-bit shared scale ``X`` in E8M0 (a bare exponent, ``X = 2^(E − 127)``) plus ``k``
elements ``P_i`` in a narrow element format; the block represents ``V̂_i = X · P_i``.
The spec's conversion (section 6.3) is

    shared_exp = ⌊log₂ max_i |V_i|⌋ − e_max,elem          X = 2^shared_exp
    P_i        = Q_elem(V_i / X)          (round to nearest, saturate to ±max_elem)

where ``e_max,elem`` is the exponent of the element format's largest binade (8 for
E4M3, 15 for E5M2, 4 for E3M2, 2 for E2M3 and E2M1, 0 for INT8). The largest element
of a block thus lands in the top binade of the element format; it can still exceed
``max_elem`` (e.g. E2M1: |V|/X = 7.9 → 6) and is then saturated.
``shared_exp`` is clamped to E8M0's range ``[−127, 127]`` (an all-zero block gets −127).

MXINT8 elements are 8-bit two's complement with an implicit scale ``2^−6``: values
``k / 64``, ``k ∈ [−127, 127]`` (the microxcaling reference code keeps the range
symmetric, so ``−128`` is unused), i.e. ``P ∈ [−1.984375, 1.984375]``.

Storage: ``(k · b_elem + 8) / k`` bits per element — 8.25 for MXFP8 / MXINT8, 6.25 for
MXFP6, 4.25 for MXFP4.

Glossary: ``k`` block size, ``V`` input elements, ``X`` shared scale, ``P`` element
values, ``b_elem`` element bits, ``e_max,elem`` see above.

Worked example (MXFP4, one block whose largest magnitude is 5.0): ``⌊log₂ 5⌋ = 2``,
``shared_exp = 2 − 2 = 0``, ``X = 1``; 5.0 → E2M1 tie between 4 and 6 → 4.0.

>>> x = torch.zeros(32); x[0], x[1] = 5.0, -0.7
>>> mx_fake_quantize(x, MXFP4_E2M1)[:2]
tensor([ 4.0000, -0.5000])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from inwhale.core.checks import check_group_size, check_tensor
from inwhale.core.granularity import PerGroup
from inwhale.formats.minifloat import (
    FP4_E2M1,
    FP6_E2M3,
    FP6_E3M2,
    FP8_E4M3,
    FP8_E5M2,
    MinifloatFormat,
    minifloat_quantize,
)

SCALE_BITS = 8  # E8M0
SCALE_EMIN, SCALE_EMAX = -127, 127  # 0xFF is NaN


@dataclass(frozen=True)
class MXFormat:
    """An MX element type.

    Attributes:
        name: e.g. ``"MXFP4"``.
        element: the minifloat element format, or ``None`` for MXINT8.
        elem_bits: bits per element ``b_elem``.
        emax_elem: exponent of the element format's largest binade.
    """

    name: str
    element: MinifloatFormat | None
    elem_bits: int
    emax_elem: int

    def bits_per_element(self, block_size: int = 32) -> float:
        """``(k · b_elem + 8) / k``: element bits plus the amortised E8M0 scale.

        >>> MXFP4_E2M1.bits_per_element(), MXINT8.bits_per_element()
        (4.25, 8.25)
        """
        return (block_size * self.elem_bits + SCALE_BITS) / block_size

    def quantize_elements(self, v: torch.Tensor) -> torch.Tensor:
        """``Q_elem``: round scaled elements ``V/X`` to the element grid, saturating."""
        if self.element is None:  # INT8, implicit scale 2^-6, symmetric range
            return torch.clamp(torch.round(v * 64.0), -127, 127) / 64.0
        return minifloat_quantize(v, dataclasses.replace(self.element, saturate=True))


def _mx_format(name: str, elem: MinifloatFormat) -> MXFormat:
    return MXFormat(name, elem, elem.total_bits, elem.emax)


MXFP8_E4M3 = _mx_format("MXFP8 E4M3", FP8_E4M3)
MXFP8_E5M2 = _mx_format("MXFP8 E5M2", FP8_E5M2)
MXFP6_E3M2 = _mx_format("MXFP6 E3M2", FP6_E3M2)
MXFP6_E2M3 = _mx_format("MXFP6 E2M3", FP6_E2M3)
MXFP4_E2M1 = _mx_format("MXFP4 E2M1", FP4_E2M1)
MXINT8 = MXFormat("MXINT8", None, 8, 0)
MX_FORMATS = (MXFP8_E4M3, MXFP8_E5M2, MXFP6_E3M2, MXFP6_E2M3, MXFP4_E2M1, MXINT8)


@dataclass
class MXTensor:
    """An MX-quantized tensor.

    Attributes:
        shared_exp: int16 exponents of the scales ``X = 2^shared_exp``, shape
            ``(..., n_blocks, 1)`` (the last axis split into blocks).
        elements: element values ``P`` (float32, on the element grid), the input's shape.
        fmt: the :class:`MXFormat`.
        block_size: ``k``.
    """

    shared_exp: torch.Tensor
    elements: torch.Tensor
    fmt: MXFormat
    block_size: int

    def dequantize(self) -> torch.Tensor:
        """``V̂ = X · P`` as float32, the original shape."""
        g = PerGroup(self.block_size, axis=-1)
        pv = g.view(self.elements)
        xv = pv * torch.pow(2.0, self.shared_exp.float())  # (..., n_blocks, k)
        return g.unview(xv, self.elements.shape)


def shared_exponent(x: torch.Tensor, fmt: MXFormat, block_size: int = 32) -> torch.Tensor:
    """``⌊log₂ max|V|⌋ − e_max,elem`` per block of the last axis, clamped to [−127, 127].

    Shape ``(..., n_blocks, 1)`` (int16). A ragged last block is allowed (it is shorter).

    >>> shared_exponent(torch.full((32,), 0.3), MXFP8_E4M3).flatten().tolist()  # ⌊log₂ .3⌋ = −2
    [-10]
    """
    amax = PerGroup(block_size, axis=-1).reduce(x.float().abs(), "amax")
    _, ex = torch.frexp(amax)  # amax = f · 2^ex, f ∈ [0.5, 1) ⇒ ⌊log₂ amax⌋ = ex − 1
    e = torch.where(amax > 0, ex.to(torch.int32) - 1 - fmt.emax_elem, SCALE_EMIN)
    return torch.clamp(e, SCALE_EMIN, SCALE_EMAX).to(torch.int16)


def mx_quantize(x: torch.Tensor, fmt: MXFormat, block_size: int = 32) -> MXTensor:
    """Quantize ``x`` to an MX format, blocks of ``block_size`` along the last axis.

    Args:
        x: finite floating tensor, at least 1-D, last axis ≥ ``block_size``.
        fmt: one of :data:`MX_FORMATS` (or your own :class:`MXFormat`).
        block_size: ``k``, 32 in the spec.

    Returns:
        :class:`MXTensor`; ``.dequantize()`` gives ``V̂``.

    Raises:
        TypeError: ``x`` not a floating tensor or ``fmt`` not an ``MXFormat``.
        ValueError: non-finite ``x``, 0-d ``x``, bad ``block_size``.
    """
    check_tensor(x, "x")
    if not isinstance(fmt, MXFormat):
        raise TypeError(f"fmt must be an MXFormat, got {type(fmt).__name__}")
    if x.ndim == 0:
        raise ValueError("x must be at least 1-D (blocks run along its last axis)")
    check_group_size(block_size, x.shape[-1], "block_size", allow_none=False)
    g = PerGroup(block_size, axis=-1)  # validates block_size against the last axis
    e = shared_exponent(x, fmt, block_size)
    vv = g.view(x.float()) / torch.pow(2.0, e.float())  # V / X, exact (X is 2^e)
    p = g.unview(fmt.quantize_elements(vv), x.shape)
    return MXTensor(e, p, fmt, block_size)


def mx_fake_quantize(x: torch.Tensor, fmt: MXFormat, block_size: int = 32) -> torch.Tensor:
    """``mx_quantize(x).dequantize()`` in ``x``'s dtype."""
    return mx_quantize(x, fmt, block_size).dequantize().to(x.dtype)


__all__ = [
    "MXFP4_E2M1",
    "MXFP6_E2M3",
    "MXFP6_E3M2",
    "MXFP8_E4M3",
    "MXFP8_E5M2",
    "MXINT8",
    "MX_FORMATS",
    "MXFormat",
    "MXTensor",
    "mx_fake_quantize",
    "mx_quantize",
    "shared_exponent",
]
