"""ZeroQuant (Yao et al., 2022): group-wise weights and per-token dynamic activations.

ZeroQuant's post-training recipe (without its layer-by-layer distillation, LKD) is a
composition of two fine granularities:

.. math:: Y = \\mathrm{FQ}_{token}(X)\\ \\mathrm{FQ}_{group}(W)^\\top,

weights quantized symmetrically in groups of ``g`` inputs (:class:`inwhale.PerGroup`),
activations quantized on the fly with one scale per token (:class:`inwhale.PerToken`).
Here it is a thin wrapper over :func:`inwhale.llm.act_quant.w8a8_quantize_`.
Glossary: ``X`` (tokens, I) input; ``W`` (O, I) weight; ``g`` group size.
"""

from __future__ import annotations

import torch
from torch import nn

from inwhale.llm.act_quant import w8a8_quantize_
from inwhale.llm.harness import QuantReport

__all__ = ["zeroquant_quantize_"]


@torch.no_grad()
def zeroquant_quantize_(model: nn.Module, calib_ids: torch.Tensor | None = None, *,
                        bits: int = 4, group_size: int = 128, act_bits: int = 8,
                        progress: bool = True) -> QuantReport:
    """W{bits} group-wise (``group_size``) weights + A{act_bits} per-token activations on every
    ``nn.Linear``, in place. ``calib_ids`` is unused (dynamic activation scales)."""
    report = w8a8_quantize_(model, act_granularity="token", w_bits=bits, act_bits=act_bits,
                            group_size=group_size, progress=progress)
    report.method = f"zeroquant-w{bits}g{group_size}a{act_bits}"
    return report
