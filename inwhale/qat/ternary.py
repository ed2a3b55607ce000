"""Trained Ternary Quantization, TTQ (Zhu et al., 2017).

Each layer's weights take three values ``{−W_n, 0, +W_p}`` with **two learned scales**.
With the latent weight normalized to ``[−1, 1]`` (``w̃ = w / max|w|``) and threshold
``Δ = t · max|w̃| = t`` (the paper's eq. 9):

    w_t = +W_p  if w̃ > Δ,      0  if |w̃| ≤ Δ,      −W_n  if w̃ < −Δ.

Gradients (eqs. 7–8): the scales collect the gradient of their own positions,

    ∂L/∂W_p = Σ_{i ∈ I_p} ∂L/∂w_t(i),        ∂L/∂W_n = −Σ_{i ∈ I_n} ∂L/∂w_t(i)

(the paper writes the second without the minus sign because it names ``−W_n`` the value),
and the latent weights get a scaled straight-through gradient

    ∂L/∂w̃ = W_p·∂L/∂w_t on I_p,   1·∂L/∂w_t on I_z,   W_n·∂L/∂w_t on I_n.

Glossary: ``w`` latent weight, ``w̃`` normalized, ``t`` threshold factor, ``Δ`` threshold,
``W_p, W_n`` learned positive / negative scales, ``I_p, I_z, I_n`` index sets.
"""

from __future__ import annotations

import torch
from torch import nn

from inwhale.core.checks import check_tensor

__all__ = ["TTQWeight"]


class TTQWeight(nn.Module):
    """TTQ weight quantizer; ``W_p, W_n`` start at the mean magnitude above the threshold.

    >>> q = TTQWeight(t=0.3)
    >>> q(torch.tensor([-1.0, -0.2, 0.1, 0.5, 1.0])).tolist()   # W_p = W_n = mean(|.|>0.3)
    [-1.0, 0.0, 0.0, 0.75, 0.75]
    """

    def __init__(self, t: float = 0.05) -> None:
        super().__init__()
        if not 0 <= t < 1:
            raise ValueError(f"t must be in [0, 1), got {t}")
        self.t = t
        self.w_p = nn.Parameter(torch.tensor(1.0))
        self.w_n = nn.Parameter(torch.tensor(1.0))
        self.register_buffer("initialized", torch.tensor(False))

    def masks(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Boolean ``(I_p, I_n)`` for the normalized weight."""
        wn = w.detach() / w.detach().abs().max().clamp(min=1e-12)
        return wn > self.t, wn < -self.t

    @torch.no_grad()
    def _init(self, w: torch.Tensor) -> None:
        p, n = self.masks(w)
        wn = w / w.abs().max().clamp(min=1e-12)
        self.w_p.fill_(float(wn[p].abs().mean()) if p.any() else 1.0)
        self.w_n.fill_(float(wn[n].abs().mean()) if n.any() else 1.0)
        self.initialized.fill_(True)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        check_tensor(w, "w")
        if not bool(self.initialized):
            self._init(w)
        p, n = self.masks(w)
        pf, nf = p.to(w.dtype), n.to(w.dtype)
        w_t = self.w_p * pf - self.w_n * nf  # gradients to W_p and W_n
        scale = self.w_p.detach() * pf + self.w_n.detach() * nf + (1 - pf - nf)
        wn = w / w.detach().abs().max().clamp(min=1e-12)
        return w_t + scale * (wn - wn.detach())  # latent gradient, value unchanged
