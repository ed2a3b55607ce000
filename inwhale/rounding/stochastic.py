"""Stochastic rounding: round up with probability equal to the fractional part."""

from __future__ import annotations

import torch

from inwhale.rounding.base import Rounding, check_floating


class StochasticRounding(Rounding):
    """Unbiased random rounding: ``R(v) = ⌊v⌋ + Bernoulli(v − ⌊v⌋)``.

    ``E[R(v)] = ⌊v⌋ + (v − ⌊v⌋) = v``: the *expected* error is exactly zero for every
    input, which is why it is used for low-precision gradients and accumulators, where
    nearest rounding's systematic error for small updates would make them vanish.
    The price is a larger error variance: ``f(1−f)`` (in units of Δ²) instead of at most
    ``min(f, 1−f)²``.

    Args:
        seed: seed of the private ``torch.Generator``; the same seed gives the same draws.
            ``None`` draws from torch's global generator.

    The random numbers are drawn on the CPU and moved to ``v``'s device, so a seed gives the
    same result on every device.

    >>> r = StochasticRounding(seed=0)
    >>> draws = r(torch.full((100_000,), 0.25))
    >>> round(draws.mean().item(), 2)
    0.25
    """

    name = "stochastic"

    def __init__(self, seed: int | None = None) -> None:
        if seed is not None and not isinstance(seed, int):
            raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        check_floating(v)
        low = torch.floor(v)
        frac = v - low  # in [0, 1)
        u = torch.rand(v.shape, generator=self.generator, dtype=torch.float32)
        return low + (u.to(v.device) < frac).to(v.dtype)

    def __repr__(self) -> str:
        return f"StochasticRounding(seed={self.seed})"
