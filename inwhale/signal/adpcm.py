"""IMA ADPCM (Interactive Multimedia Association, "Recommended Practices for Enhancing Digital
Audio Compatibility in Multimedia Systems", rev. 3.00, 1992; also Intel/DVI ADPCM).

Adaptive DPCM of 16-bit audio at 4 bits per sample. The predictor is the previous
reconstruction (``a_1 = 1``); the quantizer step adapts to the signal through a table:

    step  = STEP_TABLE[index]                       (89 steps, 7 … 32767, ≈ ×1.1 each)
    code  = sign bit (8) | 3 magnitude bits ≈ min(7, ⌊4 |x − x̂| / step⌋)
    Δx̂    = (step · (2·mag + 1)) / 8  in integer shifts  (step>>3, +step, +step>>1, +step>>2)
    x̂    ← clamp(x̂ ± Δx̂, −32768, 32767)
    index ← clamp(index + INDEX_TABLE[code], 0, 88)

Large codes (mag 4..7) grow the step (+2, +4, +6, +8 table positions), small ones shrink it
(−1): the step follows the signal's envelope. The decoder runs the same state machine on the
codes alone, so no step or predictor is ever transmitted (backward adaptation).

Glossary: ``x`` int16 sample, ``x̂`` predictor (reconstruction), ``index`` step-table position,
``code`` 4-bit symbol.
"""

from __future__ import annotations

import torch

from inwhale.core.checks import check_codes

__all__ = ["INDEX_TABLE", "STEP_TABLE", "ima_adpcm_decode", "ima_adpcm_encode"]

INDEX_TABLE: tuple[int, ...] = (-1, -1, -1, -1, 2, 4, 6, 8, -1, -1, -1, -1, 2, 4, 6, 8)
"""Step-index change for each 4-bit code (the sign bit does not matter)."""

STEP_TABLE: tuple[int, ...] = (
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    16,
    17,
    19,
    21,
    23,
    25,
    28,
    31,
    34,
    37,
    41,
    45,
    50,
    55,
    60,
    66,
    73,
    80,
    88,
    97,
    107,
    118,
    130,
    143,
    157,
    173,
    190,
    209,
    230,
    253,
    279,
    307,
    337,
    371,
    408,
    449,
    494,
    544,
    598,
    658,
    724,
    796,
    876,
    963,
    1060,
    1166,
    1282,
    1411,
    1552,
    1707,
    1878,
    2066,
    2272,
    2499,
    2749,
    3024,
    3327,
    3660,
    4026,
    4428,
    4871,
    5358,
    5894,
    6484,
    7132,
    7845,
    8630,
    9493,
    10442,
    11487,
    12635,
    13899,
    15289,
    16818,
    18500,
    20350,
    22385,
    24623,
    27086,
    29794,
    32767,
)
"""The 89 IMA quantizer step sizes."""


def _update(pred: int, index: int, code: int) -> tuple[int, int]:
    """One step of the shared state machine: new (predictor, index) after ``code``."""
    step = STEP_TABLE[index]
    diff = step >> 3
    if code & 4:
        diff += step
    if code & 2:
        diff += step >> 1
    if code & 1:
        diff += step >> 2
    pred = pred - diff if code & 8 else pred + diff
    pred = max(-32768, min(32767, pred))
    index = max(0, min(88, index + INDEX_TABLE[code]))
    return pred, index


def _encode_sample(x: int, pred: int, index: int) -> int:
    """The 4-bit code for sample ``x`` given the state (successive approximation)."""
    step = STEP_TABLE[index]
    diff = x - pred
    code = 8 if diff < 0 else 0
    diff = abs(diff)
    for bit in (4, 2, 1):
        if diff >= step:
            code |= bit
            diff -= step
        step >>= 1
    return code


def _check_int16(x: object, name: str) -> list[int]:
    check_codes(x, name, -32768, 32767)  # int16 samples
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D tensor, got shape {tuple(x.shape)}")
    return x.cpu().tolist()


def ima_adpcm_encode(samples: torch.Tensor, pred: int = 0, index: int = 0) -> torch.Tensor:
    """Encode int16 ``samples`` (N,) into 4-bit codes (N,) uint8, from state ``(pred, index)``.

    >>> ima_adpcm_encode(torch.tensor([0, 100, 200, 300], dtype=torch.int16)).tolist()
    [0, 7, 7, 7]
    """
    codes = []
    for x in _check_int16(samples, "samples"):
        code = _encode_sample(x, pred, index)
        pred, index = _update(pred, index, code)
        codes.append(code)
    return torch.tensor(codes, dtype=torch.uint8, device=samples.device)


def ima_adpcm_decode(codes: torch.Tensor, pred: int = 0, index: int = 0) -> torch.Tensor:
    """Decode 4-bit ``codes`` (N,) back to int16 samples (N,), from state ``(pred, index)``.

    >>> ima_adpcm_decode(torch.tensor([0, 7, 7, 7], dtype=torch.uint8)).tolist()
    [0, 11, 41, 104]
    """
    check_codes(codes, "codes", 0, 15)  # 4-bit codes
    if codes.ndim != 1:
        raise ValueError(f"codes must be a 1-D tensor, got shape {tuple(codes.shape)}")
    out = []
    for code in codes.cpu().tolist():
        pred, index = _update(pred, index, code)
        out.append(pred)
    return torch.tensor(out, dtype=torch.int16, device=codes.device)
