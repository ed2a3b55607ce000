"""Rounding strategies: the map R(v) from a real number to an integer.

Every uniform quantizer computes ``q = clamp(R(x / s) + z, q_min, q_max)``; only ``R``
changes between the strategies here. Each strategy is a small callable object
(``R(v) -> tensor of integer values``, same dtype as ``v``), so they can be passed to
:func:`inwhale.quantize` or to the quantizer classes as ``rounding=...``.

This package is a leaf: it imports nothing else from inwhale.
"""

from inwhale.rounding.base import Rounding
from inwhale.rounding.deadzone import DeadZoneRounding
from inwhale.rounding.directed import (
    AwayFromZeroRounding,
    CeilRounding,
    FloorRounding,
    TruncRounding,
)
from inwhale.rounding.nearest import NearestRounding
from inwhale.rounding.stochastic import StochasticRounding

__all__ = [
    "AwayFromZeroRounding",
    "CeilRounding",
    "DeadZoneRounding",
    "FloorRounding",
    "NearestRounding",
    "Rounding",
    "StochasticRounding",
    "TruncRounding",
]
