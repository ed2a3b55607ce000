"""inwhale: quantization you can read, run and trust.

The public vocabulary is small::

    qp   = inwhale.choose_qparams(x, bits=4, symmetric=True, granularity=inwhale.PerAxis(0))
    q    = inwhale.quantize(x, qp)          # integer codes
    xhat = inwhale.dequantize(q, qp)        # s · (q − z)
    xhat = inwhale.fake_quantize(x, qp)     # both at once

Sub-packages: ``inwhale.rounding`` (rounding rules), ``inwhale.observers`` (range
estimation), ``inwhale.core.uniform`` (quantizer classes), ``inwhale.metrics``,
``inwhale.viz`` (plots and widgets, needs matplotlib), ``inwhale.data`` (offline models and
data), ``inwhale.llm``. Heavy optional dependencies are imported only where used.
"""

from inwhale.core import (
    Granularity,
    PackedTensor,
    PerAxis,
    PerGroup,
    PerTensor,
    PerToken,
    QParams,
    choose_qparams,
    dequantize,
    fake_quantize,
    integer_range,
    pack,
    pack_codes,
    qparams_from_range,
    quantize,
    unpack,
    unpack_codes,
)
from inwhale.core.uniform import (
    AffineUniformQuantizer,
    AsymmetricUniformQuantizer,
    DeadZoneQuantizer,
    MidRiseQuantizer,
    MidTreadQuantizer,
    SymmetricUniformQuantizer,
)
from inwhale.metrics import max_error, mse, sqnr_db

__version__ = "0.1.0"

__all__ = [
    "AffineUniformQuantizer",
    "AsymmetricUniformQuantizer",
    "DeadZoneQuantizer",
    "Granularity",
    "MidRiseQuantizer",
    "MidTreadQuantizer",
    "PackedTensor",
    "PerAxis",
    "PerGroup",
    "PerTensor",
    "PerToken",
    "QParams",
    "SymmetricUniformQuantizer",
    "choose_qparams",
    "dequantize",
    "fake_quantize",
    "integer_range",
    "max_error",
    "mse",
    "pack",
    "pack_codes",
    "qparams_from_range",
    "quantize",
    "sqnr_db",
    "unpack",
    "unpack_codes",
]
