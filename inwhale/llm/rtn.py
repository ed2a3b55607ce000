"""Round-to-nearest (RTN) weight quantization of every linear layer of a model.

The baseline of every LLM weight-quantization paper: each weight ``W`` (out x in) is
replaced by its fake-quantized copy

.. math::
    \\hat W = s \\odot (\\operatorname{clamp}(\\lfloor W / s \\rceil + z,
    q_{min}, q_{max}) - z)

with ``s, z`` from :func:`inwhale.choose_qparams` at one of three granularities:
per output row (``PerAxis(0)``, one scale per output channel), per input column
(``PerAxis(1)``), or per group of ``g`` consecutive inputs in a row (``PerGroup(g)``,
``g = 128`` in GPTQ/AWQ). Storage per weight: ``b`` bits plus the parameters, e.g.
``b + 32/g`` for a 16-bit scale and 16-bit zero point per group.

Glossary: ``W`` weight (O, I); ``s`` scale; ``z`` zero point; ``b`` bits; ``g`` group size.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from inwhale.core import Granularity, PerAxis, PerGroup, choose_qparams, fake_quantize
from inwhale.core.checks import check_bits, check_group_size, check_tensor
from inwhale.llm.harness import QuantReport, find_linears

__all__ = ["bits_per_weight", "rtn_granularity", "rtn_quantize_", "rtn_weight"]


def rtn_granularity(group_size: int | None = None, axis: int = 0) -> Granularity:
    """``PerGroup(group_size)`` along the input axis when a group size is given, else
    ``PerAxis(axis)`` (0: per output row, 1: per input column)."""
    if group_size is not None:
        return PerGroup(group_size, axis=-1)
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 (per row) or 1 (per column), got {axis}")
    return PerAxis(axis)


def bits_per_weight(bits: int, group_size: int | None, shape: tuple[int, int], axis: int = 0,
                    symmetric: bool = False, param_bits: int = 16,
                    zero_point_bits: int | None = None) -> float:
    """Stored bits per weight of an ``(O, I)`` weight: the code plus its share of parameters.

    ``b + n_params · (param_bits + zero_point_bits) / (O · I)`` with ``n_params = O·⌈I/g⌉``
    (groups), ``O`` (per row) or ``I`` (per column); a symmetric grid stores no zero point.
    ``zero_point_bits`` defaults to ``param_bits``: an fp16 zero point, the convention of the
    GPTQ/AWQ literature (and of the Part VI results table). :mod:`inwhale.llm.storage`
    writes ``b``-bit zero points: ``zero_point_bits=bits`` counts that file
    (:func:`inwhale.llm.storage.bits_per_weight`). Byte padding is ignored.

    Args:
        bits: code width ``b``.
        group_size: inputs per group, or ``None`` (per row / column, see ``axis``).
        shape: ``(O, I)``.
        axis: without groups, 0 = per output row, 1 = per input column.
        symmetric: no zero point stored.
        param_bits: bits of each scale.
        zero_point_bits: bits of each zero point (default ``param_bits``).

    >>> bits_per_weight(4, 128, (512, 512))                       # 4 + (16 + 16)/128
    4.25
    >>> bits_per_weight(4, 128, (512, 512), zero_point_bits=4)    # 4 + (16 + 4)/128
    4.15625
    """
    check_group_size(group_size)
    zp_bits = param_bits if zero_point_bits is None else zero_point_bits
    per_param = param_bits + (0 if symmetric else zp_bits)
    o, i = shape
    n_params = o * -(-i // group_size) if group_size else (o if axis == 0 else i)
    return bits + n_params * per_param / (o * i)


@torch.no_grad()
def rtn_weight(w: torch.Tensor, bits: int, group_size: int | None = None, axis: int = 0,
               symmetric: bool = False) -> torch.Tensor:
    """Fake-quantized copy of a weight ``(O, I)`` (see the module docstring): the one
    round-to-nearest of the library's LLM code (GPTQ, AWQ and the results table use it).

    ``Ŵ = fake_quantize(W, choose_qparams(W, granularity))`` with min–max (or symmetric)
    parameters per row, per column or per group of inputs; same shape and dtype as ``w``.

    Args:
        w: weight (O, I).
        bits: code width (1..16).
        group_size: inputs per scale and zero point (``None``: per row or column, see ``axis``);
            must not exceed ``I``; the last group may be shorter.
        axis: without groups, 0 = one scale per output row, 1 = one per input column.
        symmetric: symmetric grid instead of min–max.

    Raises:
        ValueError: ``w`` not 2-D, ``bits`` or ``group_size`` out of range, bad ``axis``.

    >>> W = torch.tensor([[0.0, 0.4, 1.0, -1.0]])
    >>> rtn_weight(W, bits=2, group_size=2)   # group 2: s = 2/3, z = round(1.5) = 2 (ties even)
    tensor([[ 0.0000,  0.4000,  0.6667, -1.3333]])
    """
    check_tensor(w, "w")
    if w.ndim != 2:
        raise ValueError(f"w must be 2-D (out, in), got shape {tuple(w.shape)}")
    check_bits(bits)
    check_group_size(group_size, w.shape[1])
    g = rtn_granularity(group_size, axis)
    qp = choose_qparams(w.float(), bits=bits, symmetric=symmetric, granularity=g)
    return fake_quantize(w.float(), qp).to(w.dtype)


@torch.no_grad()
def rtn_quantize_(model: nn.Module, calib_ids: torch.Tensor | None = None, *, bits: int,
                  group_size: int | None = None, axis: int = 0, symmetric: bool = False,
                  skip: tuple[str, ...] = ("lm_head",), progress: bool = True) -> QuantReport:
    """Replace the weight of every ``nn.Linear`` (found by type) by its RTN copy, in place.

    For a causal LM these are the linears of the decoder blocks: the output head
    (``lm_head``, often tied to the embedding) is skipped by default.
    ``calib_ids`` is ignored (RTN needs no data; the argument keeps the common signature).

    Returns:
        :class:`~inwhale.llm.harness.QuantReport` with method ``"rtn"``, settings ``bits``,
        ``group_size``, ``axis``, ``symmetric``, and details ``errors``: layer name ->
        relative error ``||W - Ŵ||_F / ||W||_F``.
    """
    from inwhale._optional import tqdm

    start, errors = time.perf_counter(), {}
    for name, lin in tqdm(find_linears(model, skip).items(), desc="RTN", disable=not progress):
        w = lin.weight.data
        wq = rtn_weight(w, bits, group_size, axis, symmetric)
        errors[name] = float((w.float() - wq.float()).norm() / w.float().norm())
        w.copy_(wq)
    settings = {"bits": bits, "group_size": group_size, "axis": axis, "symmetric": symmetric}
    return QuantReport("rtn", list(errors), time.perf_counter() - start, settings,
                       {"errors": errors})
