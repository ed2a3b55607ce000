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

K-quant: **Q6_K** groups 256 weights into a super-block of 16 sub-blocks of 16. Each weight
has a 6-bit code :math:`q \\in [0, 63]`, each sub-block an int8 scale :math:`\\sigma_k`, the
super-block one fp16 :math:`d`: :math:`\\hat x = d\\,\\sigma_k\\,(q - 32)`.
Bytes: 128 (low 4 bits, ``ql``) + 64 (high 2 bits, ``qh``) + 16 (scales) + 2 (d) = 210,
i.e. 6.5625 bits/weight. In each half of 128 weights, weight ``l + 32 i`` (``l < 32``,
``i < 4``) takes its low nibble from ``ql[l + 32 (i % 2)]`` (low nibble for ``i < 2``, high
for ``i >= 2``) and its high bits from bits ``2i, 2i+1`` of ``qh[l]``.

The Q6_K encoder (:func:`quantize_q6_k`) follows ``quantize_row_q6_K_ref`` in two levels:

1. **Sub-block scale search** (llama.cpp's ``make_qx_quants(16, 32, x, L, rmse_type=1)``).
   For a sub-block :math:`x_1..x_{16}` with signed extreme :math:`x_{max}` (largest
   magnitude, with its sign), try the 19 steps :math:`s_c = x_{max} / -(32 + c/10)`,
   :math:`c \\in \\{0, \\pm1, .., \\pm 9\\}`; each gives codes
   :math:`l_i = \\mathrm{clamp}(\\lfloor x_i / s_c \\rceil, -32, 31)`. For fixed codes the
   scale minimising the *weighted* error :math:`\\sum_i w_i (x_i - s\\,l_i)^2` with
   :math:`w_i = x_i^2` is the least-squares
   :math:`s^* = \\sum w_i x_i l_i / \\sum w_i l_i^2`, and the error left is
   :math:`\\sum w_i x_i^2 - (\\sum w_i x_i l_i)^2 / \\sum w_i l_i^2`; so the candidate
   with the largest :math:`(\\sum w x l)^2 / \\sum w l^2` wins and its :math:`s^*` is kept.
   The weight :math:`x^2` spends accuracy on the large weights.
2. **Scales of the scales.** The 16 sub-block scales are quantized to int8 with the Q4_0
   trick: the signed largest one maps to code -128, i.e. step :math:`d = s_{max} / -128`
   (the format's own rule, not :func:`inwhale.qparams_from_range`), ``d`` is stored in fp16,
   and the final codes are recomputed with the *stored* effective step
   :math:`d_{16}\\,\\sigma_k`. Rounding and clamping use :func:`inwhale.quantize`
   (ties to even, as llama.cpp's ``nearest_int``).

``search=False`` skips step 1's search (``rmse_type=0``: :math:`s = x_{max}/-32`), the
baseline that shows what the search buys. The ``gguf`` package has no Q6_K quantizer, so
the encoder is checked through the package's *decoder* (``tests/test_gguf_kquant.py``).
Differences from the C reference: the search is vectorised, so float sums are added in a
different order and exact ties between candidates may resolve differently; a sub-block
whose int8 scale rounds to 0 stores code 32 (the reference keeps the search's codes; both
decode to 0).

Glossary: ``x`` block values; ``d`` block scale (fp16); ``m`` block minimum (fp16);
``q`` codes; ``QK = 32`` the block size; ``QK_K = 256`` the K-quant super-block;
``s_k`` the float scale of sub-block ``k`` found by the search, ``sigma_k`` its int8 code;
``w`` the search's per-weight importance (``x**2``).
"""

from __future__ import annotations

import torch

from inwhale.core import PerAxis, QParams, pack_codes, qparams_from_range, quantize, unpack_codes
from inwhale.rounding import NearestRounding

__all__ = ["BLOCK_BYTES", "QK", "QK_K", "decode", "dequantize_q4_0", "dequantize_q4_1",
           "dequantize_q6_k", "dequantize_q8_0", "encode", "quantize_q4_0", "quantize_q4_1",
           "quantize_q6_k", "quantize_q8_0"]

QK = 32
QK_K = 256
BLOCK_BYTES = {"Q8_0": 34, "Q4_0": 18, "Q4_1": 20, "Q6_K": 210}
GROUP_MAX_EPS = 1e-15  # llama.cpp: a (sub-)block whose largest magnitude is below this is zero
_Q6_K_STEPS = (0, -9, -8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9)  # c, in order


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


def _signed_extreme(x: torch.Tensor) -> torch.Tensor:
    """``(n, k)`` -> ``(n, 1)``: the entry of largest magnitude in each row, with its sign."""
    return x.gather(1, x.abs().argmax(dim=1, keepdim=True))


def _codes(x: torch.Tensor, step: torch.Tensor, qmin: int, qmax: int, zero: int = 0
           ) -> torch.Tensor:
    """``clamp(round(x / step) + zero, qmin, qmax)`` row by row via :func:`inwhale.quantize`.

    ``x`` is ``(n, k)`` and ``step`` ``(n, 1)`` (it may be negative: the GGUF formats put the
    signed extreme on the lowest code). Returns codes ``(n, k)`` (int8 or uint8).
    """
    zp = torch.full_like(step, zero, dtype=torch.int32)
    qp = QParams(step, zp, qmin, qmax, PerAxis(0), bits=(qmax - qmin).bit_length())
    return quantize(x, qp)


def _search_sub_block_scales(x: torch.Tensor, search: bool = True) -> torch.Tensor:
    """llama.cpp's ``make_qx_quants(16, 32, ..., rmse_type=1)`` on every row of ``x (n, 16)``.

    Returns the float scales ``s (n,)`` (0 for an all-zero row); the math is in the module
    docstring. Each candidate step ``x_max / -(32 + c/10)`` gives codes ``l``; the candidate
    maximising ``(sum w x l)^2 / sum w l^2`` (``w = x^2``) wins, its least-squares scale
    ``sum w x l / sum w l^2`` is returned. ``search=False`` returns ``x_max / -32``.
    """
    n = x.shape[0]
    xmax = _signed_extreme(x)  # (n, 1)
    is_zero = xmax.abs() < GROUP_MAX_EPS
    xmax = torch.where(is_zero, torch.ones_like(xmax), xmax)  # placeholder, result zeroed
    if not search:
        return torch.where(is_zero, 0.0, xmax / -32).squeeze(1)
    c = torch.tensor(_Q6_K_STEPS, dtype=x.dtype, device=x.device)  # (C,)
    steps = xmax / -(32 + 0.1 * c)  # (n, C): candidate steps
    xc = x.unsqueeze(1).expand(n, len(c), 16).reshape(-1, 16)  # (n*C, 16)
    lq = _codes(xc, steps.reshape(-1, 1), -32, 31).to(x.dtype).reshape(n, len(c), 16)
    w = x * x  # (n, 16): importance of each weight
    sumlx = (lq * (w * x).unsqueeze(1)).sum(-1)  # (n, C): sum w x l
    suml2 = (lq.square_() * w.unsqueeze(1)).sum(-1)  # (n, C): sum w l^2 (lq squared in place)
    score = torch.where(suml2 > 0, sumlx * sumlx / suml2.clamp_min(1e-30), -1.0)
    best = score.argmax(dim=1, keepdim=True)  # first maximum: the reference's tie order
    s = sumlx.gather(1, best) / suml2.gather(1, best).clamp_min(1e-30)
    return torch.where(is_zero, 0.0, s).squeeze(1)


def _pack_q6_k_codes(q: torch.Tensor) -> torch.Tensor:
    """Codes ``(n, 256)`` in [0, 63] -> ``ql (n, 128)`` and ``qh (n, 64)`` bytes, concatenated.

    Per half ``h`` and ``l < 32``, with ``P[i] = q[128 h + 32 i + l]``:
    ``ql[64h + l] = P0 & 15 | (P2 & 15) << 4``, ``ql[64h + 32 + l] = P1 & 15 | (P3 & 15) << 4``,
    ``qh[32h + l] = P0 >> 4 | (P1 >> 4) << 2 | (P2 >> 4) << 4 | (P3 >> 4) << 6``.
    """
    n = q.shape[0]
    p = q.reshape(n, 2, 4, 32)  # (n, half h, part i, l)
    low, high = p & 0xF, p >> 4
    ql = pack_codes(torch.stack([low[:, :, :2], low[:, :, 2:]], dim=-1), 4)  # nibble pairs
    qh = pack_codes(high.transpose(2, 3), 2)  # (n, h, l, i): 4 x 2 bits per byte
    return torch.cat([ql.reshape(n, 128), qh.reshape(n, 64)], dim=1)


def quantize_q6_k(x: torch.Tensor, search: bool = True) -> torch.Tensor:
    """Encode ``x`` (numel divisible by 256) to Q6_K bytes ``(n_blocks, 210)``.

    Two levels (module docstring): float sub-block scales ``s_k`` from the weighted search,
    then ``d = s_max / -128`` (fp16) and int8 ``sigma_k = clamp(round(s_k / d), -128, 127)``,
    then codes ``q = clamp(round(x / (d16 sigma_k)) + 32, 0, 63)``. An all-zero super-block
    is 210 zero bytes. ``search=False``: sub-block scales ``x_max / -32`` (no search).

    >>> x = torch.linspace(-1, 1, 256)
    >>> b = quantize_q6_k(x)
    >>> b.shape, round(float((dequantize_q6_k(b) - x).abs().max()), 4)
    (torch.Size([1, 210]), 0.0129)
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError("x must be a floating torch.Tensor")
    if x.numel() % QK_K:
        raise ValueError(f"x must have a multiple of {QK_K} elements for Q6_K, got {x.numel()}")
    blocks = x.detach().float().reshape(-1, QK_K)  # (n, 256)
    n = blocks.shape[0]
    s = _search_sub_block_scales(blocks.reshape(-1, 16), search).reshape(n, 16)  # (n, 16)
    s_max = _signed_extreme(s)  # (n, 1)
    empty = s_max.abs() < GROUP_MAX_EPS  # all-zero super-block
    d = torch.where(empty, 1.0, s_max / -128)  # the format's rule: s_max -> code -128
    sigma = _codes(s, d, -128, 127)  # (n, 16) int8 sub-block scales
    d16 = torch.where(empty, 0.0, d).half().float()  # the stored d
    step = (d16 * sigma).reshape(-1, 1)  # (n*16, 1): effective step of each sub-block
    sub = blocks.reshape(-1, 16)
    dead = step == 0  # scale rounded to 0: store code 32 (decodes to 0)
    q = _codes(torch.where(dead, 0.0, sub), torch.where(dead, 1.0, step), 0, 63, zero=32)
    out = torch.cat([_pack_q6_k_codes(q.reshape(n, QK_K)),
                     sigma.to(torch.int8).view(torch.uint8), _fp16_bytes(d16)], dim=1)
    return torch.where(empty, torch.zeros_like(out), out)


_CODECS = {
    "Q8_0": (quantize_q8_0, dequantize_q8_0),
    "Q4_0": (quantize_q4_0, dequantize_q4_0),
    "Q4_1": (quantize_q4_1, dequantize_q4_1),
    "Q6_K": (quantize_q6_k, dequantize_q6_k),
}


def _codec(fmt: str) -> tuple:
    if fmt not in _CODECS:
        raise ValueError(f"fmt must be one of {sorted(_CODECS)}, got {fmt!r}")
    return _CODECS[fmt]


def encode(x: torch.Tensor, fmt: str) -> torch.Tensor:
    """Encode ``x`` (any shape, numel divisible by 32, by 256 for Q6_K) to ``fmt`` block
    bytes, shape ``(n_blocks, BLOCK_BYTES[fmt])`` uint8. ``encode(x, f).numel() * 8 /
    x.numel()`` is the bits per weight (8.5, 4.5, 5.0, 6.5625)."""
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
