"""Scale smoothing: move quantization difficulty between activations and weights.

For a layer ``y = W x`` and any positive per-input-channel scales ``s``,

    W x = (W diag(s)) · (diag(s)⁻¹ x),

so the activations may be divided by ``s`` and the weight columns multiplied by it.
SmoothQuant (Xiao et al., 2023) picks, with a migration strength ``α ∈ [0, 1]``,

    s_j = max|x_j|^α / max|W_:,j|^(1−α),

after which ``max|x_j / s_j| = max|x_j|^(1−α) max|W_:,j|^(1−α)·…`` — for ``α = ½`` the
activation and weight ranges of channel ``j`` become equal (``sqrt(max|x_j| max|W_:,j|)``).
Here the division of ``x`` is folded into the layer that produces it (``prev``: its output
row ``j`` and bias are divided by ``s_j``), which is exact when only ReLU / max-pool sits
between them (positive homogeneity, as in :mod:`inwhale.ptq.cle`). The LLM version that
folds into a LayerNorm (:mod:`inwhale.llm.smoothquant`) uses the same
:func:`smoothing_scales`.

Glossary: ``x`` activations entering ``nxt``, ``W`` the weight of ``nxt``, ``s`` smoothing
scales, ``α`` migration strength.
"""

from __future__ import annotations

import torch
from torch import nn

from inwhale.core.checks import check_tensor
from inwhale.ptq._layers import check_layer

__all__ = ["smooth_pair_", "smoothing_scales"]


def smoothing_scales(act_absmax: torch.Tensor, weight: torch.Tensor,
                     alpha: float = 0.5) -> torch.Tensor:
    """``s_j = max|x_j|^α / max|W_:,j|^(1−α)`` (channels with a zero range keep ``s = 1``).

    >>> smoothing_scales(torch.tensor([16.0, 1.0]), torch.tensor([[1.0, 4.0]])).tolist()
    [4.0, 0.5]
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    w = weight.detach().abs().transpose(0, 1).reshape(weight.shape[1], -1).amax(dim=1)
    if act_absmax.shape != w.shape:
        raise ValueError(f"act_absmax must have shape {tuple(w.shape)}, got "
                         f"{tuple(act_absmax.shape)}")
    ok = (act_absmax > 0) & (w > 0)
    s = act_absmax.clamp(min=1e-30).pow(alpha) / w.clamp(min=1e-30).pow(1 - alpha)
    return torch.where(ok, s, torch.ones_like(s))


@torch.no_grad()
def smooth_pair_(prev: nn.Module, nxt: nn.Module, act_absmax: torch.Tensor,
                 alpha: float = 0.5) -> torch.Tensor:
    """Divide ``prev``'s output channels by ``s`` and multiply ``nxt``'s inputs by ``s``.

    ``act_absmax`` is ``max|x_j|`` of ``nxt``'s input per channel, measured on calibration
    data (e.g. with ``MinMaxObserver(granularity=PerAxis(-1))``). In place; returns ``s``.
    """
    check_layer(prev, "prev"), check_layer(nxt, "nxt")
    check_tensor(act_absmax, "act_absmax")
    s = smoothing_scales(act_absmax.to(nxt.weight.device), nxt.weight, alpha)
    prev.weight.div_(s.view((-1,) + (1,) * (prev.weight.ndim - 1)))
    if prev.bias is not None:
        prev.bias.div_(s)
    nxt.weight.mul_(s.view((1, -1) + (1,) * (nxt.weight.ndim - 2)))
    return s
