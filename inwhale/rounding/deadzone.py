"""Dead-zone rounding: nearest rounding with a widened bin around zero."""

from __future__ import annotations

import torch

from inwhale.rounding.base import Rounding, check_floating


class DeadZoneRounding(Rounding):
    """``R(v) = sign(v) · ⌊|v| + ρ⌋`` with a rounding offset ``ρ ∈ [0, ½]``.

    ``ρ = ½`` is nearest rounding (ties away). A smaller ``ρ`` widens the zero bin to
    ``|v| < 1 − ρ`` (width ``2(1 − ρ)`` steps instead of 1) and shifts every other decision
    threshold towards larger magnitudes by the same amount. Video codecs (H.264 uses
    ρ = 1/3 for intra, 1/6 for inter blocks) and JPEG 2000 use it because many small values
    becoming exactly zero is cheap to entropy-code.

    >>> DeadZoneRounding(rho=0.25)(torch.tensor([-0.7, 0.5, 0.74, 0.76, 1.6]))
    tensor([-0., 0., 0., 1., 1.])
    """

    name = "dead zone"

    def __init__(self, rho: float = 1 / 3) -> None:
        if not 0.0 <= float(rho) <= 0.5:
            raise ValueError(f"rho must lie in [0, 0.5], got {rho}")
        self.rho = float(rho)

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        check_floating(v)
        a = v.abs()
        whole = torch.floor(a)
        # ⌊|v| + ρ⌋ = ⌊|v|⌋ + [frac ≥ 1 − ρ]; written this way because |v| + ρ can round up
        # in floating point (0.49999997 + 0.5 == 1.0 in float32).
        up = (a - whole) >= 1.0 - self.rho
        return torch.copysign(whole + up.to(v.dtype), v)

    def __repr__(self) -> str:
        return f"DeadZoneRounding(rho={self.rho:g})"
