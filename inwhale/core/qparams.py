"""Quantization parameters: the one place where scale and zero point are computed.

An affine (uniform) quantizer with ``b`` bits stores integer codes ``q ∈ [q_min, q_max]``
and represents the real number

    x̂ = s · (q − z)

with a **scale** (step) ``s > 0`` and a **zero point** ``z`` (the code that stands for 0.0).
Given a real range ``[lo, hi]`` to cover, this module chooses ``s`` and ``z``:

* **asymmetric** (affine): first widen the range to contain zero,
  ``lo' = min(lo, 0)``, ``hi' = max(hi, 0)``, then

      s = (hi' − lo') / (q_max − q_min),      z = q_min − round(lo' / s)

  clamped to ``[q_min, q_max]``. Zero is exactly representable (it is code ``z``).
* **symmetric**: ``z`` is the middle code ``⌊(q_min + q_max + 1) / 2⌋`` (0 for signed
  codes, 128 for unsigned 8-bit) and

      s = max(|lo|, |hi|) / ((q_max − q_min) / 2).

  For signed int8 that is ``max|x| / 127.5``: PyTorch's convention, which clips the very
  largest positive value by half a step. With ``narrow_range=True`` the codes are
  ``[−127, 127]`` and ``s = max|x| / 127`` exactly, the convention of most LLM papers.

A range of zero width (all-zero input) would give ``s = 0``; like PyTorch we use
``s = ε`` (float32 machine epsilon, 1.19e-7) instead, so every code stays finite and zeros
quantize to ``z`` exactly.

Worked example (asymmetric uint8, range [−1, 3]):
``s = 4/255 = 0.015686``, ``z = 0 − round(−1/0.015686) = round(63.75) = 64``;
``x = 1.0`` → ``q = round(63.75) + 64 = 128`` → ``x̂ = 0.015686·(128−64) = 1.0039``.

>>> qp = qparams_from_range(torch.tensor(-1.0), torch.tensor(3.0), bits=8, signed=False)
>>> round(qp.scale.item(), 6), qp.zero_point.item()
(0.015686, 64)

**The zero-point rule** (the field :attr:`QParams.zero_point_domain`, never the dtype):

* ``"int"`` (PyTorch's rule, the default): ``z`` is an integer code added *after* rounding,
  ``q = clamp(R(x/s) + z)``;
* ``"float"``: ``z`` is a real-valued offset added *before* rounding,
  ``q = clamp(R(x/s + z))`` — HQQ's optimized zero points and the mid-rise grid (``z = −½``).

Both dequantize as ``x̂ = s·(q − z)``. For an integer-valued ``z`` the two agree
(``R(v + z) = R(v) + z``); they differ only when ``z`` has a fraction, which only the
float domain allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import torch

from inwhale.core.checks import check_bits, check_tensor
from inwhale.core.granularity import Granularity, PerTensor

EPS = torch.finfo(torch.float32).eps


@dataclass
class QParams:
    """Everything needed to map between real values and integer codes.

    Attributes:
        scale: step size ``s`` (float32), shaped to broadcast against the granularity's
            view of the tensor (a 0-d tensor for per-tensor).
        zero_point: ``z``, same shape as ``scale``; how it enters is ``zero_point_domain``.
        qmin, qmax: the smallest and largest code.
        granularity: how elements share parameters (see :mod:`inwhale.core.granularity`).
        bits: the code width ``b``.
        zero_point_domain: ``"int"`` — ``z`` is an integer code added *after* rounding,
            ``q = R(x/s) + z``, as PyTorch does (int32 ``z``, or a float tensor holding whole
            numbers); ``"float"`` — a real-valued offset added *before* rounding,
            ``q = R(x/s + z)``, as HQQ and the mid-rise quantizer (``z = −½``) need.
            Every path (core, STE, packing, storage, GGUF) reads this field.

    Raises:
        ValueError: an unknown ``zero_point_domain``, or a zero point with a fractional part
            in the ``"int"`` domain.
    """

    scale: torch.Tensor
    zero_point: torch.Tensor
    qmin: int
    qmax: int
    granularity: Granularity = field(default_factory=PerTensor)
    bits: int = 8
    zero_point_domain: Literal["int", "float"] = "int"

    def __post_init__(self) -> None:
        if self.zero_point_domain not in ("int", "float"):
            raise ValueError(f"zero_point_domain must be 'int' or 'float', got "
                             f"{self.zero_point_domain!r}")
        z = self.zero_point
        if (self.zero_point_domain == "int" and isinstance(z, torch.Tensor)
                and z.is_floating_point() and not torch.equal(z, torch.round(z))):
            raise ValueError("zero_point has a fractional part but zero_point_domain='int' "
                             "(codes must be whole numbers); pass zero_point_domain='float' "
                             "for a real-valued offset added before rounding")

    @property
    def zero_point_before_rounding(self) -> bool:
        """True in the ``"float"`` domain: ``z`` is added before rounding."""
        return self.zero_point_domain == "float"

    @property
    def signed(self) -> bool:
        """True when codes can be negative."""
        return self.qmin < 0

    @property
    def code_dtype(self) -> torch.dtype:
        """Smallest torch integer dtype that holds every code in ``[qmin, qmax]``:
        uint8 / int8 up to 8 bits (unsigned / signed), then int16, then int32."""
        order = (torch.uint8, torch.int16, torch.int32) if self.qmin >= 0 else (
            torch.int8, torch.int16, torch.int32)
        for dt in order:
            info = torch.iinfo(dt)
            if info.min <= self.qmin and self.qmax <= info.max:
                return dt
        return torch.int64  # pragma: no cover - bits <= 16 always fit int32

    def to(self, device: torch.device | str) -> QParams:
        """The same parameters with ``scale`` and ``zero_point`` on ``device``."""
        return replace(self, scale=self.scale.to(device), zero_point=self.zero_point.to(device))


def integer_range(bits: int, signed: bool = True, narrow_range: bool = False) -> tuple[int, int]:
    """The code range ``[q_min, q_max]`` of a ``bits``-wide integer.

    Signed: ``[−2^(b−1), 2^(b−1) − 1]``; unsigned: ``[0, 2^b − 1]``. ``narrow_range``
    drops the lowest code, making a signed range symmetric (``[−127, 127]`` for 8 bits).

    >>> integer_range(8), integer_range(8, signed=False), integer_range(4, narrow_range=True)
    ((-128, 127), (0, 255), (-7, 7))
    """
    check_bits(bits)
    qmin, qmax = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if narrow_range:
        qmin += 1
    if qmin >= qmax:
        raise ValueError(
            f"bits={bits} with signed={signed}, narrow_range={narrow_range} leaves fewer "
            "than two codes"
        )
    return qmin, qmax


def _as_float32(t: torch.Tensor | float, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        t = torch.tensor(float(t))
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must be a real tensor, got dtype {t.dtype}")
    t = t.float()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite")
    return t


def qparams_from_range(
    min_val: torch.Tensor | float,
    max_val: torch.Tensor | float,
    *,
    bits: int = 8,
    symmetric: bool = False,
    signed: bool | None = None,
    narrow_range: bool = False,
    granularity: Granularity | None = None,
    zero_point_domain: str = "int",
) -> QParams:
    """Scale and zero point that cover the real range ``[min_val, max_val]``.

    This is the single source of truth for ``s`` and ``z`` in inwhale: observers,
    quantizer classes and LLM methods all end here. The formulas are in the module
    docstring.

    Args:
        min_val, max_val: range ends, scalars or tensors of the granularity's parameter
            shape (e.g. ``(O, 1)`` for ``PerAxis(0)`` on an (O, I) weight).
        bits: code width, 1..16.
        symmetric: symmetric (z at the middle code) instead of asymmetric.
        signed: signed codes; defaults to ``symmetric`` (int8 for symmetric, uint8 else).
        narrow_range: drop the lowest code (``[−127, 127]`` for signed 8 bit).
        granularity: recorded in the result; defaults to :class:`PerTensor`.
        zero_point_domain: ``"int"`` (default): ``z = q_min − round(lo'/s)``, a whole code
            added after rounding. ``"float"``: the exact ``z = q_min − lo'/s`` (float32, not
            rounded), added before rounding — the start of HQQ's zero-point search; it maps
            ``lo'`` exactly onto ``q_min`` (symmetric grids: the middle code, as a float).

    Returns:
        :class:`QParams` with float32 ``scale`` and an int32 (``"int"``) or float32
        (``"float"``) ``zero_point`` of the ranges' broadcast shape.

    Raises:
        ValueError: ``min_val > max_val`` anywhere, a non-finite end, bad ``bits``, an
            unknown ``zero_point_domain``.

    Worked example (4 bits, range [−1, 2]): ``s = 3/15 = 0.2``; the int domain rounds
    ``−lo/s = 5`` (already whole); with range [−0.9, 2.1] ``−lo/s = 4.5`` → ``z = 4`` (round
    half to even) in the int domain and ``4.5`` in the float domain:

    >>> qparams_from_range(-0.9, 2.1, bits=4).zero_point.item()
    4
    >>> round(qparams_from_range(-0.9, 2.1, bits=4, zero_point_domain="float").zero_point.item(), 4)
    4.5
    """
    if zero_point_domain not in ("int", "float"):
        raise ValueError(f"zero_point_domain must be 'int' or 'float', got {zero_point_domain!r}")
    lo, hi = _as_float32(min_val, "min_val"), _as_float32(max_val, "max_val")
    if bool((lo > hi).any()):
        raise ValueError("min_val must be <= max_val everywhere (got min_val > max_val)")
    signed = symmetric if signed is None else signed
    qmin, qmax = integer_range(bits, signed, narrow_range)
    lo, hi = torch.clamp(lo, max=0.0), torch.clamp(hi, min=0.0)  # the range must contain 0
    if symmetric:
        amax = torch.maximum(-lo, hi)
        scale = torch.clamp(amax / ((qmax - qmin) / 2), min=EPS)
        zero_point = torch.full_like(scale, (qmin + qmax + 1) // 2, dtype=torch.int32)
    else:
        scale = torch.clamp((hi - lo) / (qmax - qmin), min=EPS)
        zero_point = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax).to(torch.int32)
    if zero_point_domain == "float":
        exact = (qmin - lo / scale) if not symmetric else zero_point.float()
        return QParams(scale, exact, qmin, qmax, granularity or PerTensor(), bits,
                       zero_point_domain="float")
    return QParams(scale, zero_point, qmin, qmax, granularity or PerTensor(), bits)


def choose_qparams(
    x: torch.Tensor,
    *,
    bits: int = 8,
    symmetric: bool = False,
    signed: bool | None = None,
    narrow_range: bool = False,
    granularity: Granularity | None = None,
    zero_point_domain: str = "int",
) -> QParams:
    """Min–max quantization parameters for the tensor ``x`` at the given granularity.

    Computes ``lo = min(x)``, ``hi = max(x)`` per group and calls
    :func:`qparams_from_range` (which documents ``zero_point_domain``). Works for any
    floating dtype; statistics are float32.

    >>> x = torch.tensor([[0.0, 1.0, 2.0], [-4.0, 0.0, 4.0]])
    >>> from inwhale.core.granularity import PerAxis
    >>> choose_qparams(x, bits=8, symmetric=True, granularity=PerAxis(0)).scale.squeeze()
    tensor([0.0157, 0.0314])

    Raises:
        TypeError: ``x`` is not a floating tensor.
        ValueError: ``x`` is empty or holds NaN/inf; bad ``bits``; bad granularity axis.
    """
    check_tensor(x)
    granularity = granularity or PerTensor()
    x32 = x.float()
    lo, hi = granularity.reduce(x32, "amin"), granularity.reduce(x32, "amax")
    return qparams_from_range(lo, hi, bits=bits, symmetric=symmetric, signed=signed,
                              narrow_range=narrow_range, granularity=granularity,
                              zero_point_domain=zero_point_domain)


__all__ = ["EPS", "QParams", "choose_qparams", "integer_range", "qparams_from_range"]
