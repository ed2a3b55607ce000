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
                    symmetric: bool = False, param_bits: int = 16) -> float:
    """Stored bits per weight: the code plus fp16 scale (and zero point if asymmetric).

    >>> bits_per_weight(4, 128, (512, 512))     # 4 + 32/128
    4.25
    """
    per_param = param_bits * (1 if symmetric else 2)
    o, i = shape
    n_params = o * -(-i // group_size) if group_size else (o if axis == 0 else i)
    return bits + n_params * per_param / (o * i)


@torch.no_grad()
def rtn_weight(w: torch.Tensor, bits: int, group_size: int | None = None, axis: int = 0,
               symmetric: bool = False) -> torch.Tensor:
    """Fake-quantized copy of a weight ``(O, I)`` (see the module docstring)."""
    if w.ndim != 2:
        raise ValueError(f"w must be 2-D (out, in), got shape {tuple(w.shape)}")
    g = rtn_granularity(group_size, axis)
    qp = choose_qparams(w.float(), bits=bits, symmetric=symmetric, granularity=g)
    return fake_quantize(w.float(), qp).to(w.dtype)


@torch.no_grad()
def rtn_quantize_(model: nn.Module, calib_ids: torch.Tensor | None = None, *, bits: int,
                  group_size: int | None = None, axis: int = 0, symmetric: bool = False,
                  skip: tuple[str, ...] = ("lm_head",), progress: bool = True) -> dict:
    """Replace the weight of every ``nn.Linear`` (found by type) by its RTN copy, in place.

    ``calib_ids`` is ignored (RTN needs no data; the argument keeps the common signature).

    Returns:
        ``{"method", "layers", "seconds", "bits", "group_size", "axis", "errors"}`` where
        ``errors`` maps layer name to the relative error ``||W - Ŵ||_F / ||W||_F``.
    """
    from tqdm.auto import tqdm

    from inwhale.llm.harness import find_linears

    start, errors = time.perf_counter(), {}
    for name, lin in tqdm(find_linears(model, skip).items(), desc="RTN", disable=not progress):
        w = lin.weight.data
        wq = rtn_weight(w, bits, group_size, axis, symmetric)
        errors[name] = float((w.float() - wq.float()).norm() / w.float().norm())
        w.copy_(wq)
    return {"method": "rtn", "layers": len(errors), "seconds": time.perf_counter() - start,
            "bits": bits, "group_size": group_size, "axis": axis, "errors": errors}
