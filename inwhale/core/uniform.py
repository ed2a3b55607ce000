"""Uniform quantizer objects: a bit width, a range estimate and a rounding rule, together.

The functional core (:func:`~inwhale.core.qparams.choose_qparams`,
:func:`~inwhale.core.affine.quantize`, :func:`~inwhale.core.affine.dequantize`) is all one
needs; these classes bundle the choices so that a quantizer can be built once and applied
many times, as in the Quick start::

    quant = SymmetricUniformQuantizer(bits=8, observer=MinMaxObserver(),
                                      rounding=NearestRounding())
    qx = quant.quantize(x)          # observes x, chooses s and z, returns int8 codes
    dx = quant.dequantize(qx)       # s · (q − z)

The family, all on the same affine grid ``x̂ = s·(q − z)``:

===========================  ================================================================
class                         grid
===========================  ================================================================
AffineUniformQuantizer        the general form; ``symmetric`` picks z
SymmetricUniformQuantizer     z = middle code, levels symmetric around 0, zero is a level
AsymmetricUniformQuantizer    z chosen so that [min, max] maps onto [q_min, q_max]
MidTreadQuantizer             = symmetric: 0 is a reconstruction level (a "tread")
MidRiseQuantizer              levels at ±Δ/2, ±3Δ/2, … : 0 is a decision threshold (a "riser")
DeadZoneQuantizer             symmetric, with a widened zero bin (dead-zone rounding)
===========================  ================================================================

Signed or unsigned codes and narrow range are arguments of every class.

Why there is also :class:`inwhale.nn.FakeQuantize`: both run observer → qparams → freeze,
and both end in the same core (:func:`~inwhale.core.qparams.qparams_from_range`, the
:class:`~inwhale.core.qparams.QParams` zero-point rule). These classes are plain objects that
return integer *codes* (``quantize``/``dequantize``) with any rounding rule — the tool of the
signal-processing and format chapters, no autograd. ``FakeQuantize`` is an ``nn.Module`` that
sits *inside* a network: it returns ``x̂`` through a straight-through gradient, keeps its
frozen parameters as buffers (``.to(device)``, ``state_dict``) and can be switched off — the
tool of QAT and the PTQ pipeline. Merging them would give the signal chapters a module they
do not need, or the training code codes it cannot differentiate.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import torch

from inwhale.core.affine import RoundingFn, dequantize, fake_quantize, quantize
from inwhale.core.checks import check_bits, check_tensor
from inwhale.core.granularity import Granularity, PerTensor
from inwhale.core.qparams import QParams, choose_qparams
from inwhale.rounding import DeadZoneRounding


class ObserverLike(Protocol):
    """What a quantizer needs from an observer (see :mod:`inwhale.observers`)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def calculate_qparams(
        self, *, bits: int, symmetric: bool, signed: bool | None, narrow_range: bool
    ) -> QParams: ...


class AffineUniformQuantizer:
    """A uniform quantizer: ``q = clamp(R(x/s) + z, q_min, q_max)``, ``x̂ = s(q − z)``.

    Args:
        bits: code width, 1..16.
        observer: estimates the range and returns :class:`QParams`; ``None`` uses the
            min and max of each tensor passed to :meth:`quantize` (dynamic quantization).
        rounding: rounding rule ``R``; ``None`` is round-half-to-even.
        symmetric: symmetric (``z`` at the middle code) or asymmetric grid.
        signed: signed codes; default: ``symmetric``.
        narrow_range: drop the lowest code (int8 → [−127, 127]).
        granularity: used when ``observer`` is ``None`` (an observer has its own).

    Until :meth:`freeze` is called, every :meth:`quantize` call first shows ``x`` to the
    observer and recomputes the parameters; afterwards the parameters are fixed.

    >>> q = AffineUniformQuantizer(bits=4, symmetric=False)
    >>> x = torch.tensor([0.0, 0.5, 1.4, 3.0])                    # s = 3/15 = 0.2, z = 0
    >>> q.quantize(x).tolist(), [round(v, 4) for v in q.fake_quantize(x).tolist()]
    ([0, 2, 7, 15], [0.0, 0.4, 1.4, 3.0])
    """

    symmetric: bool = False

    def __init__(
        self,
        bits: int = 8,
        observer: ObserverLike | None = None,
        rounding: RoundingFn | None = None,
        *,
        symmetric: bool | None = None,
        signed: bool | None = None,
        narrow_range: bool = False,
        granularity: Granularity | None = None,
    ) -> None:
        self.bits = check_bits(bits)
        self.observer = observer
        self.rounding = rounding
        if symmetric is not None:
            self.symmetric = bool(symmetric)
        self.signed = self.symmetric if signed is None else bool(signed)
        self.narrow_range = bool(narrow_range)
        self.granularity = granularity or PerTensor()
        self.qparams: QParams | None = None
        self.frozen = False

    def calibrate(self, x: torch.Tensor) -> QParams:
        """Show ``x`` to the observer (or take its min/max) and update :attr:`qparams`."""
        check_tensor(x)
        spec = dict(bits=self.bits, symmetric=self.symmetric, signed=self.signed,
                    narrow_range=self.narrow_range)
        if self.observer is None:
            qp = choose_qparams(x, granularity=self.granularity, **spec)
        else:
            self.observer(x)
            qp = self.observer.calculate_qparams(**spec)
        self.qparams = self.adjust_qparams(qp)
        return self.qparams

    def adjust_qparams(self, qparams: QParams) -> QParams:
        """Hook for subclasses that move the grid (mid-rise); identity here."""
        return qparams

    def freeze(self) -> AffineUniformQuantizer:
        """Stop observing: later calls reuse the current parameters. Returns ``self``."""
        if self.qparams is None:
            raise ValueError("freeze() needs parameters: call calibrate(x) or quantize(x) first")
        self.frozen = True
        return self

    def _params_for(self, x: torch.Tensor) -> QParams:
        if not self.frozen:
            return self.calibrate(x)
        assert self.qparams is not None
        return self.qparams

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Integer codes of ``x`` (observing ``x`` first unless frozen)."""
        return quantize(x, self._params_for(x), self.rounding)

    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """Real values ``s·(q − z)`` of codes produced by :meth:`quantize`."""
        if self.qparams is None:
            raise ValueError("dequantize() before any quantize(): no parameters yet")
        return dequantize(codes, self.qparams)

    def fake_quantize(self, x: torch.Tensor) -> torch.Tensor:
        """``dequantize(quantize(x))`` in ``x``'s dtype."""
        return fake_quantize(x, self._params_for(x), self.rounding)

    __call__ = fake_quantize

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(bits={self.bits}, signed={self.signed}, "
                f"narrow_range={self.narrow_range}, observer={self.observer!r}, "
                f"rounding={self.rounding!r})")


class SymmetricUniformQuantizer(AffineUniformQuantizer):
    """Symmetric grid: ``z`` = middle code (0 for signed), ``s = max|x| / ((q_max − q_min)/2)``.

    >>> q = SymmetricUniformQuantizer(bits=8)
    >>> q.quantize(torch.tensor([-1.0, 0.0, 0.5, 1.0])).tolist()   # s = 1/127.5
    [-127, 0, 64, 127]

    (−1.0 lands on −127, not −128: ``1/s`` in float32 is a hair below 127.5.)
    """

    symmetric = True


class AsymmetricUniformQuantizer(AffineUniformQuantizer):
    """Asymmetric (affine) grid: ``[min, max]`` (widened to contain 0) onto ``[q_min, q_max]``.

    >>> q = AsymmetricUniformQuantizer(bits=8)
    >>> q.quantize(torch.tensor([0.0, 0.5, 2.0])).tolist()     # s = 2/255, z = 0
    [0, 64, 255]
    """

    symmetric = False


MidTreadQuantizer = SymmetricUniformQuantizer
"""Mid-tread: zero is a reconstruction level. Same grid as :class:`SymmetricUniformQuantizer`."""


class MidRiseQuantizer(AffineUniformQuantizer):
    """Mid-rise grid: levels ``(k + ½)·Δ``, so 0 is a decision threshold, not a level.

    All ``2^b`` codes are used symmetrically (for 2 bits: ±Δ/2, ±3Δ/2) and the outer levels
    sit at ±max|x|. It is the symmetric grid with the zero point moved to ``z = −½``, which
    the core applies before rounding: ``q = R(x/s − ½)``. A small input never becomes 0.

    >>> q = MidRiseQuantizer(bits=2)
    >>> q.fake_quantize(torch.tensor([-1.5, -0.1, 0.1, 1.5])).tolist()
    [-1.5, -0.5, 0.5, 1.5]
    """

    symmetric = True

    def __init__(self, bits: int = 8, observer: ObserverLike | None = None,
                 rounding: RoundingFn | None = None, *,
                 granularity: Granularity | None = None) -> None:
        super().__init__(bits, observer, rounding, signed=True, granularity=granularity)

    def adjust_qparams(self, qparams: QParams) -> QParams:
        return replace(qparams, zero_point=torch.full_like(qparams.scale, -0.5),
                       zero_point_domain="float")


class DeadZoneQuantizer(AffineUniformQuantizer):
    """Symmetric grid with dead-zone rounding ``R(v) = sign(v)·⌊|v| + ρ⌋``.

    Inputs with ``|x| < (1 − ρ)·Δ`` become exactly 0 (with ρ = ½ this is plain rounding).

    >>> q = DeadZoneQuantizer(bits=4, rho=0.2, narrow_range=True)
    >>> q.quantize(torch.tensor([-7.0, -0.7, 0.7, 0.85, 7.0])).tolist()
    [-7, 0, 0, 1, 7]
    """

    symmetric = True

    def __init__(self, bits: int = 8, observer: ObserverLike | None = None, *,
                 rho: float = 1 / 3, narrow_range: bool = False,
                 granularity: Granularity | None = None) -> None:
        super().__init__(bits, observer, DeadZoneRounding(rho), narrow_range=narrow_range,
                         granularity=granularity)


__all__ = [
    "AffineUniformQuantizer",
    "AsymmetricUniformQuantizer",
    "DeadZoneQuantizer",
    "MidRiseQuantizer",
    "MidTreadQuantizer",
    "ObserverLike",
    "SymmetricUniformQuantizer",
]
