"""Bias correction (Nagel et al., 2019, "Data-Free Quantization", §4.2).

Quantizing the weights, ``W̃ = W + ε``, shifts the *mean* of a layer's output:

    E[ỹ] − E[y] = E[ε x] = ε · E[x]

and a biased error does not average out downstream (it moves ReLU thresholds and logits).
Bias correction subtracts it:

    b' = b − ε · E[x]      (so that E[W̃x + b'] = E[Wx + b] on the data).

The paper estimates ``E[x]`` from batch-norm statistics (data-free); this is the
*empirical* variant of the same section, with ``E[x]`` measured on calibration inputs. For
a convolution, ``E[ε * x]`` is measured directly on the outputs (this also accounts for zero
padding at the borders).

Glossary: ``W`` float weight, ``W̃`` quantized weight, ``ε = W̃ − W`` weight error,
``x`` the layer's input, ``b`` bias.
"""

from __future__ import annotations

import torch
from torch import nn

from inwhale.ptq._layers import channel_mean, check_layer, check_layer_input, layer_op

__all__ = ["bias_correct_", "output_mean_error"]


@torch.no_grad()
def output_mean_error(layer: nn.Module, x: torch.Tensor,
                      float_weight: torch.Tensor | None = None) -> torch.Tensor:
    """``E[W̃x − Wx]`` per output channel on inputs ``x`` (O,): the bias the weights add.

    ``float_weight`` is the float ``W`` when ``layer.weight`` no longer holds it (after
    AdaRound wrote on-grid weights); default ``layer.weight``.
    """
    check_layer(layer)
    x = check_layer_input(layer, x)
    w_q = layer.quantized_weight() if hasattr(layer, "quantized_weight") else layer.weight
    w = layer.weight if float_weight is None else float_weight
    return channel_mean(layer_op(layer, x, w_q) - layer_op(layer, x, w), layer)


@torch.no_grad()
def bias_correct_(layer: nn.Module, x: torch.Tensor,
                  float_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Subtract ``E[εx]`` from ``layer``'s bias (in place; a zero bias is created if absent).

    ``layer`` is a :class:`~inwhale.nn.modules.QuantLinear`/``QuantConv2d`` whose weight
    quantizer is frozen; ``x`` are calibration inputs of the layer, (N, I) or (N, C, H, W).
    ``float_weight``: the float weight if ``layer.weight`` was already replaced (AdaRound).
    Returns the correction ``ε·E[x]`` (O,) that was subtracted.

    >>> from inwhale.nn import FakeQuantize, QuantLinear
    >>> lin = nn.Linear(2, 1); lin.weight.data = torch.tensor([[0.3, 0.9]]); lin.bias.data[:] = 0
    >>> q = QuantLinear.from_float(lin, FakeQuantize(2, symmetric=True, narrow_range=True))
    >>> _ = q.weight_fq(q.weight); _ = q.weight_fq.freeze()       # W̃ = [0, 0.9], ε = [-0.3, 0]
    >>> bias_correct_(q, torch.tensor([[1.0, 0.0], [3.0, 0.0]])).tolist()   # ε·E[x] = -0.3·2
    [-0.6000000238418579]
    """
    delta = output_mean_error(layer, x, float_weight)
    if layer.bias is None:
        layer.bias = nn.Parameter(torch.zeros_like(delta))
    layer.bias.sub_(delta)
    return delta
