"""The functional core: qparams → quantize → dequantize, granularity, packing.

Everything else in inwhale is built on these functions; nothing else computes a scale or a
zero point. The core imports only :mod:`inwhale.rounding` (a leaf).
"""

from inwhale.core.affine import dequantize, fake_quantize, fake_quantize_view, quantize
from inwhale.core.granularity import Granularity, PerAxis, PerGroup, PerTensor, PerToken
from inwhale.core.packing import PackedTensor, pack, pack_codes, unpack, unpack_codes
from inwhale.core.qparams import QParams, choose_qparams, integer_range, qparams_from_range

__all__ = [
    "Granularity",
    "PackedTensor",
    "PerAxis",
    "PerGroup",
    "PerTensor",
    "PerToken",
    "QParams",
    "choose_qparams",
    "dequantize",
    "fake_quantize",
    "fake_quantize_view",
    "integer_range",
    "pack",
    "pack_codes",
    "qparams_from_range",
    "quantize",
    "unpack",
    "unpack_codes",
]
