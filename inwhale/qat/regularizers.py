"""Loss shaping for quantization: kurtosis regularization (Shkolnik et al., 2020).

Weights trained normally are roughly Gaussian or heavier-tailed; a uniform quantizer
prefers a *uniform* distribution (no tails to clip, every level used). Kurtosis measures the
tails,

    Kurt(W) = E[((W − μ)/σ)⁴]      (3 for a Gaussian, 1.8 for a uniform distribution),

and the regularizer pulls every layer's kurtosis towards a target ``K_T`` (the paper uses
1.8):

    R = (1/L) Σ_ℓ (Kurt(W_ℓ) − K_T)²,      loss = CE + λ·R.

The resulting network is more robust to post-training quantization at any bit width.

Glossary: ``W_ℓ`` weight of layer ℓ, ``μ, σ`` its mean and (population) standard deviation,
``K_T`` target kurtosis, ``L`` number of layers, ``λ`` strength.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from inwhale import metrics
from inwhale.core.checks import check_tensor

__all__ = ["kurtosis", "kurtosis_loss"]


def kurtosis(w: torch.Tensor) -> torch.Tensor:
    """Pearson kurtosis ``E[((w − μ)/σ)⁴]`` (population σ; differentiable).

    >>> round(float(kurtosis(torch.tensor([-1.0, 1.0]))), 4)     # two points: kurtosis 1
    1.0
    """
    check_tensor(w, "w")
    if w.numel() < 2:
        raise ValueError("kurtosis needs at least two values")
    return metrics.kurtosis(w)          # the one implementation; checked here as ``w``


def kurtosis_loss(weights: Iterable[torch.Tensor], target: float = 1.8) -> torch.Tensor:
    """``(1/L) Σ (Kurt(W_ℓ) − K_T)²`` over the given weights."""
    ws = list(weights)
    if not ws:
        raise ValueError("weights must not be empty")
    for i, w in enumerate(ws):
        check_tensor(w, f"weights[{i}]")
    return torch.stack([(kurtosis(w) - target) ** 2 for w in ws]).mean()
