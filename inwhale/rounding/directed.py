"""Directed rounding: always down, always up, toward zero, away from zero.

These are biased (the mean error is not zero) and have twice the worst-case error of
nearest rounding (a full step Δ instead of Δ/2); they appear in hardware (truncating a
fixed-point product is free) and in mid-rise quantizers.
"""

from __future__ import annotations

import torch

from inwhale.rounding.base import Rounding, check_floating


class FloorRounding(Rounding):
    """``R(v) = ⌊v⌋``, toward −∞. Error in (−1, 0]·Δ: mean bias −Δ/2.

    >>> FloorRounding()(torch.tensor([-1.5, -0.2, 0.7, 2.0])).tolist()
    [-2.0, -1.0, 0.0, 2.0]
    """

    name = "floor"

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        check_floating(v)
        return torch.floor(v)


class CeilRounding(Rounding):
    """``R(v) = ⌈v⌉``, toward +∞.

    >>> CeilRounding()(torch.tensor([-1.5, -0.2, 0.7, 2.0])).tolist()
    [-1.0, -0.0, 1.0, 2.0]
    """

    name = "ceil"

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        check_floating(v)
        return torch.ceil(v)


class TruncRounding(Rounding):
    """``R(v) = sign(v)·⌊|v|⌋``, toward zero (truncation, what a C cast does).

    >>> TruncRounding()(torch.tensor([-1.5, -0.2, 0.7, 2.0])).tolist()
    [-1.0, -0.0, 0.0, 2.0]
    """

    name = "truncate"

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        check_floating(v)
        return torch.trunc(v)


class AwayFromZeroRounding(Rounding):
    """``R(v) = sign(v)·⌈|v|⌉``, away from zero: every non-integer grows in magnitude.

    >>> AwayFromZeroRounding()(torch.tensor([-1.5, -0.2, 0.7, 2.0])).tolist()
    [-2.0, -1.0, 1.0, 2.0]
    """

    name = "away from zero"

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        check_floating(v)
        return torch.copysign(torch.ceil(v.abs()), v)
