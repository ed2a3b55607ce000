"""Fake-quantized layers: ``nn.Linear`` / ``nn.Conv2d`` with quantizers on weight and input.

    y = W̃ · x̃ + b,      W̃ = fq_w(W),  x̃ = fq_x(x)

where ``fq_w`` and ``fq_x`` are :class:`~inwhale.nn.fake_quant.FakeQuantize` nodes (either
may be ``None``: weight-only quantization has no ``fq_x``). The bias stays in floating
point; integer inference (:mod:`inwhale.ptq.integer`) later stores it as int32 with scale
``s_x·s_w``. ``from_float`` swaps a trained float layer for its quantized twin, sharing
nothing with the original (weights are copied), the way SmoothQuant and PyTorch do it.

>>> lin = torch.nn.Linear(4, 2)
>>> q = QuantLinear.from_float(lin, weight_fq=FakeQuantize(4, symmetric=True))
>>> q(torch.ones(1, 4)).shape
torch.Size([1, 2])
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from inwhale.core.checks import check_module, check_tensor
from inwhale.nn.fake_quant import FakeQuantize

__all__ = ["QuantConv2d", "QuantLinear", "quant_layers", "swap_layers"]


def _check_fq(fq: object, name: str) -> None:
    if fq is not None and not isinstance(fq, nn.Module):
        raise TypeError(f"{name} must be an nn.Module (e.g. FakeQuantize) or None")


class _QuantMixin:
    weight_fq: nn.Module | None
    act_fq: nn.Module | None

    def quantized_weight(self) -> torch.Tensor:
        """``W̃ = fq_w(W)`` (or ``W`` without a weight quantizer)."""
        w = self.weight  # type: ignore[attr-defined]
        return self.weight_fq(w) if self.weight_fq is not None else w

    def quantized_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x̃ = fq_x(x)`` (or ``x`` without an input quantizer).

        ``x`` must be a finite floating tensor; it is computed in the layer's dtype (a
        float16/bfloat16 input to a float32 layer is cast up, as ``torch.autocast`` would not).
        """
        w = self.weight  # type: ignore[attr-defined]
        x = check_tensor(x, "x").to(w.dtype) if x.dtype != w.dtype else x
        return self.act_fq(x) if self.act_fq is not None else x


class QuantLinear(_QuantMixin, nn.Linear):
    """``nn.Linear`` with fake-quantized weight (and input). Shapes: (..., I) → (..., O)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 weight_fq: nn.Module | None = None, act_fq: nn.Module | None = None) -> None:
        super().__init__(in_features, out_features, bias=bias)
        _check_fq(weight_fq, "weight_fq"), _check_fq(act_fq, "act_fq")
        self.weight_fq, self.act_fq = weight_fq, act_fq

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if check_tensor(x, "x").ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (..., {self.in_features}) (in_features), "
                             f"got {tuple(x.shape)}")
        return F.linear(self.quantized_input(x), self.quantized_weight(), self.bias)

    @classmethod
    def from_float(cls, linear: nn.Linear, weight_fq: nn.Module | None = None,
                   act_fq: nn.Module | None = None) -> QuantLinear:
        """A quantized copy of ``linear`` (the original is not modified)."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be nn.Linear, got {type(linear).__name__}")
        q = cls(linear.in_features, linear.out_features, linear.bias is not None,
                weight_fq, act_fq).to(linear.weight.device)
        q.load_state_dict(linear.state_dict(), strict=False)
        return q


class QuantConv2d(_QuantMixin, nn.Conv2d):
    """``nn.Conv2d`` with fake-quantized weight (and input). (N, C, H, W) → (N, O, H', W')."""

    def __init__(self, *args, weight_fq: nn.Module | None = None,
                 act_fq: nn.Module | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _check_fq(weight_fq, "weight_fq"), _check_fq(act_fq, "act_fq")
        self.weight_fq, self.act_fq = weight_fq, act_fq

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if check_tensor(x, "x").ndim not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ValueError(f"x must have shape (N, {self.in_channels}, H, W) or "
                             f"({self.in_channels}, H, W), got {tuple(x.shape)}")
        return self._conv_forward(self.quantized_input(x), self.quantized_weight(), self.bias)

    @classmethod
    def from_float(cls, conv: nn.Conv2d, weight_fq: nn.Module | None = None,
                   act_fq: nn.Module | None = None) -> QuantConv2d:
        """A quantized copy of ``conv`` (the original is not modified)."""
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"conv must be nn.Conv2d, got {type(conv).__name__}")
        q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                bias=conv.bias is not None, padding_mode=conv.padding_mode,
                weight_fq=weight_fq, act_fq=act_fq).to(conv.weight.device)
        q.load_state_dict(copy.deepcopy(conv.state_dict()), strict=False)
        return q


def quant_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every :class:`QuantLinear` / :class:`QuantConv2d` in order."""
    check_module(model, "model")
    return [(n, m) for n, m in model.named_modules() if isinstance(m, QuantLinear | QuantConv2d)]


_ = FakeQuantize  # re-exported for the doctest namespace


def swap_layers(model: nn.Module, weight_fq: Callable[[nn.Module], nn.Module | None],
                act_fq: Callable[[nn.Module], nn.Module | None],
                skip: tuple[str, ...] = ()) -> nn.Module:
    """A copy of ``model`` with every Linear/Conv2d (not in ``skip``) made a Quant layer.

    ``weight_fq(layer)`` and ``act_fq(layer)`` build that layer's quantizers (or ``None``),
    e.g. ``lambda layer: LSQQuantizer(4, per_channel=True)``.
    """
    q = copy.deepcopy(check_module(model, "model"))

    def swap(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            full = f"{prefix}.{name}" if prefix else name
            if full in skip:
                continue
            if isinstance(child, nn.Linear | nn.Conv2d) and not isinstance(
                    child, QuantLinear | QuantConv2d):
                cls = QuantLinear if isinstance(child, nn.Linear) else QuantConv2d
                setattr(module, name, cls.from_float(child, weight_fq(child), act_fq(child)))
            else:
                swap(child, full)

    swap(q, "")
    return q
