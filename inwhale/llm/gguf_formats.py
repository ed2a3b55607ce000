"""GGUF / llama.cpp block formats Q8_0, Q4_0 and Q4_1, written from the byte layout.

Reference: G. Gerganov et al., *llama.cpp* / *ggml* (``ggml-quants.c``), and the GGUF file
format specification (``ggml/docs/gguf.md``). The ``gguf`` Python package ships a NumPy
port of the reference quantizers; ``tests/test_llm_gguf.py`` checks every byte against it.

A tensor is flattened row by row and cut into **blocks of 32 values** :math:`x_0..x_{31}`.
Each block is stored as a few bytes of fp16 parameters followed by the codes:

==========  ========================================  ====================================
format      parameters (fp16)                          codes and value
==========  ========================================  ====================================
Q8_0        :math:`d = \\max_i|x_i| / 127`             32 x int8, :math:`\\hat x_i = d\\,q_i`
Q4_0        :math:`d = x_{i^*} / (-8)`,               32 x 4 bit, :math:`\\hat x_i = d\\,(q_i - 8)`
            :math:`i^* = \\arg\\max_i |x_i|`
Q4_1        :math:`d = (\\max x - \\min x)/15`,         32 x 4 bit, :math:`\\hat x_i = d\\,q_i + m`
            :math:`m = \\min x`
==========  ========================================  ====================================

Bytes per block: Q8_0 = 2 + 32 = 34 (8.5 bits/weight), Q4_0 = 2 + 16 = 18 (4.5 bits),
Q4_1 = 2 + 2 + 16 = 20 (5.0 bits). In the 4-bit formats byte ``j`` (0..15) of the code
area holds code ``j`` in its low nibble and code ``j + 16`` in its high nibble.

Why the scale rules differ from :func:`inwhale.choose_qparams`
----------------------------------------------------------------
* Q8_0 *is* the core's symmetric narrow-range int8 (``s = max|x|/127``, codes in
  ``[-127, 127]``) with ties rounded away from zero (C's ``roundf``), so it is computed with
  :func:`inwhale.qparams_from_range` and :func:`inwhale.quantize` directly.
* Q4_0 maps the value of largest magnitude, *with its sign*, onto code ``-8``: the extreme
  end of the 16-level grid gets the extra level, so ``d`` may be negative. The core's
  symmetric rule would use ``max|x|/7.5`` and waste that level on the other side.
* Q4_1 stores the true minimum ``m`` as an fp16 offset (not an integer zero point), and
  does not widen the range to contain zero as the core's asymmetric rule does.
* Codes are computed with the float32 scale and *then* the scale is rounded to fp16 for
  storage, exactly as ``ggml-quants.c`` does; decoding uses the fp16 value.

K-quant (decode only): **Q6_K** groups 256 weights into a super-block of 16 sub-blocks of 16.
Each weight has a 6-bit code :math:`q \\in [0, 63]`, each sub-block an int8 scale
:math:`\\sigma_k`, the super-block one fp16 :math:`d`: :math:`\\hat x = d\\,\\sigma_k\\,(q - 32)`.
Bytes: 128 (low 4 bits, ``ql``) + 64 (high 2 bits, ``qh``) + 16 (scales) + 2 (d) = 210,
i.e. 6.5625 bits/weight. In each half of 128 weights, weight ``l + 32 i`` (``l < 32``,
``i < 4``) takes its low nibble from ``ql[l + 32 (i % 2)]`` (low nibble for ``i < 2``, high
for ``i >= 2``) and its high bits from bits ``2i, 2i+1`` of ``qh[l]``. (The reference encoder
runs an iterative scale search; only the decoder is written here.)

Glossary: ``x`` block values; ``d`` block scale (fp16); ``m`` block minimum (fp16);
``q`` codes; ``QK = 32`` the block size.
"""

from __future__ import annotations

import torch

from inwhale.core import PerAxis, pack_codes, qparams_from_range, quantize, unpack_codes
from inwhale.rounding import NearestRounding

__all__ = ["BLOCK_BYTES", "QK", "decode", "dequantize_q4_0", "dequantize_q4_1",
           "dequantize_q6_k", "dequantize_q8_0", "encode", "quantize_q4_0", "quantize_q4_1",
           "quantize_q8_0"]

QK = 32
QK_K = 256
BLOCK_BYTES = {"Q8_0": 34, "Q4_0": 18, "Q4_1": 20, "Q6_K": 210}


def _blocks(x: torch.Tensor) -> torch.Tensor:
    """Flatten ``x`` into float32 blocks ``(n_blocks, 32)``; the size must divide by 32."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError("x must be a floating torch.Tensor")
    if x.numel() % QK:
        raise ValueError(f"x must have a multiple of {QK} elements, got {x.numel()}")
    return x.detach().float().reshape(-1, QK)


def _fp16_bytes(v: torch.Tensor) -> torch.Tensor:
    """``(n, 1)`` float32 -> ``(n, 2)`` uint8, the little-endian fp16 bytes."""
    return v.half().view(torch.int16).view(torch.uint8).reshape(-1, 2)


def _fp16_from(b: torch.Tensor) -> torch.Tensor:
    """``(n, 2)`` uint8 -> ``(n, 1)`` float32."""
    return b.contiguous().view(torch.float16).float().reshape(-1, 1)


def _pack_nibbles(q: torch.Tensor) -> torch.Tensor:
    """Codes ``(n, 32)`` in [0, 15] -> ``(n, 16)`` bytes, byte j = q_j | q_{j+16} << 4."""
    interleaved = torch.stack([q[:, :16], q[:, 16:]], dim=-1)  # (n, 16, 2): low, high
    return pack_codes(interleaved, 4).reshape(-1, 16)


def _unpack_nibbles(b: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_pack_nibbles`: ``(n, 16)`` bytes -> ``(n, 32)`` codes (uint8)."""
    q = unpack_codes(b.reshape(-1), 4, b.numel() * 2).reshape(-1, 16, 2)
    return torch.cat([q[..., 0], q[..., 1]], dim=-1)


def quantize_q8_0(x: torch.Tensor) -> torch.Tensor:
    """Encode ``x`` (numel divisible by 32) to Q8_0 bytes ``(n_blocks, 34)``.

    ``d = max|x|/127`` is the core's symmetric narrow-range scale; codes use ties away
    from zero. An all-zero block stores ``d = 0``.

    >>> b = quantize_q8_0(torch.linspace(-1, 1, 32))
    >>> b.shape, dequantize_q8_0(b)[0, -1].item()   # fp16 d = 1/127 rounded
    (torch.Size([1, 34]), 0.99993896484375)
    """
    blocks = _blocks(x)  # (n, 32)
    amax = blocks.abs().amax(dim=1, keepdim=True)  # (n, 1)
    qp = qparams_from_range(-amax, amax, bits=8, symmetric=True, narrow_range=True,
                            granularity=PerAxis(0))  # one row per block
    codes = quantize(blocks, qp, rounding=NearestRounding(ties="away"))  # int8 (n, 32)
    d = torch.where(amax == 0, torch.zeros_like(amax), qp.scale)
    return torch.cat([_fp16_bytes(d), codes.view(torch.uint8)], dim=1)


def dequantize_q8_0(b: torch.Tensor) -> torch.Tensor:
    """Decode Q8_0 bytes ``(n_blocks, 34)`` to float32 ``(n_blocks, 32)``: ``d * q``."""
    return _fp16_from(b[:, :2]) * b[:, 2:].contiguous().view(torch.int8).float()


def quantize_q4_0(x: torch.Tensor) -> torch.Tensor:
    """Encode ``x`` to Q4_0 bytes ``(n_blocks, 18)``: ``d = x[argmax|x|] / -8``,
    ``q = trunc(x/d + 8.5)`` clipped to [0, 15].

    >>> x = torch.arange(32.0) - 16            # largest magnitude -16 -> d = 2, code 0
    >>> dequantize_q4_0(quantize_q4_0(x))[0, :3]
    tensor([-16., -14., -14.])
    """
    blocks = _blocks(x)
    imax = blocks.abs().argmax(dim=1, keepdim=True)
    d = blocks.gather(1, imax) / -8  # (n, 1), signed
    inv = torch.where(d == 0, torch.zeros_like(d), 1 / d)
    q = torch.trunc(blocks * inv + 8.5).clamp(0, 15).to(torch.uint8)
    return torch.cat([_fp16_bytes(d), _pack_nibbles(q)], dim=1)


def dequantize_q4_0(b: torch.Tensor) -> torch.Tensor:
    """Decode Q4_0 bytes ``(n_blocks, 18)``: ``d * (q - 8)``."""
    return _fp16_from(b[:, :2]) * (_unpack_nibbles(b[:, 2:]).float() - 8)


def quantize_q4_1(x: torch.Tensor) -> torch.Tensor:
    """Encode ``x`` to Q4_1 bytes ``(n_blocks, 20)``: ``d = (max - min)/15``, ``m = min``,
    ``q = trunc((x - m)/d + 0.5)`` clipped to [0, 15].

    >>> x = torch.arange(32.0) / 31 * 15 + 1    # min 1, max 16 -> d = 1, m = 1
    >>> dequantize_q4_1(quantize_q4_1(x))[0, :4]
    tensor([1., 1., 2., 2.])
    """
    blocks = _blocks(x)
    hi, lo = blocks.amax(dim=1, keepdim=True), blocks.amin(dim=1, keepdim=True)
    d = (hi - lo) / 15
    inv = torch.where(d == 0, torch.zeros_like(d), 1 / d)
    q = torch.trunc((blocks - lo) * inv + 0.5).clamp(0, 15).to(torch.uint8)
    return torch.cat([_fp16_bytes(d), _fp16_bytes(lo), _pack_nibbles(q)], dim=1)


def dequantize_q4_1(b: torch.Tensor) -> torch.Tensor:
    """Decode Q4_1 bytes ``(n_blocks, 20)``: ``d * q + m``."""
    return _fp16_from(b[:, :2]) * _unpack_nibbles(b[:, 4:]).float() + _fp16_from(b[:, 2:4])


def dequantize_q6_k(b: torch.Tensor) -> torch.Tensor:
    """Decode Q6_K bytes ``(n_blocks, 210)`` to float32 ``(n_blocks, 256)``:
    ``d * scale[k] * (q - 32)`` with ``q`` rebuilt from ``ql`` and ``qh`` (module docstring)."""
    ql, qh = b[:, :128].long(), b[:, 128:192].long()  # (n, 128), (n, 64)
    sc = b[:, 192:208].contiguous().view(torch.int8).float()  # (n, 16)
    d = _fp16_from(b[:, 208:210])  # (n, 1)
    halves = []
    for h in range(2):  # two halves of 128 weights
        low, high = ql[:, 64 * h:64 * h + 64], qh[:, 32 * h:32 * h + 32]  # (n, 64), (n, 32)
        parts = []
        for i in range(4):  # weights l + 32 i, l < 32
            nib = low[:, 32 * (i % 2):32 * (i % 2) + 32]
            nib = nib & 0xF if i < 2 else nib >> 4
            parts.append((nib | (((high >> (2 * i)) & 3) << 4)) - 32)  # (n, 32)
        halves.append(torch.cat(parts, 1))
    q = torch.cat(halves, 1).float().reshape(-1, 16, 16)  # (n, 16 sub-blocks, 16)
    return ((d * sc)[..., None] * q).reshape(-1, QK_K)


_CODECS = {
    "Q8_0": (quantize_q8_0, dequantize_q8_0),
    "Q4_0": (quantize_q4_0, dequantize_q4_0),
    "Q4_1": (quantize_q4_1, dequantize_q4_1),
    "Q6_K": (None, dequantize_q6_k),
}


def _codec(fmt: str) -> tuple:
    if fmt not in _CODECS:
        raise ValueError(f"fmt must be one of {sorted(_CODECS)}, got {fmt!r}")
    return _CODECS[fmt]


def encode(x: torch.Tensor, fmt: str) -> torch.Tensor:
    """Encode ``x`` (any shape, numel divisible by 32) to ``fmt`` block bytes, shape
    ``(n_blocks, BLOCK_BYTES[fmt])`` uint8. ``encode(x, f).numel() * 8 / x.numel()`` is
    the bits per weight (8.5, 4.5, 5.0)."""
    enc = _codec(fmt)[0]
    if enc is None:
        raise ValueError(f"encoding {fmt} is not implemented (decode only)")
    return enc(x)


def decode(b: torch.Tensor, fmt: str, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Decode ``fmt`` block bytes to float32, reshaped to ``shape`` when given."""
    if not isinstance(b, torch.Tensor) or b.dtype != torch.uint8:
        raise TypeError("b must be a uint8 torch.Tensor of block bytes")
    b = b.reshape(-1, BLOCK_BYTES[fmt] if fmt in BLOCK_BYTES else 1)
    out = _codec(fmt)[1](b)
    return out.reshape(shape) if shape is not None else out.reshape(-1)
