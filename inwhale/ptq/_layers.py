"""Small helpers shared by the PTQ algorithms: a layer's float output, its captured inputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inwhale.core.checks import check_tensor
from inwhale.nn.modules import QuantConv2d, QuantLinear


def check_layer(layer: object, name: str = "layer") -> nn.Module:
    """``layer`` must be a (Quant)Linear or (Quant)Conv2d."""
    if not isinstance(layer, nn.Linear | nn.Conv2d):
        raise TypeError(f"{name} must be nn.Linear or nn.Conv2d, got {type(layer).__name__}")
    return layer


def check_layer_input(layer: nn.Module, x: object, name: str = "x") -> torch.Tensor:
    """``x`` as inputs of ``layer`` — finite floats, ``(N, I)`` for a linear, ``(N, C, H, W)``
    for a conv — returned in the layer's dtype (float16/bfloat16 inputs are cast)."""
    check_tensor(x, name)
    if isinstance(layer, nn.Conv2d):
        ok = x.ndim == 4 and x.shape[1] == layer.in_channels
        want = f"(N, {layer.in_channels}, H, W)"
    else:
        ok = x.ndim >= 2 and x.shape[-1] == layer.in_features
        want = f"(N, {layer.in_features})"
    if not ok:
        raise ValueError(f"{name} must have shape {want} (the layer's input), "
                         f"got {tuple(x.shape)}")
    return x.to(layer.weight.dtype)


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
