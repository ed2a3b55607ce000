"""Progressive (layer-by-layer) calibration.

Plain static calibration (:func:`inwhale.ptq.pipeline.calibrate_`) records every activation
range in one pass of the *float* network. But at inference time layer ``ℓ`` receives the
output of the *quantized* layers ``1..ℓ−1``, whose errors shift and widen its input. The
progressive variant calibrates one layer at a time, in order (the sequential scheme used by
AdaRound, BRECQ and GPTQ):

    for ℓ = 1..L:
        x_ℓ  ← inputs of layer ℓ in the model quantized up to ℓ−1
        calibrate layer ℓ's input quantizer on x_ℓ, freeze it
        optionally: AdaRound layer ℓ on x_ℓ, bias-correct layer ℓ on x_ℓ

so each correction also compensates the error accumulated upstream.
"""

from __future__ import annotations

import torch
from torch import nn

from inwhale.core.checks import check_tensor
from inwhale.nn.fake_quant import FakeQuantize
from inwhale.nn.modules import quant_layers
from inwhale.ptq._layers import capture_inputs
from inwhale.ptq.adaround import adaround_
from inwhale.ptq.bias_correction import bias_correct_

__all__ = ["progressive_calibrate_"]


@torch.no_grad()
def _freeze_layer(layer: nn.Module, x: torch.Tensor) -> None:
    for fq in (layer.act_fq, layer.weight_fq):
        if isinstance(fq, FakeQuantize):
            fq.quantize = False
    if isinstance(layer.act_fq, FakeQuantize) and not layer.act_fq.dynamic:
        layer.act_fq.observer(x)  # record this layer's real (upstream-quantized) inputs
    if isinstance(layer.weight_fq, FakeQuantize):
        layer.weight_fq.observer(layer.weight.detach())
    for fq in (layer.act_fq, layer.weight_fq):
        if isinstance(fq, FakeQuantize):
            fq.quantize = True
            fq.freeze()


def progressive_calibrate_(
    model: nn.Module,
    x: torch.Tensor,
    *,
    bias_correction: bool = False,
    adaround: bool = False,
    adaround_kwargs: dict | None = None,
) -> nn.Module:
    """Calibrate a **prepared** model (from :func:`~inwhale.ptq.pipeline.prepare`) layer by
    layer on calibration inputs ``x``, in place, and return it converted.

    Args:
        model: prepared model (observers not yet run).
        x: one calibration batch (all of it is used).
        bias_correction: subtract each layer's mean output error (after AdaRound).
        adaround: learn each layer's weight rounding (:func:`~inwhale.ptq.adaround.adaround_`).
        adaround_kwargs: keyword arguments for ``adaround_`` (e.g. ``iters``).
    """
    check_tensor(x, "x")
    layers = [m for _, m in quant_layers(model)]
    if not layers:
        raise ValueError("model has no quantized layer: call prepare first")
    for m in model.modules():  # layers not reached yet stay in float
        if isinstance(m, FakeQuantize):
            m.quantize, m.observe = False, False
    model.eval()
    for layer in layers:
        xl = capture_inputs(model, layer, x)
        _freeze_layer(layer, xl)
        xq = layer.act_fq(xl) if layer.act_fq is not None else xl
        w_float = layer.weight.detach().clone()
        if adaround:
            with torch.enable_grad():
                adaround_(layer, xq, **(adaround_kwargs or {}))
        if bias_correction:
            bias_correct_(layer, xq, float_weight=w_float)
    return model
