"""Learned Step Size Quantization: LSQ (Esser et al., 2020) and LSQ+ (Bhalgat et al., 2020).

LSQ makes the step ``s`` a trainable parameter of the quantizer

    x̂ = s · clamp(⌊x/s⌉, −Q_N, Q_P)

and differentiates through it with the straight-through estimator for ``⌊·⌉`` (the paper's
eq. 3):

    ∂x̂/∂s = −x/s + ⌊x/s⌉   if −Q_N < x/s < Q_P,      −Q_N  or  Q_P   otherwise.

(inwhale rounds first and clips the rounded code, as the core and PyTorch's
``_fake_quantize_learnable_per_tensor_affine`` do, so "inside" means
``−Q_N ≤ ⌊x/s⌉ ≤ Q_P``; the paper's cases differ only within half a step of the ends.)
The step's gradient is multiplied by ``g = 1/sqrt(N·Q_P)`` (``N`` = number of values sharing
``s``) so that its update is as large, relative to ``s``, as the weights' updates are
relative to the weights. ``s`` starts at ``2·mean|x|/sqrt(Q_P)``.

LSQ+ adds a learned **offset** ``β`` for asymmetric activations (e.g. after Swish/GELU,
which go below zero):

    x̂ = s · clamp(⌊(x − β)/s⌉, q_min, q_max) + β,

initialized from the observed range (here: ``qparams_from_range`` of min–max).

Glossary: ``x`` input, ``s`` learned step, ``β`` learned offset, ``Q_N, Q_P`` the number of
negative / positive levels (``[q_min, q_max] = [−Q_N, Q_P]``), ``N`` values per step,
``g`` gradient scale.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from inwhale.core.checks import check_bits, check_tensor
from inwhale.core.qparams import integer_range, qparams_from_range
from inwhale.nn.fake_quant import fake_quantize_ste, grad_scale

__all__ = ["LSQPlusQuantizer", "LSQQuantizer"]


class LSQQuantizer(nn.Module):
    """LSQ fake quantizer with a learned step (per tensor or per output channel).

    Args:
        bits: code width.
        signed: signed codes (weights) or unsigned (post-ReLU activations).
        per_channel: one step per index of dim 0 (weights).

    >>> q = LSQQuantizer(4)
    >>> x = torch.randn(100, requires_grad=True); q(x).sum().backward()
    >>> q.step.grad is not None and q.step.shape == torch.Size([])
    True
    """

    def __init__(self, bits: int, signed: bool = True, per_channel: bool = False) -> None:
        super().__init__()
        self.bits, self.per_channel = check_bits(bits), per_channel
        self.qmin, self.qmax = integer_range(bits, signed)
        if self.qmax < 1:  # the step's initial value and gradient scale divide by √q_max
            raise ValueError(f"bits={bits} with signed=True has q_max = 0: LSQ needs bits >= 2 "
                             "(or signed=False)")
        self.step = nn.Parameter(torch.tensor(1.0))
        self.register_buffer("initialized", torch.tensor(False))

    def _shape(self, x: torch.Tensor) -> tuple[int, ...]:
        return (x.shape[0],) + (1,) * (x.ndim - 1) if self.per_channel else ()

    @torch.no_grad()
    def _init(self, x: torch.Tensor) -> None:
        if self.per_channel:
            mean_abs = x.abs().reshape(x.shape[0], -1).mean(1).view(self._shape(x))
        else:
            mean_abs = x.abs().mean()
        step = (2 * mean_abs / math.sqrt(self.qmax)).clamp(min=1e-8)
        # a per-channel step changes shape on first use; it stays where the module lives
        self.step.data = step.to(device=self.step.device, dtype=self.step.dtype)
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x̂ = s·clamp(⌊x/s⌉, q_min, q_max)`` with the LSQ gradients."""
        check_tensor(x, "x")  # one NaN batch would make the learned step NaN for good
        if not bool(self.initialized):
            self._init(x.detach())
        n = x.numel() / max(1, self.step.numel())
        s = grad_scale(self.step, 1.0 / math.sqrt(n * self.qmax))
        return fake_quantize_ste(x, s, 0, self.qmin, self.qmax)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, range=[{self.qmin}, {self.qmax}], per_channel={self.per_channel}"


class LSQPlusQuantizer(nn.Module):
    """LSQ+ for activations: learned step ``s`` and offset ``β`` (unsigned codes).

    >>> q = LSQPlusQuantizer(4)
    >>> y = q(torch.linspace(-0.3, 2.0, 50)); float(y.min()) < 0     # negative values kept
    True
    """

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = check_bits(bits)
        self.qmin, self.qmax = integer_range(bits, signed=False)
        self.step = nn.Parameter(torch.tensor(1.0))
        self.offset = nn.Parameter(torch.tensor(0.0))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _init(self, x: torch.Tensor) -> None:
        lo, hi = x.min(), x.max()
        qp = qparams_from_range(lo, hi, bits=self.bits, signed=False)  # the core's grid
        self.step.copy_(qp.scale.reshape(()))  # in place: parameters stay on their device
        self.offset.copy_(torch.clamp(lo, max=0.0))
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x̂ = s·clamp(⌊(x − β)/s⌉, q_min, q_max) + β``."""
        check_tensor(x, "x")
        if not bool(self.initialized):
            self._init(x.detach())
        s = grad_scale(self.step, 1.0 / math.sqrt(x.numel() * self.qmax))
        return fake_quantize_ste(x - self.offset, s, 0, self.qmin, self.qmax) + self.offset
