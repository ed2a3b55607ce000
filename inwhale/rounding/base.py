"""The interface every rounding strategy follows."""

from __future__ import annotations

import torch


class Rounding:
    """A rounding rule ``R``: maps each element of a floating tensor to an integer value.

    Subclasses implement :meth:`__call__`. The result keeps the input's floating dtype
    (integers stored as floats), so it can be added to a zero point and clamped before the
    cast to an integer dtype.
    """

    name: str = "rounding"

    def __call__(self, v: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def check_floating(v: torch.Tensor, name: str = "v") -> None:
    """Raise ``TypeError`` unless ``v`` is a floating-point tensor."""
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(v).__name__}")
    if not v.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {v.dtype}")
