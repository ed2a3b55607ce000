"""Small helpers shared by the PTQ algorithms: a layer's float output, its captured inputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inwhale.nn.modules import QuantConv2d, QuantLinear


def check_layer(layer: object, name: str = "layer") -> nn.Module:
    """``layer`` must be a (Quant)Linear or (Quant)Conv2d."""
    if not isinstance(layer, nn.Linear | nn.Conv2d):
        raise TypeError(f"{name} must be nn.Linear or nn.Conv2d, got {type(layer).__name__}")
    return layer


def layer_op(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor,
             bias: torch.Tensor | None = None) -> torch.Tensor:
    """``layer``'s operation (linear or conv) with an explicit weight, no quantizers."""
    if isinstance(layer, nn.Conv2d):
        return F.conv2d(x, weight, bias, layer.stride, layer.padding, layer.dilation,
                        layer.groups)
    return F.linear(x, weight, bias)


def channel_mean(y: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """Mean of ``y`` over every dim but the output-channel one: (O,)."""
    if isinstance(layer, nn.Conv2d):
        return y.mean(dim=(0, 2, 3))
    return y.reshape(-1, y.shape[-1]).mean(dim=0)


@torch.no_grad()
def capture_inputs(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The tensor ``layer`` receives when ``model(x)`` runs (before its input quantizer)."""
    seen: list[torch.Tensor] = []
    h = layer.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach()))
    try:
        model(x)
    finally:
        h.remove()
    if not seen:
        raise ValueError("the layer was not called by model(x)")
    return torch.cat(seen)


def is_quant(m: nn.Module) -> bool:
    """A fake-quant layer?"""
    return isinstance(m, QuantLinear | QuantConv2d)
