"""Batch-norm folding: merge an eval-mode ``BatchNorm2d`` into the convolution before it.

In eval mode batch norm is an affine map per channel ``c``:

    BN(y)_c = γ_c · (y_c − μ_c) / sqrt(σ²_c + ε) + β_c

so ``BN(conv(x))`` is itself a convolution with (Jacob et al., 2018, §3.2; Krishnamoorthi,
2018, §2.5)

    W'_c = W_c · γ_c / sqrt(σ²_c + ε),      b'_c = (b_c − μ_c) · γ_c / sqrt(σ²_c + ε) + β_c.

Folding first matters for quantization: the quantizer then sees the weights that are
actually used, and integer inference has no batch-norm layer to run.

Glossary: ``W`` conv weight (O, C, kh, kw), ``b`` its bias (zeros if absent), ``μ, σ²``
running mean and variance, ``γ, β`` BN weight and bias, ``ε`` BN epsilon.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["fold_bn", "fold_bn_sequential"]


@torch.no_grad()
def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new ``Conv2d`` equal to ``bn(conv(x))`` with ``bn`` in eval mode.

    >>> conv, bn = nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2).eval()
    >>> bn.running_mean.fill_(1.0); bn.running_var.fill_(4.0)   # doctest: +ELLIPSIS
    tensor(...)
    >>> x = torch.randn(3, 1, 4, 4)
    >>> torch.allclose(fold_bn(conv, bn)(x), bn(conv(x)), atol=1e-6)
    True
    """
    if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
        raise TypeError(f"fold_bn needs conv an nn.Conv2d module and bn an nn.BatchNorm2d "
                        f"module, got {type(conv).__name__} and {type(bn).__name__}")
    if bn.num_features != conv.out_channels:
        raise ValueError(f"bn has {bn.num_features} channels, conv has {conv.out_channels}")
    if bn.running_var is None:
        raise ValueError("bn must track running statistics to be folded")
    fused = copy.deepcopy(conv)
    gamma = bn.weight if bn.affine else torch.ones_like(bn.running_var)
    beta = bn.bias if bn.affine else torch.zeros_like(bn.running_var)
    k = gamma / torch.sqrt(bn.running_var + bn.eps)  # (O,)
    b = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.weight.copy_(conv.weight * k.view(-1, 1, 1, 1))
    fused.bias = nn.Parameter((b - bn.running_mean) * k + beta)
    return fused


def fold_bn_sequential(seq: nn.Sequential) -> nn.Sequential:
    """A copy of ``seq`` with every ``Conv2d → BatchNorm2d`` pair replaced by one conv."""
    if not isinstance(seq, nn.Sequential):
        raise TypeError(f"seq must be nn.Sequential, got {type(seq).__name__}")
    out, mods, i = [], list(seq), 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, nn.Conv2d) and i + 1 < len(mods) and isinstance(mods[i + 1],
                                                                          nn.BatchNorm2d):
            out.append(fold_bn(m, mods[i + 1]))
            i += 2
        else:
            out.append(copy.deepcopy(m))
            i += 1
    return nn.Sequential(*out).eval()
