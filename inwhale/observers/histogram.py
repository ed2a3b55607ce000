"""Histogram observer with KL-divergence (entropy) calibration.

The idea (Migacz, "8-bit Inference with TensorRT", 2017): quantizing to ``L`` levels is
like describing the distribution of ``|x|`` with ``L`` bars. For each candidate clipping
threshold ``T`` we compare two distributions over the histogram bins below ``T``:

* ``P``: the reference — the histogram up to ``T`` with every value above ``T`` piled into
  the last bin (what clipping does to the data);
* ``Q``: what ``L`` levels can express — the same bins merged into ``L`` equal chunks, each
  chunk's mass spread evenly over its non-empty bins;

and pick the ``T`` whose ``KL(P‖Q) = Σ P log(P/Q)`` is smallest. A large ``T`` makes each
chunk coarse (Q differs from P inside the range); a small ``T`` piles much mass into the
last bin (P itself is distorted). The minimum balances the two, much like the MSE
observer, but measured in information rather than squared error.
"""

from __future__ import annotations

import torch

from inwhale.core.granularity import Granularity
from inwhale.core.qparams import QParams, qparams_from_range
from inwhale.observers.base import StoringObserver


def kl_divergences(hist: torch.Tensor, levels: int) -> torch.Tensor:
    """``KL(P_i ‖ Q_i)`` for every candidate number of bins ``i = levels … len(hist)``.

    Args:
        hist: (B,) histogram counts of ``|x|`` on ``[0, max|x|]``.
        levels: ``L``, the number of quantization levels on one side of zero.

    Returns:
        (B − L + 1,) tensor; entry ``j`` is for threshold ``(L + j)`` bins.

    All candidates are evaluated at once as the rows of a (candidates, B) matrix.
    """
    hist = hist.double()
    B = hist.numel()
    i = torch.arange(levels, B + 1, dtype=torch.float64).unsqueeze(1)  # (C, 1) bins kept
    k = torch.arange(B, dtype=torch.float64).unsqueeze(0)  # (1, B) bin index
    inside = k < i  # (C, B)
    p = torch.where(inside, hist, 0.0)
    outliers = (hist * ~inside).sum(dim=1)  # mass beyond the threshold
    p[torch.arange(len(i)), (i.squeeze(1) - 1).long()] += outliers  # pile into the last bin
    chunk = torch.where(inside, torch.floor(k * levels / i), levels).long()  # (C, B)
    kept = torch.where(inside, hist, 0.0)  # Q is built from the bins without the outliers
    nonzero = (kept > 0).double()
    zeros = torch.zeros(len(i), levels + 1, dtype=torch.float64)
    chunk_mass = zeros.scatter_add(1, chunk, kept)  # (C, L+1) mass of each chunk
    chunk_bins = zeros.scatter_add(1, chunk, nonzero)  # non-empty bins in each chunk
    spread = chunk_mass.gather(1, chunk) / chunk_bins.gather(1, chunk).clamp(min=1)
    q = torch.where(kept > 0, spread, 0.0)
    p = p / p.sum(dim=1, keepdim=True)
    q = q / q.sum(dim=1, keepdim=True).clamp(min=1e-300)
    q = torch.where((p > 0) & (q == 0), 1e-10, q)  # smooth: P has mass where Q has none
    terms = torch.where(p > 0, p * torch.log(p / q.clamp(min=1e-300)), 0.0)
    return terms.sum(dim=1)


def kl_threshold(values: torch.Tensor, bins: int = 2048, levels: int = 128) -> torch.Tensor:
    """The clipping threshold ``T`` for ``|values|`` that minimises ``KL(P‖Q)``.

    >>> _ = torch.manual_seed(0)
    >>> x = torch.distributions.Laplace(0.0, 1.0).sample((200_000,))
    >>> round(x.abs().max().item(), 1), round(kl_threshold(x, levels=8).item(), 1)  # 4 bits
    (11.2, 6.3)
    """
    a = values.abs().double().flatten()
    amax = a.max()
    if amax == 0:
        return amax.float()
    hist = torch.histc(a, bins=bins, min=0.0, max=float(amax))
    j = int(torch.argmin(kl_divergences(hist, levels)))
    return (amax * (levels + j) / bins).float()


class HistogramObserver(StoringObserver):
    """Clipping range from KL-divergence calibration on the histogram of ``|x|``.

    The threshold ``T`` is found per group on ``|x|`` with ``2^(bits−1)`` levels (the
    number of positive codes of a signed grid); the range is then ``[max(min, −T),
    min(max, T)]``, so an asymmetric grid never extends past the data.

    Args:
        bins: histogram bins (2048 as in TensorRT; fewer is faster for many channels).
        granularity, max_values: as for every storing observer.
    """

    def __init__(self, bins: int = 2048, granularity: Granularity | None = None,
                 max_values: int | None = None) -> None:
        super().__init__(granularity, max_values)
        if bins < 16:
            raise ValueError(f"bins must be >= 16, got {bins}")
        self.bins = bins

    @torch.no_grad()
    def calculate_qparams(self, *, bits: int = 8, symmetric: bool = False,
                          signed: bool | None = None, narrow_range: bool = False) -> QParams:
        if bits < 2:
            raise ValueError(f"bits must be >= 2 for KL calibration, got {bits}")
        d = self.data()
        levels = min(2 ** (bits - 1), self.bins)
        t = torch.stack([kl_threshold(row, self.bins, levels) for row in d])
        lo = torch.maximum(d.amin(dim=1), -t)
        hi = torch.minimum(d.amax(dim=1), t)
        return qparams_from_range(self.to_param_shape(lo), self.to_param_shape(hi), bits=bits,
                                  symmetric=symmetric, signed=signed, narrow_range=narrow_range,
                                  granularity=self.granularity)
