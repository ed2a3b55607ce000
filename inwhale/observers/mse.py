"""MSE observer: search the clipping range that minimises the quantization error."""

from __future__ import annotations

import torch

from inwhale.core.affine import fake_quantize
from inwhale.core.granularity import Granularity, PerAxis
from inwhale.core.qparams import QParams, qparams_from_range
from inwhale.observers.base import StoringObserver


class MSEObserver(StoringObserver):
    """Pick, per group, the clipped range ``α·[min, max]`` that minimises the MSE.

    For each candidate ``α`` in ``linspace(min_ratio, 1, n_candidates)`` we build the grid for
    ``[α·min, α·max]``, fake-quantize the observed values and measure
    ``E[(x − x̂)²]``; the best ``α`` wins. Shrinking the range trades clipping error on the
    few large values for rounding error on all the others; at low bit widths the optimum is
    well inside the min–max range (for a Gaussian at 4 bits, around 2.5σ–3σ instead of the
    max).

    >>> _ = torch.manual_seed(0); x = torch.randn(10_000)
    >>> obs = MSEObserver(); _ = obs(x)
    >>> qp = obs.calculate_qparams(bits=4, symmetric=True)
    >>> bool(qp.scale * 7.5 < x.abs().max())           # it clipped
    True
    """

    def __init__(self, n_candidates: int = 100, min_ratio: float = 0.2,
                 granularity: Granularity | None = None, max_values: int | None = None) -> None:
        super().__init__(granularity, max_values)
        if n_candidates < 1:
            raise ValueError(f"n_candidates must be >= 1, got {n_candidates}")
        if not 0.0 < min_ratio <= 1.0:
            raise ValueError(f"min_ratio must lie in (0, 1], got {min_ratio}")
        self.n_candidates, self.min_ratio = n_candidates, min_ratio

    @torch.no_grad()
    def calculate_qparams(self, *, bits: int = 8, symmetric: bool = False,
                          signed: bool | None = None, narrow_range: bool = False) -> QParams:
        d = self.data()  # (G, n)
        lo, hi = d.amin(dim=1, keepdim=True), d.amax(dim=1, keepdim=True)
        spec = dict(bits=bits, symmetric=symmetric, signed=signed, narrow_range=narrow_range)
        best_err = torch.full((d.shape[0], 1), float("inf"))
        best_alpha = torch.ones(d.shape[0], 1)
        for alpha in torch.linspace(self.min_ratio, 1.0, self.n_candidates):
            qp = qparams_from_range(alpha * lo, alpha * hi, granularity=PerAxis(0), **spec)
            err = (fake_quantize(d, qp) - d).pow(2).mean(dim=1, keepdim=True)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_alpha = torch.where(better, alpha, best_alpha)
        self.best_alpha = best_alpha.squeeze(1)
        return qparams_from_range(self.to_param_shape(best_alpha.squeeze(1) * lo.squeeze(1)),
                                  self.to_param_shape(best_alpha.squeeze(1) * hi.squeeze(1)),
                                  granularity=self.granularity, **spec)
