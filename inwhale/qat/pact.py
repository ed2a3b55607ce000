"""PACT: parameterized clipping activation (Choi et al., 2018).

A ReLU with a learned upper clip ``α``, followed by a ``k``-bit uniform quantizer on
``[0, α]``:

    y = clamp(x, 0, α) = 0.5·(|x| − |x − α| + α),       ŷ = round(y · (2^k − 1)/α) · α/(2^k − 1)

With the STE for the rounding, the gradient with respect to ``α`` is the paper's eq. 3:

    ∂ŷ/∂α = 1  if x ≥ α,   0 otherwise,

so ``α`` grows while many activations are clipped and shrinks (with the paper's L2 penalty
``λ α²``, or weight decay) when few are. The grid is the core's
``qparams_from_range(0, α, bits=k, signed=False)``: ``s = α/(2^k − 1)``, ``z = 0``.

Glossary: ``x`` pre-activation, ``α`` learned clip, ``k`` bits, ``ŷ`` quantized activation.
"""

from __future__ import annotations

import torch
from torch import nn

from inwhale.core.checks import check_bits, check_tensor
from inwhale.core.qparams import qparams_from_range
from inwhale.nn.fake_quant import fake_quantize_ste

__all__ = ["PACT"]


class PACT(nn.Module):
    """ReLU + learned clip ``α`` + ``bits``-bit quantization of ``[0, α]``.

    >>> act = PACT(bits=2, alpha=3.0)
    >>> act(torch.tensor([-1.0, 0.4, 1.6, 5.0])).tolist()     # levels 0, 1, 2, 3
    [0.0, 0.0, 2.0, 3.0]
    """

    def __init__(self, bits: int, alpha: float = 6.0) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        self.bits = check_bits(bits)
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``ŷ = fq(clamp(x, 0, α))``; gradient to ``α`` where ``x ≥ α``."""
        check_tensor(x, "x", allow_empty=True)  # NaN would silently become α
        a = self.alpha.to(x.dtype)
        y = torch.where(x < a, torch.relu(x), a)  # clamp(x, 0, α), ∂y/∂α = 1[x ≥ α]
        qp = qparams_from_range(0.0, self.alpha.detach().abs(), bits=self.bits, signed=False)
        return fake_quantize_ste(y, qp.scale, qp.zero_point, qp.qmin, qp.qmax)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"
