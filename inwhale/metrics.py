"""Error metrics: how far is the quantized tensor x̂ from the original x?

* ``mse(x, x̂) = mean((x − x̂)²)``
* ``sqnr_db(x, x̂) = 10·log10(mean(x²) / mean((x − x̂)²))`` — signal-to-quantization-noise
  ratio in decibels; each extra bit of a uniform quantizer adds about 6.02 dB.
* ``max_error(x, x̂) = max|x − x̂|`` — at most Δ/2 inside the range with nearest rounding.

All are computed in float64 and returned as Python floats.
"""

from __future__ import annotations

import math

import torch


def _pair(x: torch.Tensor, xhat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    for name, t in (("x", x), ("xhat", xhat)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if x.shape != xhat.shape:
        raise ValueError(
            f"x and xhat must have the same shape, got {tuple(x.shape)} and {tuple(xhat.shape)}"
        )
    if x.numel() == 0:
        raise ValueError("x is empty")
    return x.double(), xhat.to(x.device).double()


def mse(x: torch.Tensor, xhat: torch.Tensor) -> float:
    """Mean squared error ``mean((x − x̂)²)``.

    >>> mse(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.0]))
    0.125
    """
    x, xhat = _pair(x, xhat)
    return float((x - xhat).pow(2).mean())


def sqnr_db(x: torch.Tensor, xhat: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio ``10·log10(E[x²] / E[(x − x̂)²])`` in dB.

    Returns ``inf`` when ``x̂ == x`` exactly and ``-inf`` when the signal is all zeros but
    the error is not.

    >>> round(sqnr_db(torch.tensor([1.0, -1.0]), torch.tensor([0.9, -0.9])), 2)
    20.0
    """
    x, xhat = _pair(x, xhat)
    noise = float((x - xhat).pow(2).mean())
    signal = float(x.pow(2).mean())
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def max_error(x: torch.Tensor, xhat: torch.Tensor) -> float:
    """Largest absolute error ``max|x − x̂|``.

    >>> max_error(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.0]))
    0.5
    """
    x, xhat = _pair(x, xhat)
    return float((x - xhat).abs().max())


__all__ = ["max_error", "mse", "sqnr_db"]
