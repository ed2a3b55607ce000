"""Fake-quant building blocks for training and calibration.

* :mod:`inwhale.nn.fake_quant` — straight-through estimators, ``fake_quantize_ste`` and the
  :class:`FakeQuantize` module (observer → qparams → STE quantizer).
* :mod:`inwhale.nn.modules` — :class:`QuantLinear`, :class:`QuantConv2d` with ``from_float``.
"""

from inwhale.nn.fake_quant import (
    FakeQuantize,
    fake_quantize_ste,
    fake_quantize_ste_qp,
    grad_scale,
    round_ste,
)
from inwhale.nn.modules import QuantConv2d, QuantLinear, quant_layers, swap_layers

__all__ = [
    "FakeQuantize",
    "QuantConv2d",
    "QuantLinear",
    "fake_quantize_ste",
    "fake_quantize_ste_qp",
    "grad_scale",
    "quant_layers",
    "round_ste",
    "swap_layers",
]
