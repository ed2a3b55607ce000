"""Min–max observers: the range is the smallest and largest value seen."""

from __future__ import annotations

import torch

from inwhale.core.granularity import Granularity
from inwhale.observers.base import Observer


class MinMaxObserver(Observer):
    """Running minimum and maximum over every observed tensor, per group.

    ``min_val = min over batches of min(x)``, ``max_val`` likewise. Simple and exact, but one
    outlier sets the range for everything: a single value 100× larger than the rest costs
    about log2(100) ≈ 6.6 bits of resolution for all the others.

    >>> obs = MinMaxObserver()
    >>> _ = obs(torch.tensor([-1.0, 2.0])); _ = obs(torch.tensor([0.5, 3.0]))
    >>> [v.item() for v in obs.calculate_range()]
    [-1.0, 3.0]
    """

    def __init__(self, granularity: Granularity | None = None) -> None:
        super().__init__(granularity)
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))

    def batch_range(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-group ``(min, max)`` of one batch."""
        return self.granularity.reduce(x, "amin"), self.granularity.reduce(x, "amax")

    def _check_shape(self, lo: torch.Tensor) -> None:
        if self.n_observed and lo.shape != self.min_val.shape:
            raise ValueError(
                f"x gives parameters of shape {tuple(lo.shape)} but earlier inputs gave "
                f"{tuple(self.min_val.shape)}"
            )

    def observe(self, x: torch.Tensor) -> None:
        lo, hi = self.batch_range(x)
        self._check_shape(lo)
        if self.n_observed == 0:  # the first batch initialises the statistics
            self.min_val, self.max_val = lo, hi
        else:
            self.update(lo, hi)

    def update(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        """Fold one batch's range into the running range: here min of mins, max of maxes."""
        self.min_val = torch.minimum(self.min_val, lo)
        self.max_val = torch.maximum(self.max_val, hi)

    def calculate_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.min_val, self.max_val


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Exponential moving average of each batch's min and max.

    ``m ← m + c·(min(x) − m)`` with averaging constant ``c`` (0.01 as in PyTorch). Used
    during quantization-aware training, where one unusual batch should not set the range
    for good. The first batch initialises the averages.

    >>> obs = MovingAverageMinMaxObserver(averaging_constant=0.5)
    >>> _ = obs(torch.tensor([-1.0, 1.0])); _ = obs(torch.tensor([-3.0, 3.0]))
    >>> [v.item() for v in obs.calculate_range()]
    [-2.0, 2.0]
    """

    def __init__(self, averaging_constant: float = 0.01,
                 granularity: Granularity | None = None) -> None:
        super().__init__(granularity)
        if not 0.0 < averaging_constant <= 1.0:
            raise ValueError(f"averaging_constant must lie in (0, 1], got {averaging_constant}")
        self.averaging_constant = averaging_constant

    def update(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        """``m ← m + c·(batch − m)`` for both ends."""
        c = self.averaging_constant
        self.min_val = self.min_val + c * (lo - self.min_val)
        self.max_val = self.max_val + c * (hi - self.max_val)
