"""NormalFloat (NF4): a 4-bit code book built from normal quantiles, blockwise absmax
scaling and double quantization, as in QLoRA.

Reference: Dettmers, Pagnoni, Holtzman, Zettlemoyer, "QLoRA: Efficient Finetuning of
Quantized LLMs", NeurIPS 2023 (section 3 and appendix E); the bitsandbytes function
``create_normal_map``.

**The code book.** Pre-trained weights are roughly normal, so NF4 puts its 16 values at
quantiles of ``N(0, 1)``, normalised to ``[−1, 1]``. To have an exact zero with ``2^b``
codes the construction is asymmetric: ``2^(b−1)`` positive values, ``2^(b−1) − 1``
negative ones, and 0. With ``Φ⁻¹`` the normal quantile function and ``δ`` the offset,

    q⁺_i = Φ⁻¹(p_i),   p_i evenly spaced from δ down to ½, 2^(b−1) + 1 points, last dropped
    q⁻_j = −Φ⁻¹(p_j),  p_j evenly spaced from δ down to ½, 2^(b−1) points, last dropped
    NF = sort({q⁺} ∪ {0} ∪ {q⁻}) / max q⁺

The offset avoids ``Φ⁻¹(1) = ∞``: it is the mean of the half-steps of the two sides,
``δ = 1 − ½·(1/(2·(2^b − 1)) + 1/(2·2^b))`` = 1 − ½(1/30 + 1/32) = 0.9677083 for NF4.

**Blockwise absmax.** A weight ``W`` is split into blocks of ``B = 64`` consecutive values
(flattened order); each block keeps ``c = max|W_block|`` (float32) and 4-bit codes of
``W / c`` (nearest NF4 value). Dequantization is ``Ŵ = c · NF[code]``.

**Double quantization.** The constants ``c`` cost ``32 / 64 = 0.5`` bit per weight. QLoRA
quantizes them again: subtract their mean ``μ``, then store ``c − μ`` as 8-bit floats
(FP8 E4M3 here) in blocks of ``B₂ = 256`` with one float32 absmax ``c₂`` per block
("8-bit Floats with a blocksize of 256"). Bits per weight:

    plain:   4 + 32/B              = 4.5
    double:  4 + 8/B + 32/(B·B₂)   = 4.127     (plus one float32 μ per tensor)

Glossary: ``b`` code bits, ``Φ⁻¹`` normal quantile, ``δ`` offset, ``B`` block size,
``c`` absmax per block, ``μ`` mean of the ``c``, ``B₂`` second-level block, ``c₂``
second-level absmax.

>>> [round(v, 4) for v in nf4_values()[[0, 7, 8, 15]].tolist()]
[-1.0, 0.0, 0.0796, 1.0]
>>> nf4_bits_per_param(), round(nf4_bits_per_param(double_quant=True), 3)
(4.5, 4.127)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inwhale.core.checks import check_group_size, check_tensor
from inwhale.formats.codebook import dequantize_codes, nearest_codes
from inwhale.formats.minifloat import FP8_E4M3, minifloat_decode, minifloat_encode


def nf_offset(bits: int = 4) -> float:
    """``δ = 1 − ½·(1/(2·(2^b − 1)) + 1/(2·2^b))``; 0.9677083 for ``b = 4``.

    >>> round(nf_offset(4), 7)
    0.9677083
    """
    if not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f"bits must be an int in [2, 8], got {bits!r}")
    n = 2**bits
    return 1 - 0.5 * (1 / (2 * (n - 1)) + 1 / (2 * n))


def normal_float_values(bits: int = 4, offset: float | None = None) -> torch.Tensor:
    """The ``2^bits`` NormalFloat values in ``[−1, 1]``, sorted (float32).

    Construction in the module docstring; ``offset`` defaults to :func:`nf_offset`.
    Quantiles are taken in float64 with ``torch.special.ndtri`` (= ``Φ⁻¹``).
    """
    delta = nf_offset(bits) if offset is None else offset
    if not 0.5 < delta < 1:
        raise ValueError(f"offset must lie in (0.5, 1), got {delta}")
    half = 2 ** (bits - 1)
    pos = torch.special.ndtri(torch.linspace(delta, 0.5, half + 1, dtype=torch.float64)[:-1])
    neg = -torch.special.ndtri(torch.linspace(delta, 0.5, half, dtype=torch.float64)[:-1])
    v = torch.cat([pos, torch.zeros(1, dtype=torch.float64), neg]).sort().values
    return (v / v.max()).float()


def nf4_values() -> torch.Tensor:
    """The 16 NF4 values (``normal_float_values(4)``)."""
    return normal_float_values(4)


def nf4_bits_per_param(block_size: int = 64, double_quant: bool = False,
                       block_size2: int = 256) -> float:
    """Storage per weight: ``4 + 32/B``, or ``4 + 8/B + 32/(B·B₂)`` with double quantization."""
    check_group_size(block_size, name="block_size", allow_none=False)
    check_group_size(block_size2, name="block_size2", allow_none=False)
    if double_quant:
        return 4 + 8 / block_size + 32 / (block_size * block_size2)
    return 4 + 32 / block_size


@dataclass
class NF4Tensor:
    """An NF4-quantized tensor.

    Attributes:
        codes: uint8 indices into :func:`nf4_values`, the input's shape.
        absmax: float32 block constants ``c`` (shape ``(n_blocks,)``) — after double
            quantization these are the *reconstructed* constants ``ĉ``.
        block_size: ``B``.
        dq: for double quantization, ``(fp8 codes, c₂, μ)`` as stored; else ``None``.
    """

    codes: torch.Tensor
    absmax: torch.Tensor
    block_size: int
    dq: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def dequantize(self) -> torch.Tensor:
        """``Ŵ = c · NF[code]`` (float32, the original shape)."""
        w = dequantize_codes(self.codes, nf4_values().to(self.codes.device)).flatten()
        pad = -w.numel() % self.block_size
        w = torch.nn.functional.pad(w, (0, pad)).view(-1, self.block_size)
        return (w * self.absmax[:, None]).flatten()[: self.codes.numel()].view(self.codes.shape)

    def bits_per_param(self) -> float:
        """Bits actually stored per weight, counting every constant."""
        n = self.codes.numel()
        if self.dq is None:
            return (4 * n + 32 * self.absmax.numel()) / n
        q8, c2, _ = self.dq
        return (4 * n + 8 * q8.numel() + 32 * c2.numel() + 32) / n


def _blocks(x: torch.Tensor, block_size: int) -> torch.Tensor:
    """Flatten ``x`` and cut it into rows of ``block_size`` (zero-padding the last)."""
    check_group_size(block_size, name="block_size", allow_none=False)
    flat = x.flatten()
    return torch.nn.functional.pad(flat, (0, -flat.numel() % block_size)).view(-1, block_size)


def double_quantize_absmax(absmax: torch.Tensor, block_size2: int = 256):
    """Second-level quantization of the block constants (QLoRA's double quantization).

    ``c − μ`` is split into blocks of ``block_size2``; each block stores a float32
    ``c₂ = max|c − μ|`` and FP8 E4M3 codes of ``(c − μ) / c₂ · 448``.

    Returns:
        ``(reconstructed c, (fp8 codes, c₂, μ))``.
    """
    mu = absmax.mean()
    blocks = _blocks(absmax - mu, block_size2)  # (n2, B₂)
    c2 = blocks.abs().amax(dim=1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny)
    q8 = minifloat_encode(blocks / c2 * FP8_E4M3.max_finite, FP8_E4M3)
    rec = minifloat_decode(q8, FP8_E4M3) / FP8_E4M3.max_finite * c2 + mu
    return rec.flatten()[: absmax.numel()], (q8, c2.flatten(), mu)


@torch.no_grad()
def nf4_quantize(w: torch.Tensor, block_size: int = 64, double_quant: bool = False,
                 block_size2: int = 256) -> NF4Tensor:
    """Quantize ``w`` to NF4 with blockwise absmax scaling (and optional double quantization).

    Args:
        w: finite floating tensor (any shape; blocks run over the flattened tensor).
        block_size: ``B`` (64 in QLoRA).
        double_quant: quantize the absmax constants too (8-bit, blocks of ``block_size2``).
        block_size2: ``B₂`` (256 in QLoRA).

    Returns:
        :class:`NF4Tensor`. Codes are chosen *after* double quantization, against the
        reconstructed constants, so ``dequantize`` uses exactly what is stored.

    >>> t = nf4_quantize(torch.tensor([0.5, -1.0, 0.0, 2.0]), block_size=4)
    >>> t.absmax.tolist(), [round(v, 4) for v in t.dequantize().tolist()]
    ([2.0], [0.4922, -1.0501, 0.0, 2.0])
    """
    check_tensor(w, "w")
    rows = _blocks(w.float(), block_size)  # (n_blocks, B)
    absmax = rows.abs().amax(dim=1)
    dq = None
    if double_quant:
        absmax, dq = double_quantize_absmax(absmax, block_size2)
    safe = torch.where(absmax > 0, absmax, 1.0)[:, None]
    codes = nearest_codes(rows / safe, nf4_values().to(w.device))
    codes = codes.flatten()[: w.numel()].view(w.shape)
    return NF4Tensor(codes, absmax, block_size, dq)


__all__ = [
    "NF4Tensor",
    "double_quantize_absmax",
    "nf4_bits_per_param",
    "nf4_quantize",
    "nf4_values",
    "nf_offset",
    "normal_float_values",
]
