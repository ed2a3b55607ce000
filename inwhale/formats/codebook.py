"""Scalar code books: map values to the index of the nearest level, and back.

Every non-uniform scalar quantizer in :mod:`inwhale.formats` (Lloyd–Max, k-means weight
sharing, learned lookup tables, NF4) stores a sorted table of ``L`` levels
``y_0 < y_1 < … < y_{L−1}`` and, per value, the index of its level. With nearest-level
assignment the decision thresholds are the midpoints

    t_i = (y_{i−1} + y_i) / 2,      code(x) = #{i : t_i < x}      (i = 1 … L−1)

so a value exactly on a midpoint goes to the lower level. Storage: ``⌈log₂ L⌉`` bits per
value plus the table (``32·L`` bits in float32).

>>> levels = torch.tensor([-1.0, 0.0, 0.5, 2.0])
>>> nearest_codes(torch.tensor([-0.6, -0.5, 0.3, 1.3, 9.0]), levels).tolist()
[0, 0, 2, 3, 3]
"""

from __future__ import annotations

import math

import torch

from inwhale.core.checks import check_codes, check_tensor


def _check_levels(levels: torch.Tensor) -> torch.Tensor:
    if not isinstance(levels, torch.Tensor) or levels.ndim != 1 or levels.numel() < 1:
        raise ValueError("levels must be a non-empty 1-D tensor")
    if levels.numel() > 1 and not bool((levels[1:] > levels[:-1]).all()):
        raise ValueError("levels must be strictly increasing")
    return levels


def midpoints(levels: torch.Tensor) -> torch.Tensor:
    """Decision thresholds ``t_i = (y_{i−1} + y_i)/2`` of a sorted code book (``L − 1``)."""
    levels = _check_levels(levels)
    return (levels[1:] + levels[:-1]) / 2


def nearest_codes(x: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Index of the nearest level for every element of ``x`` (uint8 if ``L ≤ 256``).

    Shapes: ``x`` any shape, ``levels`` (L,) sorted; result has ``x``'s shape.
    Ties (exactly on a midpoint) go to the lower level.
    """
    check_tensor(x, "x", allow_empty=True)
    check_tensor(levels, "levels")
    t = midpoints(levels).to(device=x.device, dtype=x.dtype)
    codes = torch.bucketize(x.contiguous(), t, right=False)
    return codes.to(torch.uint8 if levels.numel() <= 256 else torch.int32)


def dequantize_codes(codes: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Table lookup ``x̂ = levels[code]``, ``codes``' shape, ``levels``' dtype."""
    check_tensor(levels, "levels")
    check_codes(codes, "codes", 0, levels.numel() - 1)
    return levels.to(codes.device)[codes.long()]


def codebook_storage_bits(numel: int, n_levels: int, table_bits: int = 32) -> int:
    """Bits to store ``numel`` codes of ``⌈log₂ L⌉`` bits plus an ``L``-entry table.

    >>> codebook_storage_bits(1000, 16)          # 1000·4 + 16·32
    4512
    """
    return numel * max(1, math.ceil(math.log2(n_levels))) + n_levels * table_bits


__all__ = ["codebook_storage_bits", "dequantize_codes", "midpoints", "nearest_codes"]
