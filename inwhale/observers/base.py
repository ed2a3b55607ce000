"""What every observer shares: record statistics, return the input unchanged."""

from __future__ import annotations

import torch
from torch import nn

from inwhale.core.checks import check_tensor
from inwhale.core.granularity import Granularity, PerTensor
from inwhale.core.qparams import QParams, qparams_from_range


class Observer(nn.Module):
    """Base class: an ``nn.Module`` whose ``forward(x)`` records statistics of ``x`` and
    returns ``x`` unchanged, so it can sit inside a model during calibration.

    :meth:`calculate_qparams` turns the statistics into :class:`~inwhale.core.qparams.QParams`
    through :func:`~inwhale.core.qparams.qparams_from_range` (the only place scale and zero
    point are computed). Subclasses implement :meth:`observe` and :meth:`calculate_range`;
    search-based observers override :meth:`calculate_qparams` because the best range depends
    on the grid.

    Args:
        granularity: which elements share parameters (per-tensor by default); a per-channel
            observer is ``MinMaxObserver(granularity=PerAxis(0))``.
    """

    def __init__(self, granularity: Granularity | None = None) -> None:
        super().__init__()
        self.granularity = granularity or PerTensor()
        self.n_observed = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Record ``x`` (detached, float32) and return it unchanged."""
        check_tensor(x)
        self.observe(x.detach().float())
        self.n_observed += 1
        return x

    def observe(self, x: torch.Tensor) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def calculate_range(self) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        """``(min_val, max_val)`` per group, shaped like the parameters."""
        raise NotImplementedError

    def _check_seen(self) -> None:
        if self.n_observed == 0:
            raise ValueError(f"{type(self).__name__} has seen no data: call it on a tensor first")

    def calculate_qparams(
        self,
        *,
        bits: int = 8,
        symmetric: bool = False,
        signed: bool | None = None,
        narrow_range: bool = False,
    ) -> QParams:
        """Quantization parameters for the observed range (see ``qparams_from_range``)."""
        self._check_seen()
        lo, hi = self.calculate_range()
        return qparams_from_range(lo, hi, bits=bits, symmetric=symmetric, signed=signed,
                                  narrow_range=narrow_range, granularity=self.granularity)

    def extra_repr(self) -> str:
        return f"granularity={self.granularity}"


class StoringObserver(Observer):
    """An observer that keeps the observed values, group by group, for a search.

    Values are stored as rows ``(num_groups, n)`` (see ``Granularity.rows``) and concatenated
    along ``n`` across calls, so every call must produce the same number of groups.
    Memory grows with the data observed: keep calibration sets small (the book uses a few
    thousand tokens) or subsample with ``max_values`` (a seeded random subset per call, the same on
    every run).
    """

    def __init__(self, granularity: Granularity | None = None,
                 max_values: int | None = None) -> None:
        super().__init__(granularity)
        self.max_values = max_values
        self._rows: list[torch.Tensor] = []
        self._shape: torch.Size | None = None

    def observe(self, x: torch.Tensor) -> None:
        rows = self.granularity.rows(x)  # (G, n)
        shape = self.granularity.param_shape(x)
        if self._shape is not None and shape != self._shape:
            raise ValueError(
                f"x gives parameters of shape {tuple(shape)} but earlier inputs gave "
                f"{tuple(self._shape)}; observe tensors with the same grouped shape"
            )
        if self.max_values is not None and rows.shape[1] > self.max_values:
            # A seeded random subset, not a stride: a stride can line up with the channel
            # dimension (step 12 on 1536 channels sees only every 12th channel).
            g = torch.Generator().manual_seed(self.n_observed)
            keep = torch.randperm(rows.shape[1], generator=g)[: self.max_values]
            rows = rows[:, keep.sort().values.to(rows.device)]
        self._shape = shape
        self._rows.append(rows.cpu())

    def data(self) -> torch.Tensor:
        """All observed values: (num_groups, total_n)."""
        self._check_seen()
        return torch.cat(self._rows, dim=1)

    def to_param_shape(self, t: torch.Tensor) -> torch.Tensor:
        """Reshape a per-row vector (G,) to the granularity's parameter shape."""
        assert self._shape is not None
        return t.reshape(self._shape)

    def calculate_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.data()
        return self.to_param_shape(d.amin(dim=1)), self.to_param_shape(d.amax(dim=1))
