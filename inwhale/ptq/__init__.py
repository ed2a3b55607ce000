"""Post-training quantization: the pipeline and the error-correction methods.

* :mod:`~inwhale.ptq.pipeline` — prepare → calibrate_ → convert_ (static, dynamic, weight-only)
* :mod:`~inwhale.ptq.bn_fold` — batch-norm folding
* :mod:`~inwhale.ptq.integer` — integer-only inference with fixed-point requantization
* :mod:`~inwhale.ptq.bias_correction`, :mod:`~inwhale.ptq.cle`, :mod:`~inwhale.ptq.adaround`,
  :mod:`~inwhale.ptq.smoothing`, :mod:`~inwhale.ptq.progressive` — error correction
* :mod:`~inwhale.ptq.decompose` — SVD, Tucker-2 and CP factorizations with quantized factors
"""

from inwhale.ptq import pipeline as _pipeline
from inwhale.ptq.adaround import adaround_
from inwhale.ptq.bias_correction import bias_correct_
from inwhale.ptq.bn_fold import fold_bn, fold_bn_sequential
from inwhale.ptq.cle import equalize_pair_, equalize_sequential_
from inwhale.ptq.integer import integerize
from inwhale.ptq.pipeline import QConfig, calibrate_, convert_, prepare, ptq_quantize
from inwhale.ptq.progressive import progressive_calibrate_
from inwhale.ptq.smoothing import smooth_pair_

# Old names, importable for one release (inwhale._deprecated); not in __all__.
calibrate, convert, quantize_ptq = _pipeline.calibrate, _pipeline.convert, _pipeline.quantize_ptq

__all__ = [
    "QConfig",
    "adaround_",
    "bias_correct_",
    "calibrate_",
    "convert_",
    "equalize_pair_",
    "equalize_sequential_",
    "fold_bn",
    "fold_bn_sequential",
    "integerize",
    "prepare",
    "progressive_calibrate_",
    "ptq_quantize",
    "smooth_pair_",
]
