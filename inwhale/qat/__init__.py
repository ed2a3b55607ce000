"""Quantization-aware training: quantizers that are trained with the network.

Each quantizer is an ``nn.Module`` that maps a tensor to its fake-quantized version and
can be plugged in as ``weight_fq`` / ``act_fq`` of a :class:`~inwhale.nn.modules.QuantLinear`
(see :func:`inwhale.nn.modules.swap_layers`).

* :mod:`~inwhale.qat.lsq` — LSQ, LSQ+ (learned step, learned offset)
* :mod:`~inwhale.qat.pact` — PACT (learned activation clip)
* :mod:`~inwhale.qat.dorefa` — DoReFa-Net weights and activations
* :mod:`~inwhale.qat.binary` — BinaryConnect, XNOR-Net, ABC-Net
* :mod:`~inwhale.qat.ternary` — TTQ
* :mod:`~inwhale.qat.bitnet` — BitNet b1.58 (absmean ternary weights, 8-bit activations)
* :mod:`~inwhale.qat.inq` — incremental network quantization (powers of two)
* :mod:`~inwhale.qat.relaxed` — Relaxed Quantization (no STE)
* :mod:`~inwhale.qat.regularizers` — kurtosis regularization
"""

from inwhale.qat.binary import ABCWeight, BinaryActivation, BinaryConnectWeight, XNORWeight
from inwhale.qat.bitnet import AbsMeanTernaryWeight, BitLinear, to_bitnet
from inwhale.qat.dorefa import DoReFaActivation, DoReFaWeight
from inwhale.qat.inq import INQ, pot_quantize
from inwhale.qat.lsq import LSQPlusQuantizer, LSQQuantizer
from inwhale.qat.pact import PACT
from inwhale.qat.regularizers import kurtosis, kurtosis_loss
from inwhale.qat.relaxed import RelaxedQuantizer
from inwhale.qat.ternary import TTQWeight

__all__ = [
    "INQ",
    "PACT",
    "ABCWeight",
    "AbsMeanTernaryWeight",
    "BinaryActivation",
    "BinaryConnectWeight",
    "BitLinear",
    "DoReFaActivation",
    "DoReFaWeight",
    "LSQPlusQuantizer",
    "LSQQuantizer",
    "RelaxedQuantizer",
    "TTQWeight",
    "XNORWeight",
    "kurtosis",
    "kurtosis_loss",
    "pot_quantize",
    "to_bitnet",
]
