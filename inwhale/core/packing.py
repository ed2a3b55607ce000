"""Packing: store b-bit codes densely in bytes, and count the bytes a quantized tensor needs.

A ``uint8`` holds ``8 // b`` codes of ``b ∈ {1, 2, 4, 8}`` bits. Code ``i`` of a byte sits
at bit offset ``i·b`` (little-endian inside the byte: the first code in the low bits), so

    byte = c₀ | c₁ << b | c₂ << 2b | …

Signed codes are stored with an offset: ``u = q − q_min ∈ [0, 2^b − 1]``. A tensor whose
element count is not a multiple of ``8 // b`` is padded with zero codes; the true count is
kept so that :func:`unpack_codes` returns exactly the original tensor.

Worked example: 4-bit codes [1, 2, 15] → bytes [0x21, 0x0F] (1 | 2<<4 = 33, 15 | 0<<4).

>>> pack_codes(torch.tensor([1, 2, 15], dtype=torch.uint8), bits=4)
tensor([33, 15], dtype=torch.uint8)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from inwhale.core.qparams import QParams

PACK_BITS = (1, 2, 4, 8)


def _check_pack_bits(bits: int) -> None:
    if bits not in PACK_BITS:
        raise ValueError(
            f"bits must be one of {PACK_BITS} for byte packing, got {bits} "
            "(store 3-bit codes in 4 bits, 5-7-bit codes in 8)"
        )


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack unsigned codes in ``[0, 2^bits − 1]`` into a flat ``uint8`` tensor.

    Args:
        codes: integer tensor of any shape (flattened in row-major order).
        bits: 1, 2, 4 or 8.

    Returns:
        ``uint8`` tensor of ``ceil(numel · bits / 8)`` bytes.
    """
    _check_pack_bits(bits)
    if codes.is_floating_point():
        raise TypeError("codes must be an integer tensor")
    flat = codes.reshape(-1)
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= 2**bits):
        raise ValueError(f"codes must lie in [0, {2**bits - 1}] to pack into {bits} bits")
    per_byte = 8 // bits
    pad = -flat.numel() % per_byte
    flat = torch.cat([flat.to(torch.uint8), flat.new_zeros(pad, dtype=torch.uint8)])
    slots = flat.reshape(-1, per_byte)  # (n_bytes, per_byte): the codes of each byte
    packed = slots[:, 0].clone()
    for i in range(1, per_byte):  # byte = c0 | c1 << b | c2 << 2b | ...
        packed |= slots[:, i] << (i * bits)
    return packed


def unpack_codes(packed: torch.Tensor, bits: int, numel: int) -> torch.Tensor:
    """Inverse of :func:`pack_codes`: the first ``numel`` codes as a flat ``uint8`` tensor.

    >>> unpack_codes(torch.tensor([33, 15], dtype=torch.uint8), bits=4, numel=3)
    tensor([ 1,  2, 15], dtype=torch.uint8)
    """
    _check_pack_bits(bits)
    if packed.dtype != torch.uint8:
        raise TypeError(f"packed must be uint8, got {packed.dtype}")
    per_byte = 8 // bits
    if numel > packed.numel() * per_byte or numel < 0:
        raise ValueError(
            f"numel={numel} does not fit in {packed.numel()} bytes of {bits}-bit codes"
        )
    mask = (1 << bits) - 1
    slots = torch.empty(packed.numel(), per_byte, dtype=torch.uint8, device=packed.device)
    for i in range(per_byte):  # code i of each byte sits at bit offset i·b
        slots[:, i] = (packed >> (i * bits)) & mask
    return slots.reshape(-1)[:numel]


@dataclass
class PackedTensor:
    """A quantized tensor as it would be stored: packed codes plus its parameters.

    Attributes:
        data: packed codes (``uint8``), see :func:`pack_codes`.
        shape: shape of the original tensor.
        qparams: the parameters, with ``scale`` cast to the storage dtype.
        store_zero_point: False when every zero point equals the symmetric middle code,
            which then need not be stored. Integer-domain zero points are stored as codes
            (``storage_bits`` each); float-domain ones (HQQ, mid-rise) as real numbers in
            the scale's dtype.
        storage_bits: bits per stored code (a packable width ≥ ``qparams.bits``).
    """

    data: torch.Tensor
    shape: torch.Size
    qparams: QParams
    store_zero_point: bool
    storage_bits: int

    @property
    def nbytes(self) -> int:
        """Bytes stored: packed codes + scales + (packed) zero points."""
        n = self.data.numel() + self.qparams.scale.numel() * self.qparams.scale.element_size()
        z = self.qparams.zero_point
        if self.store_zero_point and self.qparams.zero_point_domain == "float":
            n += z.numel() * z.element_size()
        elif self.store_zero_point:
            n += (z.numel() * self.storage_bits + 7) // 8
        return n

    @property
    def bits_per_value(self) -> float:
        """``8 · nbytes / numel``: the effective storage cost of one element."""
        return 8 * self.nbytes / max(1, self.shape.numel())


def _storage_bits(bits: int) -> int:
    return next(b for b in PACK_BITS if b >= bits) if bits <= 8 else 16


def pack(
    codes: torch.Tensor, qparams: QParams, scale_dtype: torch.dtype = torch.float16
) -> PackedTensor:
    """Pack ``codes`` (from :func:`~inwhale.core.affine.quantize`) with their parameters.

    Codes of 3, 5, 6 or 7 bits are stored in the next packable width (4 or 8). Scales are
    stored in ``scale_dtype`` (float16 by default, as GGUF and most LLM formats do).

    >>> from inwhale.core.qparams import choose_qparams
    >>> from inwhale.core.affine import quantize
    >>> x = torch.randn(64, 64)
    >>> qp = choose_qparams(x, bits=4, symmetric=True)
    >>> p = pack(quantize(x, qp), qp)
    >>> p.nbytes      # 4096 codes · 4 bits = 2048 bytes + one fp16 scale
    2050
    """
    if codes.is_floating_point():
        raise TypeError("codes must be an integer tensor (the output of quantize)")
    sbits = _storage_bits(qparams.bits)
    if sbits > 8:
        raise ValueError(f"pack supports codes of at most 8 bits, got bits={qparams.bits}")
    data = pack_codes(codes.to(torch.int64) - qparams.qmin, sbits)
    middle = (qparams.qmin + qparams.qmax + 1) // 2
    z = qparams.zero_point
    if qparams.zero_point_domain == "float":   # a real offset: stored like the scale
        z, store_z = z.to(scale_dtype), True
    else:
        store_z = bool((z != middle).any())
    stored = replace(qparams, scale=qparams.scale.to(scale_dtype), zero_point=z)
    return PackedTensor(data, codes.shape, stored, store_z, sbits)


def unpack(packed: PackedTensor) -> torch.Tensor:
    """The codes stored in ``packed``, in their original shape and ``code_dtype``."""
    qp = packed.qparams
    u = unpack_codes(packed.data, packed.storage_bits, packed.shape.numel())
    return (u.to(torch.int64) + qp.qmin).reshape(packed.shape).to(qp.code_dtype)


__all__ = ["PACK_BITS", "PackedTensor", "pack", "pack_codes", "unpack", "unpack_codes"]
