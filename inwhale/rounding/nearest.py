"""Round to nearest, with the two common rules for exact ties (…, −0.5, 0.5, 1.5, …)."""

from __future__ import annotations

import torch

from inwhale.rounding.base import Rounding, check_floating


def round_half_even(v: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer; exact ties go to the even neighbour (IEEE 754 default).

    ``R(v) = ⌊v⌉`` with ``R(k + ½) = k`` if ``k`` is even, else ``k + 1``. This is
    ``torch.round`` and ``std::nearbyint``, the rule used by PyTorch's quantization kernels.
    Ties-to-even has no bias on average: half of the ties go up, half go down.

    >>> round_half_even(torch.tensor([-1.5, -0.5, 0.5, 1.5, 2.5, 2.6])).tolist()
    [-2.0, -0.0, 0.0, 2.0, 2.0, 3.0]
    """
    check_floating(v)
    return torch.round(v)


def round_half_away(v: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer; exact ties go away from zero ("schoolbook" rounding).

    ``R(v) = sign(v) · ⌊|v| + ½⌋``. C's ``round()``; biased away from zero on ties.

    Edge case: ``|v| + ½`` is computed in the input dtype, and for the largest float just
    below ½ (0.49999997 in fp32) the sum rounds up to 1.0. We therefore correct with
    ``|v| - ⌊|v|⌋ >= ½`` instead of adding ½, which is exact for every finite input.

    >>> round_half_away(torch.tensor([-1.5, -0.5, 0.5, 1.5, 2.5, 0.49999997])).tolist()
    [-2.0, -1.0, 1.0, 2.0, 3.0, 0.0]
    """
    check_floating(v)
    a = v.abs()
    f = torch.floor(a)
    up = (a - f) >= 0.5  # a - floor(a) is exact in floating point (Sterbenz lemma)
    return torch.copysign(f + up.to(v.dtype), v)


class NearestRounding(Rounding):
    """Round to nearest. ``ties="even"`` (default, as PyTorch) or ``ties="away"`` (as C).

    >>> NearestRounding()(torch.tensor([0.5, 1.5, 2.5]))
    tensor([0., 2., 2.])
    >>> NearestRounding(ties="away")(torch.tensor([0.5, 1.5, 2.5]))
    tensor([1., 2., 3.])
    """

    def __init__(self, ties: str = "even") -> None:
        if ties not in ("even", "away"):
            raise ValueError(f"ties must be 'even' or 'away', got {ties!r}")
        self.ties = ties
        self.name = f"nearest (ties {ties})"

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        return round_half_even(v) if self.ties == "even" else round_half_away(v)

    def __repr__(self) -> str:
        return f"NearestRounding(ties={self.ties!r})"
