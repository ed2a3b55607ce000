"""Relaxed Quantization (Louizos, Reisser, Blankevoort, Welling & Gavves, ICLR 2019).

Instead of a straight-through estimator, make quantization itself differentiable. Add
logistic noise to the input, ``x̃ = x + ε``, ``ε ~ Logistic(0, σ)``, and ask which grid
cell ``x̃`` falls into. Grid point ``g_i = s·q_i`` (``q_i ∈ [q_min, q_max]``) owns the
cell ``[g_i − s/2, g_i + s/2)`` (the outermost cells extend to ±∞), so (the paper's eq. 4)

    p_i = Sigm((g_i + s/2 − x)/σ) − Sigm((g_i − s/2 − x)/σ),      Σ_i p_i = 1.

Sampling a grid point from ``p`` is relaxed with the **concrete / Gumbel-softmax**
distribution at temperature ``τ``,

    π = softmax((log p + G)/τ),     x̂ = Σ_i π_i g_i,      G ~ Gumbel(0, 1),

which is smooth in ``x``, ``s`` and ``σ``. As ``σ, τ → 0`` it becomes nearest rounding;
at test time the deterministic grid point (nearest rounding, the core's grid) is used.

Glossary: ``x`` input, ``s`` learned step, ``g_i`` grid points, ``σ`` noise scale (here
``σ = s·softplus(ρ)``, learned through ``ρ``), ``p_i`` cell probabilities, ``τ``
temperature, ``π`` relaxed one-hot, ``x̂`` output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from inwhale.core.checks import check_bits, check_tensor
from inwhale.core.qparams import choose_qparams, integer_range
from inwhale.nn.fake_quant import fake_quantize_ste

__all__ = ["RelaxedQuantizer", "cell_probabilities", "relaxed_quantize"]


def cell_probabilities(x: torch.Tensor, grid: torch.Tensor, step: torch.Tensor,
                       sigma: torch.Tensor) -> torch.Tensor:
    """``p_i`` of every grid point for every element: shape ``(*x.shape, len(grid))``.

    >>> p = cell_probabilities(torch.tensor([0.0]), torch.tensor([-1.0, 0.0, 1.0]),
    ...                        torch.tensor(1.0), torch.tensor(0.1))
    >>> [round(v, 4) for v in p[0].tolist()]
    [0.0067, 0.9866, 0.0067]
    """
    d = grid - x.unsqueeze(-1)  # (..., K)
    upper = torch.sigmoid((d + step / 2) / sigma)
    lower = torch.sigmoid((d - step / 2) / sigma)
    upper = torch.cat([upper[..., :-1], torch.ones_like(upper[..., -1:])], dim=-1)  # +∞
    lower = torch.cat([torch.zeros_like(lower[..., :1]), lower[..., 1:]], dim=-1)  # −∞
    return (upper - lower).clamp(min=0)


def relaxed_quantize(x: torch.Tensor, grid: torch.Tensor, step: torch.Tensor,
                     sigma: torch.Tensor, tau: float,
                     gumbel: torch.Tensor | None = None) -> torch.Tensor:
    """``x̂ = Σ_i softmax((log p + G)/τ)_i · g_i`` (``gumbel=G``; zeros give the mean-free
    deterministic relaxation)."""
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    logp = torch.log(cell_probabilities(x, grid, step, sigma) + 1e-20)
    if gumbel is not None:
        logp = logp + gumbel
    return (F.softmax(logp / tau, dim=-1) * grid).sum(-1)


class RelaxedQuantizer(nn.Module):
    """Relaxed Quantization of a tensor (weights, or small activations): learned ``s`` and ``σ``.

    Training: a concrete sample over all ``2^b`` grid points (memory ``numel·2^b``, so keep
    ``b ≤ 4`` for activations). Eval: nearest rounding on the learned grid.

    Args:
        bits: code width. signed: signed symmetric grid (weights) or unsigned (post-ReLU).
        tau: temperature. sigma_ratio: initial ``σ/s`` (the paper starts at ⅓).
    """

    def __init__(self, bits: int, signed: bool = True, tau: float = 1.0,
                 sigma_ratio: float = 1 / 3) -> None:
        super().__init__()
        self.bits, self.signed, self.tau = check_bits(bits), signed, tau
        self.qmin, self.qmax = integer_range(bits, signed)
        self.step = nn.Parameter(torch.tensor(1.0))
        self.rho = nn.Parameter(torch.tensor(math.log(math.expm1(sigma_ratio))))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _init(self, x: torch.Tensor) -> None:
        qp = choose_qparams(x, bits=self.bits, symmetric=self.signed, signed=self.signed)
        self.step.fill_(float(qp.scale))
        self.initialized.fill_(True)

    def grid(self) -> torch.Tensor:
        """The grid points ``s·q`` for ``q = q_min..q_max`` (zero point 0)."""
        q = torch.arange(self.qmin, self.qmax + 1, device=self.step.device,
                         dtype=self.step.dtype)
        return self.step * q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x")
        if not bool(self.initialized):
            self._init(x.detach())
        if not self.training:
            return fake_quantize_ste(x, self.step, 0, self.qmin, self.qmax)
        sigma = self.step * F.softplus(self.rho)
        u = torch.rand(*x.shape, self.qmax - self.qmin + 1, device=x.device).clamp(1e-10, 1)
        gumbel = -torch.log((-torch.log(u)).clamp(min=1e-10))  # G ~ Gumbel(0, 1)
        return relaxed_quantize(x, self.grid(), self.step, sigma, self.tau, gumbel)
