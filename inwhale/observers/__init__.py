"""Observers: estimate the range of a tensor and turn it into quantization parameters.

An observer is an ``nn.Module``: ``obs(x)`` records statistics and returns ``x``;
``obs.calculate_qparams(bits=..., symmetric=...)`` returns :class:`~inwhale.QParams`.
All of them are per-tensor by default and per-channel / per-group with ``granularity=``.
"""

from inwhale.observers.base import Observer, StoringObserver
from inwhale.observers.histogram import HistogramObserver, kl_divergences, kl_threshold
from inwhale.observers.minmax import MinMaxObserver, MovingAverageMinMaxObserver
from inwhale.observers.mse import MSEObserver
from inwhale.observers.percentile import PercentileObserver, row_quantile

__all__ = [
    "HistogramObserver",
    "MSEObserver",
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "Observer",
    "PercentileObserver",
    "StoringObserver",
    "kl_divergences",
    "kl_threshold",
    "row_quantile",
]
