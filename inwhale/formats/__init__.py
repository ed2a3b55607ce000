"""Non-uniform quantizers and number formats.

* :mod:`~inwhale.formats.log` — power-of-two (logarithmic) quantization and shift arithmetic.
* :mod:`~inwhale.formats.companding` — µ-law / A-law compressors and the G.711 8-bit codec.
* :mod:`~inwhale.formats.lloyd_max` — the minimum-MSE scalar quantizer (Max 1960, Lloyd 1982).
* :mod:`~inwhale.formats.kmeans_share` — k-means weight sharing and a learned lookup table.
* :mod:`~inwhale.formats.codebook` — nearest-level codes and table lookups shared by the above.
* :mod:`~inwhale.formats.minifloat` — generic ExMy minifloats: FP8 E4M3 / E5M2, FP6, FP4.
* :mod:`~inwhale.formats.mx` — OCP Microscaling block formats (MXFP8/6/4, MXINT8).
* :mod:`~inwhale.formats.nf4` — NormalFloat 4 with blockwise absmax and double quantization.
"""

from inwhale.formats import minifloat as _minifloat
from inwhale.formats.codebook import dequantize_codes, nearest_codes
from inwhale.formats.companding import (
    a_law_compress,
    a_law_expand,
    alaw_decode,
    alaw_encode,
    companded_fake_quantize,
    mu_law_compress,
    mu_law_expand,
    mulaw_decode,
    mulaw_encode,
)
from inwhale.formats.kmeans_share import LearnedLUT, SharedWeights, kmeans_share, train_lut
from inwhale.formats.lloyd_max import (
    LloydMaxResult,
    density_lloyd_max,
    gaussian_lloyd_max,
    lloyd_max_samples,
)
from inwhale.formats.log import PoTCodes, pot_fake_quantize, pot_matmul_shift, pot_quantize
from inwhale.formats.minifloat import (
    FP4_E2M1,
    FP6_E2M3,
    FP6_E3M2,
    FP8_E4M3,
    FP8_E5M2,
    MinifloatFormat,
    minifloat_decode,
    minifloat_encode,
    minifloat_quantize,
)
from inwhale.formats.mx import (
    MX_FORMATS,
    MXFP4_E2M1,
    MXFP6_E2M3,
    MXFP6_E3M2,
    MXFP8_E4M3,
    MXFP8_E5M2,
    MXINT8,
    MXFormat,
    MXTensor,
    mx_fake_quantize,
    mx_quantize,
)
from inwhale.formats.nf4 import NF4Tensor, nf4_bits_per_param, nf4_quantize, nf4_values

# Old names, importable for one release (inwhale._deprecated); not in __all__.
quantize_minifloat = _minifloat.quantize_minifloat
encode_minifloat = _minifloat.encode_minifloat
decode_minifloat = _minifloat.decode_minifloat

__all__ = [
    "FP4_E2M1",
    "FP6_E2M3",
    "FP6_E3M2",
    "FP8_E4M3",
    "FP8_E5M2",
    "MXFP4_E2M1",
    "MXFP6_E2M3",
    "MXFP6_E3M2",
    "MXFP8_E4M3",
    "MXFP8_E5M2",
    "MXINT8",
    "MX_FORMATS",
    "LearnedLUT",
    "LloydMaxResult",
    "MXFormat",
    "MXTensor",
    "MinifloatFormat",
    "NF4Tensor",
    "PoTCodes",
    "SharedWeights",
    "a_law_compress",
    "a_law_expand",
    "alaw_decode",
    "alaw_encode",
    "companded_fake_quantize",
    "density_lloyd_max",
    "dequantize_codes",
    "gaussian_lloyd_max",
    "kmeans_share",
    "lloyd_max_samples",
    "minifloat_decode",
    "minifloat_encode",
    "minifloat_quantize",
    "mu_law_compress",
    "mu_law_expand",
    "mulaw_decode",
    "mulaw_encode",
    "mx_fake_quantize",
    "mx_quantize",
    "nearest_codes",
    "nf4_bits_per_param",
    "nf4_quantize",
    "nf4_values",
    "pot_fake_quantize",
    "pot_matmul_shift",
    "pot_quantize",
    "train_lut",
]
