"""Cross-layer equalization (Nagel et al., 2019, "Data-Free Quantization", §4.1).

For two layers joined by a positively homogeneous function (ReLU: ``f(x/s) = f(x)/s`` for
``s > 0``; max-pooling too), rescaling channel ``i`` between them changes nothing:

    W2 · f(W1 x + b1) = (W2 S) · f(S⁻¹ W1 x + S⁻¹ b1),      S = diag(s).

Per-channel weight ranges ``r1_i = max|W1[i, ...]|`` (output channel ``i`` of layer 1)
and ``r2_i = max|W2[:, i, ...]|`` (input channel ``i`` of layer 2) become ``r1_i / s_i``
and ``r2_i · s_i``. The choice

    s_i = sqrt(r1_i / r2_i)        ⇒     r1'_i = r2'_i = sqrt(r1_i r2_i)

equalizes them, which maximizes the product of the layers' per-tensor "precisions"
(the paper's eq. 10). Per-*tensor* quantization then wastes fewer levels on channels with a
small range. Chains of layers are equalized pair by pair, repeatedly, until the scales
settle.

Glossary: ``W1`` (O1, ...) and ``W2`` (O2, O1, ...) weights, ``b1`` bias of layer 1,
``r1, r2`` per-channel ranges, ``s`` equalization scales.
"""

from __future__ import annotations

import torch
from torch import nn

from inwhale.ptq._layers import check_layer

__all__ = ["channel_ranges", "equalize_pair_", "equalize_sequential_"]

_HOMOGENEOUS = (nn.ReLU, nn.MaxPool2d, nn.Identity)


def channel_ranges(first: nn.Module, second: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``(r1, r2)``: max|W1| per output channel of ``first``, per input channel of ``second``."""
    w1, w2 = check_layer(first, "first").weight, check_layer(second, "second").weight
    if w1.shape[0] != w2.shape[1]:
        raise ValueError(f"first has {w1.shape[0]} outputs but second takes {w2.shape[1]}")
    r1 = w1.detach().abs().reshape(w1.shape[0], -1).amax(dim=1)
    r2 = w2.detach().abs().transpose(0, 1).reshape(w2.shape[1], -1).amax(dim=1)
    return r1, r2


@torch.no_grad()
def equalize_pair_(first: nn.Module, second: nn.Module) -> torch.Tensor:
    """Equalize ``first``→``second`` in place; return the scales ``s`` (O1,).

    Channels where either range is 0 keep ``s = 1``.

    >>> a, b = nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False)
    >>> a.weight.data = torch.tensor([[4.0, 0.0], [0.0, 1.0]])
    >>> b.weight.data = torch.tensor([[1.0, 4.0]])
    >>> equalize_pair_(a, b).tolist(), channel_ranges(a, b)[0].tolist()
    ([2.0, 0.5], [2.0, 2.0])
    """
    r1, r2 = channel_ranges(first, second)
    s = torch.where((r1 > 0) & (r2 > 0), torch.sqrt(r1 / r2.clamp(min=1e-30)),
                    torch.ones_like(r1))
    shape1 = (-1,) + (1,) * (first.weight.ndim - 1)
    first.weight.div_(s.view(shape1))
    if first.bias is not None:
        first.bias.div_(s)
    shape2 = (1, -1) + (1,) * (second.weight.ndim - 2)
    second.weight.mul_(s.view(shape2))
    return s


def _pairs(seq: nn.Sequential) -> list[tuple[nn.Module, nn.Module]]:
    mods, pairs = list(seq), []
    for i, m in enumerate(mods):
        if not isinstance(m, nn.Linear | nn.Conv2d):
            continue
        for n in mods[i + 1:]:
            if isinstance(n, nn.Linear | nn.Conv2d):
                if isinstance(n, nn.Conv2d) == isinstance(m, nn.Conv2d):  # same kind
                    pairs.append((m, n))
                break
            if not isinstance(n, _HOMOGENEOUS):
                break
    return pairs


@torch.no_grad()
def equalize_sequential_(seq: nn.Sequential, iterations: int = 20) -> int:
    """Equalize every adjacent pair (joined only by ReLU / max-pool) of ``seq`` in place.

    Layers of different kinds (a conv feeding a linear through ``Flatten``) are skipped.
    Returns the number of pairs equalized. Fold batch norm first.
    """
    if not isinstance(seq, nn.Sequential):
        raise TypeError(f"seq must be nn.Sequential, got {type(seq).__name__}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    pairs = _pairs(seq)
    for _ in range(iterations):
        for a, b in pairs:
            equalize_pair_(a, b)
    return len(pairs)
