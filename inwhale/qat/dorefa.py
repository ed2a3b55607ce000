"""DoReFa-Net quantizers for weights and activations (Zhou et al., 2016).

Both use the ``k``-bit quantizer of ``[0, 1]``,
``quantize_k(r) = round((2^k − 1)·r) / (2^k − 1)`` with the straight-through estimator
(the core grid ``qparams_from_range(0, 1, bits=k, signed=False)``).

* **weights** (the paper's eq. 9), ``k > 1``: squash with ``tanh`` and map to ``[0, 1]``,

      w_k = 2 · quantize_k( tanh(w) / (2 max|tanh(w)|) + ½ ) − 1,

  so the codes use the whole range whatever the scale of ``w``; for ``k = 1``
  ``w_1 = E(|w|) · sign(w)`` (eq. 7, a per-layer mean magnitude times the sign).
* **activations** (eq. 10): ``x_k = quantize_k(clamp(x, 0, 1))``.

Glossary: ``w`` latent float weight, ``w_k`` its ``k``-bit version in ``[−1, 1]``, ``x``
activation.
"""

from __future__ import annotations

import torch
from torch import nn

from inwhale.core.checks import check_bits, check_tensor
from inwhale.core.qparams import qparams_from_range
from inwhale.nn.fake_quant import fake_quantize_ste

__all__ = ["DoReFaActivation", "DoReFaWeight", "quantize_k"]


def quantize_k(r: torch.Tensor, bits: int) -> torch.Tensor:
    """``round((2^k − 1)·r)/(2^k − 1)`` for ``r ∈ [0, 1]`` with the STE.

    >>> quantize_k(torch.tensor([0.1, 0.5, 0.9]), 2).tolist()
    [0.0, 0.6666666865348816, 1.0]
    """
    qp = qparams_from_range(0.0, 1.0, bits=bits, signed=False)
    return fake_quantize_ste(r, qp.scale, qp.zero_point, qp.qmin, qp.qmax)


class DoReFaWeight(nn.Module):
    """DoReFa weight quantizer (a ``weight_fq`` for :class:`~inwhale.nn.modules.QuantLinear`).

    >>> w = torch.tensor([-2.0, -0.1, 0.3, 1.0])
    >>> DoReFaWeight(2)(w).tolist()                  # levels −1, −⅓, ⅓, 1
    [-1.0, -0.3333333134651184, 0.3333333730697632, 1.0]
    """

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = check_bits(bits)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        check_tensor(w, "w")  # the max over w needs at least one value
        if self.bits == 1:
            e = w.detach().abs().mean()
            return e * (torch.sign(w.detach()) + (w - w.detach()))  # STE through sign
        t = torch.tanh(w)
        return 2 * quantize_k(t / (2 * t.detach().abs().max()) + 0.5, self.bits) - 1


class DoReFaActivation(nn.Module):
    """``quantize_k(clamp(x, 0, 1))``: a bounded, quantized ReLU."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = check_bits(bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", allow_empty=True)
        return quantize_k(torch.clamp(x, 0.0, 1.0), self.bits)
