"""Incremental Network Quantization, INQ (Zhou et al., 2017).

Weights become powers of two or zero, ``P = {±2^n : n₂ ≤ n ≤ n₁} ∪ {0}`` with (the paper's
eq. 2–3, ``b`` bits, one of them for zero)

    n₁ = ⌊log₂(4s/3)⌋,   s = max|W|,      n₂ = n₁ + 1 − 2^(b−1)/2,

each weight going to the nearest element of ``P`` (``β`` if ``(α+β)/2 ≤ |w| < 3β/2`` for
neighbours ``α < β``; below ``2^(n₂−1)`` it becomes 0). Instead of quantizing everything at
once, INQ works in rounds with accumulated portions (e.g. 50 %, 75 %, 87.5 %, 100 %):

1. **partition** — the largest-magnitude weights not yet quantized, up to the portion;
2. **group-wise quantization** — quantize them and freeze them;
3. **re-training** — train the remaining float weights to compensate.

Glossary: ``W`` layer weight, ``s`` its largest magnitude, ``n₁, n₂`` largest and smallest
exponent, ``P`` the power-of-two set, ``T`` the mask of frozen (quantized) weights.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import torch
from torch import nn

from inwhale.core.checks import check_bits, check_tensor
from inwhale.formats.log import pot_fake_quantize

__all__ = ["INQ", "pot_exponents", "pot_quantize"]


def pot_exponents(max_abs: float, bits: int) -> tuple[int, int]:
    """``(n₁, n₂)`` of the INQ power-of-two set.

    >>> pot_exponents(0.9, 5)           # 4·0.9/3 = 1.2 → n₁ = 0; n₂ = 0 + 1 − 8 = −7
    (0, -7)
    """
    if bits < 2:
        raise ValueError(f"bits must be >= 2 (one bit encodes zero), got {bits}")
    if max_abs <= 0:
        raise ValueError(f"max_abs must be positive, got {max_abs}")
    n1 = math.floor(math.log2(4 * max_abs / 3))
    return n1, n1 + 1 - 2 ** (bits - 1) // 2


def _inq_round(w: torch.Tensor, bits: int, n1: int, n2: int) -> torch.Tensor:
    """Nearest element of ``P`` (ties go up): the formats' power-of-two quantizer with
    INQ's exponent range and nearest-level (not log-domain) rounding."""
    return pot_fake_quantize(w, bits, e_max=n1, e_min=n2, log_domain=False)


def pot_quantize(w: torch.Tensor, n1: int, n2: int) -> torch.Tensor:
    """Deprecated: :func:`inwhale.formats.pot_fake_quantize` with ``e_max=n1, e_min=n2,
    log_domain=False`` (the library's one power-of-two quantizer).

    Nearest element of ``{0} ∪ {±2^n : n₂ ≤ n ≤ n₁}`` (ties go up).

    >>> import warnings; warnings.simplefilter("ignore", DeprecationWarning)
    >>> pot_quantize(torch.tensor([0.0, 0.3, -0.74, 0.76, 5.0, 0.001]), 0, -3)
    tensor([ 0.0000,  0.2500, -0.5000,  1.0000,  1.0000,  0.0000])
    """
    warnings.warn("inwhale.qat.pot_quantize(w, n1, n2) is deprecated; use "
                  "inwhale.formats.pot_fake_quantize(w, bits, e_max=n1, e_min=n2, "
                  "log_domain=False)", DeprecationWarning, stacklevel=2)
    check_tensor(w, "w", allow_empty=True)
    if w.numel() == 0 or n2 > n1:                  # no power-of-two level: everything is 0
        return torch.zeros_like(w)
    return _inq_round(w, 1 + (n1 - n2 + 1).bit_length(), n1, n2)


class INQ:
    """Drive INQ over some weights: ``step(portion)`` quantizes and freezes, training between.

    Frozen weights get zero gradient (a hook) and are re-written after each optimizer step
    by :meth:`restore_` (so weight decay or momentum cannot move them).

    Args:
        weights: the parameters to quantize (e.g. every layer's ``weight``).
        bits: bits per weight (with zero).
    """

    def __init__(self, weights: Iterable[nn.Parameter], bits: int = 5) -> None:
        self.weights = list(weights)
        if not self.weights:
            raise ValueError("weights must not be empty")
        self.bits = check_bits(bits)
        for i, w in enumerate(self.weights):
            check_tensor(w, f"weights[{i}]")
        self.exps = [pot_exponents(float(w.detach().abs().max()), bits) for w in self.weights]
        self.masks = [torch.zeros_like(w, dtype=torch.bool) for w in self.weights]
        self.values = [torch.zeros_like(w) for w in self.weights]
        for i, w in enumerate(self.weights):
            w.register_hook(lambda g, i=i: g * (~self.masks[i]).to(g.dtype))

    @torch.no_grad()
    def step(self, portion: float) -> None:
        """Quantize and freeze the largest weights until ``portion`` of each is frozen."""
        if not 0 < portion <= 1:
            raise ValueError(f"portion must be in (0, 1], got {portion}")
        for i, w in enumerate(self.weights):
            k = math.ceil(portion * w.numel())
            order = torch.argsort(w.abs().flatten(), descending=True, stable=True)
            mask = self.masks[i].flatten().clone()
            mask[order[:k]] = True
            self.masks[i] = mask.view_as(w)
            q = _inq_round(w, self.bits, *self.exps[i])
            self.values[i] = torch.where(self.masks[i], q, self.values[i])
        self.restore_()

    @torch.no_grad()
    def restore_(self) -> None:
        """Write the frozen quantized values back into the weights (call after each step)."""
        for w, m, v in zip(self.weights, self.masks, self.values, strict=True):
            w.copy_(torch.where(m, v, w))

    def frozen_fraction(self) -> float:
        """Share of all weights that are quantized and frozen."""
        n = sum(m.numel() for m in self.masks)
        return sum(int(m.sum()) for m in self.masks) / n
