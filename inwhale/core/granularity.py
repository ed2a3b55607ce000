"""Granularity: which elements of a tensor share one scale and zero point.

A granularity answers one question: *how do we group the elements of ``x`` so that each
group gets its own quantization parameters?* Each object here turns ``x`` into a "grouped
view" ``xv`` in which the groups lie along some dimensions (the reduced dims), so that a
parameter tensor of the reduced shape broadcasts against ``xv``:

================  =========================  ======================================
granularity        example: x of shape (O, I)  parameter shape (broadcasts against xv)
================  =========================  ======================================
``PerTensor()``    one scale for all           ``()``
``PerAxis(0)``     one scale per output row    ``(O, 1)``
``PerGroup(128)``  per row, per 128 columns    ``(O, ceil(I/128), 1)`` on view (O, G, 128)
``PerToken()``     one per row of activations  ``(..., T, 1)``
================  =========================  ======================================

Ragged groups. When ``group_size`` does not divide the axis (SmolLM2's 576 columns with
groups of 128 give 4.5 groups) the **last group is shorter**: 576 = 4·128 + 64, so there
are 5 groups and the fifth holds 64 columns. Internally the axis is padded to 640 by
repeating its last element ("edge padding"); the padded positions are dropped again by
:meth:`PerGroup.unview`. Edge padding leaves min, max and abs-max of the short group exactly
as they are; search-based observers see the last element of that group counted extra times.
A ``group_size`` larger than the axis is an error (use :class:`PerAxis` instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inwhale.core.checks import check_group_size


def normalize_axis(axis: int, ndim: int, name: str = "axis") -> int:
    """Return ``axis`` as a non-negative index into a tensor with ``ndim`` dims.

    >>> normalize_axis(-1, 3)
    2
    """
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"{name} must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for a tensor with {ndim} dims")
    return axis % ndim


class Granularity:
    """Base class. Subclasses define :meth:`view`, :meth:`reduce_dims` and :meth:`unview`."""

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """Reshape ``x`` so that each group's elements lie along :meth:`reduce_dims`."""
        return x

    def reduce_dims(self, xv: torch.Tensor) -> tuple[int, ...]:
        """Dims of the grouped view to reduce over (keepdim) to get one value per group."""
        raise NotImplementedError

    def unview(self, yv: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """Undo :meth:`view`: return a tensor of the original ``shape``."""
        return yv

    def reduce(self, x: torch.Tensor, op: str) -> torch.Tensor:
        """Reduce ``x`` per group with ``op`` in {"amin", "amax"}; result broadcasts on the view.

        >>> PerAxis(0).reduce(torch.tensor([[1., -2.], [3., 4.]]), "amax")
        tensor([[1.],
                [4.]])
        """
        xv = self.view(x)
        return getattr(torch, op)(xv, dim=self.reduce_dims(xv), keepdim=True)

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """All groups as the rows of a matrix: shape (num_groups, group_numel).

        Row ``i`` holds the elements that share parameter ``i`` (in the row-major order of
        :meth:`param_shape`). Observers that search over the data use this form.

        >>> PerAxis(1).rows(torch.tensor([[1., 2.], [3., 4.]]))
        tensor([[1., 3.],
                [2., 4.]])
        """
        xv = self.view(x)
        red = self.reduce_dims(xv)
        keep = [d for d in range(xv.ndim) if d not in red]
        n_groups = int(torch.tensor([xv.shape[d] for d in keep]).prod()) if keep else 1
        return xv.permute(*keep, *red).reshape(n_groups, -1)

    def param_shape(self, x: torch.Tensor) -> torch.Size:
        """Shape of the scale / zero-point tensor for ``x`` (broadcasts on the view)."""
        xv = self.view(x)
        red = self.reduce_dims(xv)
        return torch.Size(1 if d in red else n for d, n in enumerate(xv.shape))

    def num_groups(self, shape: torch.Size | tuple[int, ...]) -> int:
        """How many parameter sets a tensor of ``shape`` needs."""
        probe = self.reduce(torch.zeros(shape), "amax")
        return probe.numel()


@dataclass(frozen=True)
class PerTensor(Granularity):
    """One scale and zero point for the whole tensor."""

    def reduce_dims(self, xv: torch.Tensor) -> tuple[int, ...]:
        return tuple(range(xv.ndim))

    def reduce(self, x: torch.Tensor, op: str) -> torch.Tensor:
        """Whole-tensor reduction, returned as a 0-d tensor."""
        return getattr(torch, op)(x)

    def param_shape(self, x: torch.Tensor) -> torch.Size:
        """Per-tensor parameters are 0-d."""
        return torch.Size()


@dataclass(frozen=True)
class PerAxis(Granularity):
    """One scale per index along ``axis`` (per-channel): e.g. ``PerAxis(0)`` for the rows
    (output channels) of a ``Linear`` weight of shape (out_features, in_features)."""

    axis: int = 0

    def reduce_dims(self, xv: torch.Tensor) -> tuple[int, ...]:
        a = normalize_axis(self.axis, xv.ndim)
        return tuple(d for d in range(xv.ndim) if d != a)


@dataclass(frozen=True)
class PerToken(Granularity):
    """One scale per token: every position of the last dim shares it, each row differs.

    For activations of shape (B, T, C) the parameters have shape (B, T, 1).
    """

    def reduce_dims(self, xv: torch.Tensor) -> tuple[int, ...]:
        if xv.ndim == 0:
            raise ValueError("PerToken needs a tensor with at least one dim")
        return (xv.ndim - 1,)


@dataclass(frozen=True)
class PerGroup(Granularity):
    """Groups (blocks) of ``group_size`` consecutive elements along ``axis``.

    ``PerGroup(128)`` on a weight of shape (O, I) gives each row ``ceil(I/128)`` scales.
    The view moves ``axis`` last and splits it: (..., n) -> (..., ceil(n/g), g).
    """

    group_size: int = 128
    axis: int = -1

    def __post_init__(self) -> None:
        check_group_size(self.group_size, allow_none=False)

    def _axis(self, x: torch.Tensor) -> int:
        a = normalize_axis(self.axis, x.ndim)
        if x.shape[a] < self.group_size:
            raise ValueError(
                f"group_size={self.group_size} is larger than axis {self.axis} of length "
                f"{x.shape[a]}; use a smaller group or PerAxis"
            )
        return a

    def view(self, x: torch.Tensor) -> torch.Tensor:
        a = self._axis(x)
        xm = x.movedim(a, -1)  # (..., n)
        n, g = xm.shape[-1], self.group_size
        pad = -n % g
        if pad:  # edge padding: repeat the last element (keeps min/max of the short group)
            xm = torch.cat([xm, xm[..., -1:].expand(*xm.shape[:-1], pad)], dim=-1)
        return xm.reshape(*xm.shape[:-1], (n + pad) // g, g)  # (..., G, g)

    def reduce_dims(self, xv: torch.Tensor) -> tuple[int, ...]:
        return (xv.ndim - 1,)

    def unview(self, yv: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        a = normalize_axis(self.axis, len(shape))
        n = shape[a]
        ym = yv.reshape(*yv.shape[:-2], -1)[..., :n]  # (..., n)
        return ym.movedim(-1, a)


__all__ = ["Granularity", "PerAxis", "PerGroup", "PerTensor", "PerToken", "normalize_axis"]

