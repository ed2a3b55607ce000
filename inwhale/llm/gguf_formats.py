"""GGUF / llama.cpp block formats Q8_0, Q4_0, Q4_1 and the K-quants Q4_K and Q6_K, written
from the byte layout.

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
* Q8_0 is the core's symmetric narrow-range int8 (``s = max|x|/127``, codes in
  ``[-127, 127]``) with ties rounded away from zero (C's ``roundf``), rounded by
  :func:`inwhale.quantize` — with one difference: the core floors ``s`` at float32's ε so
  that no scale is 0, llama.cpp does not. A block with ``max|x| < 127 ε`` (about 1.5e-5)
  therefore keeps llama.cpp's ``d = max|x|/127`` (an fp16 subnormal, or 0 once stored) and
  its codes ``round(x·127/max|x|)``, byte for byte as ``ggml-quants.c`` writes them.
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

The Q6_K encoder (:func:`q6_k_quantize`) follows ``quantize_row_q6_K_ref`` in two levels:

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

**Q4_K** (144 bytes per 256 weights, 4.5 bits/weight) uses 8 sub-blocks of 32 with an
*offset*: :math:`\\hat x = d\\,\\sigma_k\\,q - d_{min}\\,\\mu_k`, :math:`q \\in [0, 15]`, with
6-bit :math:`\\sigma_k, \\mu_k` packed into 12 bytes under two fp16 super-scales
:math:`d = \\max_k s_k / 63`, :math:`d_{min} = \\max_k m_k / 63` (the format's rule). The
per-sub-block :math:`(s_k, m_k)` come from llama.cpp's ``make_qkx2_quants``: 21 candidate steps,
each with a weighted least-squares fit of scale and offset, importance
:math:`w_i = \\sqrt{\\overline{x^2}} + |x_i|` (:func:`q4_k_quantize`).

In :func:`q6_k_quantize`, ``search=False`` skips step 1's search (``rmse_type=0``:
:math:`s = x_{max}/-32`), the baseline that shows what the search buys. The ``gguf``
package has no K-quant quantizer, so both encoders are checked through the package's
*decoders* (``tests/test_gguf_kquant.py``).
Differences from the C reference: the search is vectorised, so float sums are added in a
different order and exact ties between candidates may resolve differently; a sub-block
whose int8 scale rounds to 0 stores code 32 (the reference keeps the search's codes; both
decode to 0); Q4_K clamps a negative fitted scale to 0 (the reference would pack it as is).

Glossary: ``x`` block values; ``d`` block scale (fp16); ``m`` block minimum (fp16);
``q`` codes; ``QK = 32`` the block size; ``QK_K = 256`` the K-quant super-block;
``s_k`` the float scale of sub-block ``k`` found by the search, ``sigma_k`` its int8 code;
``w`` the search's per-weight importance (``x**2``).
"""

from __future__ import annotations

import dataclasses

import torch

from inwhale._deprecated import renamed
from inwhale.core import PerAxis, QParams, pack_codes, qparams_from_range, quantize, unpack_codes
from inwhale.core.checks import check_codes, check_tensor
from inwhale.rounding import NearestRounding

__all__ = [
    "BLOCK_BYTES",
    "QK",
    "QK_K",
    "decode",
    "encode",
    "q4_0_dequantize",
    "q4_0_quantize",
    "q4_1_dequantize",
    "q4_1_quantize",
    "q4_k_dequantize",
    "q4_k_quantize",
    "q6_k_dequantize",
    "q6_k_quantize",
    "q8_0_dequantize",
    "q8_0_quantize",
]

QK = 32
QK_K = 256
BLOCK_BYTES = {"Q8_0": 34, "Q4_0": 18, "Q4_1": 20, "Q4_K": 144, "Q6_K": 210}
GROUP_MAX_EPS = 1e-15  # llama.cpp: a (sub-)block whose largest magnitude is below this is zero
_Q6_K_STEPS = (0, -9, -8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9)  # c, in order
_Q4_K_STEPS = tuple(range(21))  # make_qkx2_quants(..., rmin=-1, rdelta=0.1, nstep=20)


def _blocks(x: torch.Tensor, fmt: str, limit: float) -> torch.Tensor:
    """Flatten ``x`` into float32 blocks ``(n_blocks, 32)``; the size must divide by 32, the
    values be finite and ``|x|`` stay below ``limit`` (beyond it the fp16 block scale would
    overflow and the block decode as inf/NaN)."""
    check_tensor(x, "x")
    if x.numel() % QK:
        raise ValueError(f"x must have a multiple of {QK} elements for {fmt}, got {x.numel()}")
    blocks = x.detach().float().reshape(-1, QK)
    if bool((blocks.abs() > limit).any()):
        raise ValueError(f"x is too large for {fmt}: |x| must stay below {limit:.3g}, or the "
                         "block scale overflows float16")
    return blocks


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


def q8_0_quantize(x: torch.Tensor) -> torch.Tensor:
    """Encode ``x`` (numel divisible by 32) to Q8_0 bytes ``(n_blocks, 34)``.

    ``d = max|x|/127`` is the core's symmetric narrow-range scale without the core's ε
    floor (llama.cpp's rule, also for tiny blocks); codes ``round(x·(1/d))`` use ties away
    from zero. An all-zero block stores ``d = 0`` and codes 0.

    >>> b = q8_0_quantize(torch.linspace(-1, 1, 32))
    >>> b.shape, q8_0_dequantize(b)[0, -1].item()   # fp16 d = 1/127 rounded
    (torch.Size([1, 34]), 0.99993896484375)
    """
    blocks = _blocks(x, "Q8_0", limit=65504 * 127)  # (n, 32); d = max|x|/127 in fp16
    amax = blocks.abs().amax(dim=1, keepdim=True)  # (n, 1)
    qp = qparams_from_range(-amax, amax, bits=8, symmetric=True, narrow_range=True,
                            granularity=PerAxis(0))  # one row per block
    d = amax / ((qp.qmax - qp.qmin) / 2)  # the same max|x|/127, without the core's ε floor
    qp = dataclasses.replace(qp, scale=torch.where(amax > 0, d, torch.ones_like(d)))
    codes = quantize(blocks, qp, rounding=NearestRounding(ties="away"))  # int8 (n, 32)
    return torch.cat([_fp16_bytes(d), codes.view(torch.uint8)], dim=1)


def _check_bytes(b: object, fmt: str) -> torch.Tensor:
    """``b`` if it is a uint8 tensor ``(n_blocks, BLOCK_BYTES[fmt])``, else a clear error."""
    check_codes(b, "b")
    if b.dtype != torch.uint8:
        raise TypeError(f"b must be a uint8 tensor of {fmt} block bytes, got dtype {b.dtype}")
    n = BLOCK_BYTES[fmt]
    if b.ndim != 2 or b.shape[1] != n:
        raise ValueError(f"b must have shape (n_blocks, {n}) ({fmt} blocks of {n} bytes), "
                         f"got {tuple(b.shape)}")
    return b


def q8_0_dequantize(b: torch.Tensor) -> torch.Tensor:
    """Decode Q8_0 bytes ``(n_blocks, 34)`` to float32 ``(n_blocks, 32)``: ``d * q``."""
    _check_bytes(b, "Q8_0")
    return _fp16_from(b[:, :2]) * b[:, 2:].contiguous().view(torch.int8).float()


def q4_0_quantize(x: torch.Tensor) -> torch.Tensor:
    """Encode ``x`` to Q4_0 bytes ``(n_blocks, 18)``: ``d = x[argmax|x|] / -8``,
    ``q = trunc(x/d + 8.5)`` clipped to [0, 15].

    >>> x = torch.arange(32.0) - 16            # largest magnitude -16 -> d = 2, code 0
    >>> q4_0_dequantize(q4_0_quantize(x))[0, :3]
    tensor([-16., -14., -14.])
    """
    blocks = _blocks(x, "Q4_0", limit=65504 * 8)  # d = x[argmax|x|] / -8 in fp16
    imax = blocks.abs().argmax(dim=1, keepdim=True)
    d = blocks.gather(1, imax) / -8  # (n, 1), signed
    inv = torch.where(d == 0, torch.zeros_like(d), 1 / d)
    q = torch.trunc(blocks * inv + 8.5).clamp(0, 15).to(torch.uint8)
    return torch.cat([_fp16_bytes(d), _pack_nibbles(q)], dim=1)


def q4_0_dequantize(b: torch.Tensor) -> torch.Tensor:
    """Decode Q4_0 bytes ``(n_blocks, 18)``: ``d * (q - 8)``."""
    _check_bytes(b, "Q4_0")
    return _fp16_from(b[:, :2]) * (_unpack_nibbles(b[:, 2:]).float() - 8)


def q4_1_quantize(x: torch.Tensor) -> torch.Tensor:
    """Encode ``x`` to Q4_1 bytes ``(n_blocks, 20)``: ``d = (max - min)/15``, ``m = min``,
    ``q = trunc((x - m)/d + 0.5)`` clipped to [0, 15].

    >>> x = torch.arange(32.0) / 31 * 15 + 1    # min 1, max 16 -> d = 1, m = 1
    >>> q4_1_dequantize(q4_1_quantize(x))[0, :4]
    tensor([1., 1., 2., 2.])
    """
    blocks = _blocks(x, "Q4_1", limit=65504)  # m = min(x) and d = range / 15 in fp16
    hi, lo = blocks.amax(dim=1, keepdim=True), blocks.amin(dim=1, keepdim=True)
    d = (hi - lo) / 15
    inv = torch.where(d == 0, torch.zeros_like(d), 1 / d)
    q = torch.trunc((blocks - lo) * inv + 0.5).clamp(0, 15).to(torch.uint8)
    return torch.cat([_fp16_bytes(d), _fp16_bytes(lo), _pack_nibbles(q)], dim=1)


def q4_1_dequantize(b: torch.Tensor) -> torch.Tensor:
    """Decode Q4_1 bytes ``(n_blocks, 20)``: ``d * q + m``."""
    _check_bytes(b, "Q4_1")
    return _fp16_from(b[:, :2]) * _unpack_nibbles(b[:, 4:]).float() + _fp16_from(b[:, 2:4])


def q6_k_dequantize(b: torch.Tensor) -> torch.Tensor:
    """Decode Q6_K bytes ``(n_blocks, 210)`` to float32 ``(n_blocks, 256)``:
    ``d * scale[k] * (q - 32)`` with ``q`` rebuilt from ``ql`` and ``qh`` (module docstring)."""
    _check_bytes(b, "Q6_K")
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


def _super_blocks(x: torch.Tensor, fmt: str, limit: float) -> torch.Tensor:
    """Flatten ``x`` into float32 super-blocks ``(n, 256)``; the size must divide by 256 and
    ``|x|`` stay below ``limit`` (beyond it the fp16 super-block scale would overflow)."""
    check_tensor(x, "x")
    if x.numel() % QK_K:
        raise ValueError(f"x must have a multiple of {QK_K} elements for {fmt}, got {x.numel()}")
    blocks = x.detach().float().reshape(-1, QK_K)
    if bool((blocks.abs() > limit).any()):
        raise ValueError(f"x is too large for {fmt}: |x| must stay below {limit:.3g}, or the "
                         "super-block scale overflows float16")
    return blocks


def _fp16_scale(v: torch.Tensor, fmt: str) -> torch.Tensor:
    """``v`` rounded to fp16 (as stored), back in float32; an error if it overflows fp16."""
    v16 = v.half()
    if not bool(torch.isfinite(v16).all()):
        raise ValueError(f"x is too large for {fmt}: a super-block scale overflows float16")
    return v16.float()


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
    qp = QParams(step, zp, qmin, qmax, PerAxis(0), bits=(qmax - qmin).bit_length(),
                 zero_point_domain="int")
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


def q6_k_quantize(x: torch.Tensor, search: bool = True) -> torch.Tensor:
    """Encode ``x`` (numel divisible by 256) to Q6_K bytes ``(n_blocks, 210)``.

    Two levels (module docstring): float sub-block scales ``s_k`` from the weighted search,
    then ``d = s_max / -128`` (fp16) and int8 ``sigma_k = clamp(round(s_k / d), -128, 127)``,
    then codes ``q = clamp(round(x / (d16 sigma_k)) + 32, 0, 63)``. An all-zero super-block
    is 210 zero bytes. ``search=False``: sub-block scales ``x_max / -32`` (no search).

    Every weight decodes to the level of its sub-block's stored grid nearest to it. The grid
    follows from the bytes alone: setting every 6-bit code to ``c`` (low nibbles in ``ql``,
    top two bits in ``qh``) and decoding gives level ``c`` of each sub-block.

    >>> x = torch.linspace(-1, 1, 256)
    >>> b = q6_k_quantize(x)
    >>> def all_codes(c):                       # the same scales, every code set to c
    ...     lo, hi = c & 0xF, c >> 4
    ...     return torch.cat([b[:, :128] * 0 + (lo | lo << 4), b[:, 128:192] * 0 + hi * 0x55,
    ...                       b[:, 192:]], dim=1)
    >>> grid = torch.cat([q6_k_dequantize(all_codes(c)) for c in range(64)])   # (64, 256)
    >>> b.shape, torch.equal((q6_k_dequantize(b)[0] - x).abs(), (grid - x).abs().amin(0))
    (torch.Size([1, 210]), True)
    """
    blocks = _super_blocks(x, "Q6_K", limit=65504 * 128 * 32)  # (n, 256); d = ~x_max/4096
    n = blocks.shape[0]
    s = _search_sub_block_scales(blocks.reshape(-1, 16), search).reshape(n, 16)  # (n, 16)
    s_max = _signed_extreme(s)  # (n, 1)
    empty = s_max.abs() < GROUP_MAX_EPS  # all-zero super-block
    d = torch.where(empty, 1.0, s_max / -128)  # the format's rule: s_max -> code -128
    sigma = _codes(s, d, -128, 127)  # (n, 16) int8 sub-block scales
    d16 = _fp16_scale(torch.where(empty, 0.0, d), "Q6_K")  # the stored d
    step = (d16 * sigma).reshape(-1, 1)  # (n*16, 1): effective step of each sub-block
    sub = blocks.reshape(-1, 16)
    dead = step == 0  # scale rounded to 0: store code 32 (decodes to 0)
    q = _codes(torch.where(dead, 0.0, sub), torch.where(dead, 1.0, step), 0, 63, zero=32)
    out = torch.cat([_pack_q6_k_codes(q.reshape(n, QK_K)),
                     sigma.to(torch.int8).view(torch.uint8), _fp16_bytes(d16)], dim=1)
    return torch.where(empty, torch.zeros_like(out), out)


def _q4_k_scale_min(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The 12 scale bytes ``(n, 12)`` -> 6-bit sub-block scales and mins, each ``(n, 8)``.

    Sub-blocks 0-3 keep their 6 bits in the low bits of bytes 0-3 (scales) and 4-7 (mins);
    sub-blocks 4-7 keep their low 4 bits in bytes 8-11 (scale low nibble, min high nibble)
    and their top 2 bits in the top 2 bits of bytes 0-3 (scales) and 4-7 (mins).
    """
    b = b.long()
    lo_s, lo_m, mixed = b[:, 0:4], b[:, 4:8], b[:, 8:12]
    sc = torch.cat([lo_s & 63, (mixed & 0xF) | ((lo_s >> 6) << 4)], dim=1)
    mn = torch.cat([lo_m & 63, (mixed >> 4) | ((lo_m >> 6) << 4)], dim=1)
    return sc, mn


def _pack_q4_k_scale_min(sc: torch.Tensor, mn: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_q4_k_scale_min`: 6-bit ``(n, 8)`` scales and mins -> ``(n, 12)``."""
    sc, mn = sc.long(), mn.long()
    b = torch.cat([sc[:, :4] | ((sc[:, 4:] >> 4) << 6), mn[:, :4] | ((mn[:, 4:] >> 4) << 6),
                   (sc[:, 4:] & 0xF) | ((mn[:, 4:] & 0xF) << 4)], dim=1)
    return b.to(torch.uint8)


def q4_k_dequantize(b: torch.Tensor) -> torch.Tensor:
    """Decode Q4_K bytes ``(n_blocks, 144)`` to float32 ``(n_blocks, 256)``:
    ``d * sc[k] * q - dmin * m[k]`` for sub-block ``k`` (32 weights) of the super-block.

    Bytes: ``d`` (fp16), ``dmin`` (fp16), 12 bytes of 6-bit scales and mins, 128 bytes of
    codes; in each chunk of 64 weights, byte ``l`` holds weight ``l`` (low nibble) and
    weight ``l + 32`` (high nibble).
    """
    _check_bytes(b, "Q4_K")
    d, dmin = _fp16_from(b[:, 0:2]), _fp16_from(b[:, 2:4])  # (n, 1) each
    sc, mn = _q4_k_scale_min(b[:, 4:16])  # (n, 8) each
    q = unpack_codes(b[:, 16:].reshape(-1), 4, b.shape[0] * QK_K).reshape(-1, 4, 32, 2)
    q = q.transpose(2, 3).reshape(-1, 8, 32).float()  # (n, 8 sub-blocks, 32)
    out = (d * sc.float())[..., None] * q - (dmin * mn.float())[..., None]
    return out.reshape(-1, QK_K)


def _search_scale_min(x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """llama.cpp's ``make_qkx2_quants(32, 15, ..., rmin=-1, rdelta=0.1, nstep=20)``.

    Fits ``x ~ s l - m`` on every row of ``x (n, 32)`` with importance ``w (n, 32)``: for the
    range ``[lo, hi]`` (``lo = min(x, 0)``) and 21 candidate steps ``(hi - lo) / (14 + c/10)``
    the codes ``l = clamp(round((x - lo) / step), 0, 15)`` are fixed and ``s`` and the
    offset ``-m`` solved by weighted least squares (an offset above 0 is set to 0 and ``s``
    refit); the candidate with the smallest weighted squared error wins. The plain min–max
    fit ``s = (hi - lo)/15, m = -lo`` is the starting point. Returns ``(s, m)``, each ``(n,)``.
    """
    n = x.shape[0]
    lo, hi = x.amin(1, keepdim=True).clamp(max=0), x.amax(1, keepdim=True)  # (n, 1)
    flat = hi == lo
    rng = torch.where(flat, 1.0, hi - lo)
    c = torch.tensor(_Q4_K_STEPS, dtype=x.dtype, device=x.device)
    steps = torch.cat([rng / 15, rng / (14 + 0.1 * c)], dim=1)  # (n, 1 + 21); 0: min–max
    xc = (x - lo).unsqueeze(1).expand(n, steps.shape[1], 32).reshape(-1, 32)
    lq = _codes(xc, steps.reshape(-1, 1), 0, 15).to(x.dtype).reshape(n, -1, 32)  # (n, C, 32)
    sw, sx, sx2 = w.sum(1, keepdim=True), (w * x).sum(1, keepdim=True), (w * x * x).sum(1, True)
    wl = lq * w.unsqueeze(1)  # (n, C, 32)
    sl, sl2, sxl = wl.sum(-1), (wl * lq).sum(-1), (wl * x.unsqueeze(1)).sum(-1)  # (n, C)
    det = sw * sl2 - sl * sl
    ok = det > 0
    s = (sw * sxl - sx * sl) / torch.where(ok, det, 1.0)  # weighted least squares
    off = (sl2 * sx - sl * sxl) / torch.where(ok, det, 1.0)
    pos = off > 0  # an offset above 0 is not allowed: refit the scale with offset 0
    s = torch.where(pos, sxl / sl2.clamp_min(1e-30), s)
    off = torch.where(pos, 0.0, off)
    s[:, 0], off[:, 0] = steps[:, 0], lo[:, 0]  # candidate 0: the min–max fit itself
    # sum w (s l + off - x)^2, expanded into the sums above
    err = s * s * sl2 + 2 * s * off * sl - 2 * s * sxl + off * off * sw - 2 * off * sx + sx2
    err = torch.where(ok | (torch.arange(err.shape[1], device=x.device) == 0), err, torch.inf)
    best = err.argmin(dim=1, keepdim=True)  # first minimum: the min–max fit wins ties
    s_best, m_best = s.gather(1, best), -off.gather(1, best)
    return torch.where(flat, 0.0, s_best).squeeze(1), torch.where(flat, -lo, m_best).squeeze(1)


def q4_k_quantize(x: torch.Tensor) -> torch.Tensor:
    """Encode ``x`` (numel divisible by 256) to Q4_K bytes ``(n_blocks, 144)``, 4.5 bits/weight.

    Per sub-block of 32: a scale ``s_k`` and offset ``m_k >= 0`` (``x ~ s_k q - m_k``) from
    :func:`_search_scale_min` with importance ``w = sqrt(mean(x^2)) + |x|``; then both are
    quantized to 6 bits under fp16 super-block scales, the format's rule
    ``d = max_k s_k / 63``, ``dmin = max_k m_k / 63``; finally
    ``q = clamp(round((x + dmin16 m'_k) / (d16 s'_k)), 0, 15)``.

    Every weight decodes to the level of its sub-block's stored grid nearest to it; the grid
    follows from the bytes (every 4-bit code set to ``c``, decoded, is level ``c``):

    >>> x = torch.linspace(-1, 1, 256)
    >>> b = q4_k_quantize(x)
    >>> grid = torch.cat([q4_k_dequantize(torch.cat([b[:, :16], b[:, 16:] * 0 + (c | c << 4)],
    ...                                             dim=1)) for c in range(16)])  # (16, 256)
    >>> torch.equal((q4_k_dequantize(b)[0] - x).abs(), (grid - x).abs().amin(0))
    True
    """
    blocks = _super_blocks(x, "Q4_K", limit=65504 * 63 * 15 / 2)  # (n, 256); d ~ range/945
    n = blocks.shape[0]
    sub = blocks.reshape(-1, 32)  # (n*8, 32)
    w = (sub * sub).mean(1, keepdim=True).sqrt() + sub.abs()  # importance of each weight
    s, m = (t.clamp_min(0).reshape(n, 8) for t in _search_scale_min(sub, w))
    s_max, m_max = s.amax(1, keepdim=True), m.amax(1, keepdim=True)  # (n, 1)
    d, dmin = s_max / 63, m_max / 63  # the format's rule: the largest maps to code 63
    sc = _codes(s, torch.where(d > 0, d, 1.0), 0, 63)  # (n, 8) 6-bit scales
    mn = _codes(m, torch.where(dmin > 0, dmin, 1.0), 0, 63)
    d16, dmin16 = _fp16_scale(d, "Q4_K"), _fp16_scale(dmin, "Q4_K")  # as stored
    step = (d16 * sc).reshape(-1, 1)  # (n*8, 1)
    dead = step == 0  # scale 0: every value decodes to -dmin m; store code 0
    q = _codes(torch.where(dead, 0.0, sub + (dmin16 * mn).reshape(-1, 1)),
               torch.where(dead, 1.0, step), 0, 15).reshape(n, 4, 2, 32)  # (chunk, half, l)
    qs = pack_codes(q.transpose(2, 3), 4).reshape(n, 128)  # byte l: weight l | weight l+32
    return torch.cat([_fp16_bytes(d16), _fp16_bytes(dmin16), _pack_q4_k_scale_min(sc, mn), qs],
                     dim=1)


_CODECS = {
    "Q8_0": (q8_0_quantize, q8_0_dequantize),
    "Q4_0": (q4_0_quantize, q4_0_dequantize),
    "Q4_1": (q4_1_quantize, q4_1_dequantize),
    "Q4_K": (q4_k_quantize, q4_k_dequantize),
    "Q6_K": (q6_k_quantize, q6_k_dequantize),
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
    dec = _codec(fmt)[1]
    check_codes(b, "b")
    if b.dtype != torch.uint8:
        raise TypeError(f"b must be a uint8 tensor of block bytes, got dtype {b.dtype}")
    if b.numel() % BLOCK_BYTES[fmt]:
        raise ValueError(f"b must hold whole {fmt} blocks of {BLOCK_BYTES[fmt]} bytes, got "
                         f"{b.numel()} bytes")
    out = dec(b.reshape(-1, BLOCK_BYTES[fmt]))
    return out.reshape(shape) if shape is not None else out.reshape(-1)


# Old names (verb first), importable for one release; see inwhale._deprecated.
quantize_q4_0 = renamed(q4_0_quantize, "quantize_q4_0")
quantize_q4_1 = renamed(q4_1_quantize, "quantize_q4_1")
quantize_q4_k = renamed(q4_k_quantize, "quantize_q4_k")
quantize_q6_k = renamed(q6_k_quantize, "quantize_q6_k")
quantize_q8_0 = renamed(q8_0_quantize, "quantize_q8_0")
dequantize_q4_0 = renamed(q4_0_dequantize, "dequantize_q4_0")
dequantize_q4_1 = renamed(q4_1_dequantize, "dequantize_q4_1")
dequantize_q4_k = renamed(q4_k_dequantize, "dequantize_q4_k")
dequantize_q6_k = renamed(q6_k_dequantize, "dequantize_q6_k")
dequantize_q8_0 = renamed(q8_0_dequantize, "dequantize_q8_0")
