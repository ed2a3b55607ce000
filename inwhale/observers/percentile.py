"""Percentile observer: clip the rare extremes."""

from __future__ import annotations

import torch

from inwhale.core.granularity import Granularity
from inwhale.observers.base import StoringObserver


def row_quantile(rows: torch.Tensor, q: float) -> torch.Tensor:
    """The ``q``-quantile (0 ≤ q ≤ 1) of each row, with linear interpolation.

    Same definition as ``torch.quantile`` / ``numpy.quantile`` (method "linear"): sort the
    row, take position ``q·(n − 1)`` and interpolate between its neighbours. Written with
    ``sort`` because ``torch.quantile`` refuses inputs above 16M elements.

    >>> row_quantile(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), 0.5)
    tensor([2.5000])
    """
    s, _ = torch.sort(rows, dim=1)
    pos = q * (rows.shape[1] - 1)
    lo_i, frac = int(pos), pos - int(pos)
    hi_i = min(lo_i + 1, rows.shape[1] - 1)
    return s[:, lo_i] + frac * (s[:, hi_i] - s[:, lo_i])


class PercentileObserver(StoringObserver):
    """Range = the ``(100 − p)``-th and ``p``-th percentiles of the observed values.

    With ``p = 99.99`` the top and bottom 0.01 % of values are clipped: they take a larger
    error so that everything else gets a finer step.

    Args:
        percentile: ``p`` in (50, 100]; 100 is min–max.
        granularity: as for every observer.
        max_values: optional per-call subsampling (see ``StoringObserver``).

    >>> obs = PercentileObserver(percentile=90.0)
    >>> _ = obs(torch.arange(11.0))                  # 0, 1, …, 10
    >>> [v.item() for v in obs.calculate_range()]
    [1.0, 9.0]
    """

    def __init__(self, percentile: float = 99.99, granularity: Granularity | None = None,
                 max_values: int | None = None) -> None:
        super().__init__(granularity, max_values)
        if not 50.0 < percentile <= 100.0:
            raise ValueError(f"percentile must lie in (50, 100], got {percentile}")
        self.percentile = percentile

    def calculate_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.data()
        p = self.percentile / 100
        return (self.to_param_shape(row_quantile(d, 1 - p)),
                self.to_param_shape(row_quantile(d, p)))
