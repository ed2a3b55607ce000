"""Quantization in signal processing: what audio and imaging engineers learned first.

* :mod:`~inwhale.signal.dither` — RPDF/TPDF, subtractive and non-subtractive dither;
* :mod:`~inwhale.signal.noise_shaping` — error-feedback noise shaping, noise transfer function;
* :mod:`~inwhale.signal.error_diffusion` — Floyd–Steinberg halftoning;
* :mod:`~inwhale.signal.predictive` — delta modulation, closed-loop DPCM, LPC predictor;
* :mod:`~inwhale.signal.adpcm` — IMA ADPCM with the standard step and index tables.

Every quantizer here takes a per-tensor :class:`~inwhale.QParams` from the core.
"""

from inwhale.signal.adpcm import INDEX_TABLE, STEP_TABLE, ima_adpcm_decode, ima_adpcm_encode
from inwhale.signal.dither import dither_noise, dithered_quantize, theoretical_error_power
from inwhale.signal.error_diffusion import FLOYD_STEINBERG, error_diffusion
from inwhale.signal.noise_shaping import (
    noise_shaped_quantize,
    noise_transfer_function,
    shaping_taps,
)
from inwhale.signal.predictive import (
    delta_demodulate,
    delta_modulate,
    dpcm_decode,
    dpcm_encode,
    lpc,
)

__all__ = [
    "FLOYD_STEINBERG",
    "INDEX_TABLE",
    "STEP_TABLE",
    "delta_demodulate",
    "delta_modulate",
    "dither_noise",
    "dithered_quantize",
    "dpcm_decode",
    "dpcm_encode",
    "error_diffusion",
    "ima_adpcm_decode",
    "ima_adpcm_encode",
    "lpc",
    "noise_shaped_quantize",
    "noise_transfer_function",
    "shaping_taps",
    "theoretical_error_power",
]
