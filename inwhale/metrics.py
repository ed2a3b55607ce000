"""Error metrics: how far is the quantized tensor x̂ from the original x?

* ``mse(x, x̂) = mean((x − x̂)²)``
* ``sqnr_db(x, x̂) = 10·log10(mean(x²) / mean((x − x̂)²))`` — signal-to-quantization-noise
  ratio in decibels; each extra bit of a uniform quantizer adds about 6.02 dB.
* ``max_error(x, x̂) = max|x − x̂|`` — at most Δ/2 inside the range with nearest rounding.
* ``relative_error(x, x̂) = ‖x − x̂‖_F / ‖x‖_F`` — scale-free, for comparing layers.

All take the reference first, ``(x, x̂)``, are computed in float64 and returned as Python
floats. One distribution statistic lives here too, because several parts need it:

* ``kurtosis(x) = E[((x − μ)/σ)⁴]`` (3 for a Gaussian) — heavy tails and outliers (LLM weight
  and activation statistics, rotations, and the kurtosis regularizer of QAT, which needs it
  differentiable: it returns a tensor).
"""

from __future__ import annotations

import math

import torch

from inwhale.core.checks import check_tensor


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


def relative_error(x: torch.Tensor, xhat: torch.Tensor) -> float:
    """Relative Frobenius error ``‖x − x̂‖_F / ‖x‖_F`` (reference ``x`` first).

    ``0.0`` when ``x̂ == x``; ``inf`` when ``x`` is all zeros but ``x̂`` is not.

    >>> relative_error(torch.tensor([3.0, 4.0]), torch.tensor([3.0, 3.0]))   # 1 / 5
    0.2
    """
    check_tensor(x, "x"), check_tensor(xhat, "xhat")
    x, xhat = _pair(x.detach(), xhat.detach())   # a number, not a graph node
    diff, ref = float((x - xhat).norm()), float(x.norm())
    if diff == 0.0:
        return 0.0
    return diff / ref if ref > 0 else math.inf


def kurtosis(x: torch.Tensor, *, excess: bool = False) -> torch.Tensor:
    """Pearson kurtosis ``E[((x − μ)/σ)⁴]`` of all values of ``x`` (population ``σ``).

    3 for a Gaussian, 1.8 for a uniform distribution, 1 (the minimum) for two equally likely
    values; large for heavy tails. ``excess=True`` subtracts 3 (0 for a Gaussian).
    Differentiable; a 0-d tensor in ``x``'s precision — ``float(kurtosis(x.double()))`` for a
    float64 measurement. A constant ``x`` (``σ = 0``) gives 0 (``−3`` excess).

    Args:
        x: floating tensor with at least two values, any shape.
        excess: subtract 3.

    Raises:
        TypeError: ``x`` is not a floating tensor.
        ValueError: fewer than two values, or NaN/inf.

    >>> float(kurtosis(torch.tensor([-1.0, 1.0, -1.0, 1.0])))   # two-point law: the minimum
    1.0
    >>> float(kurtosis(torch.tensor([-1.0, 1.0]), excess=True))
    -2.0
    """
    check_tensor(x, "x")
    if x.numel() < 2:
        raise ValueError(f"x must have at least 2 values, got {x.numel()}")
    z = (x - x.mean()) / x.std(unbiased=False).clamp(min=1e-12)
    k = z.pow(4).mean()
    return k - 3 if excess else k


__all__ = ["kurtosis", "max_error", "mse", "relative_error", "sqnr_db"]
