"""SmoothQuant: migrate activation outliers into the weights before W8A8 quantization.

Reference: G. Xiao, J. Lin, M. Seznec, H. Wu, J. Demouth, S. Han, *SmoothQuant: Accurate
and Efficient Post-Training Quantization for Large Language Models*, ICML 2023
(arXiv:2211.10438), eq. (4).

For a norm followed by linears that read its output ``X`` (tokens x I), a per-channel
factor :math:`s_j` leaves the product unchanged,

.. math:: Y = (X\\,\\mathrm{diag}(s)^{-1})\\,(\\mathrm{diag}(s) W^\\top),\\qquad
    s_j = \\frac{\\max_t |X_{tj}|^{\\alpha}}{\\max_o |W_{oj}|^{1-\\alpha}},

and the division by ``s`` is folded into the norm's weight (``gamma_j / s_j``), the
multiplication into the linears' input columns (``W[:, j] * s_j``). ``alpha`` sets how much
of the activation range moves to the weights (0.5 in the paper for most models).
Glossary: ``X`` norm output; ``W`` the weights of all linears reading it, stacked (O, I);
``s`` (I,) smoothing factors; ``gamma`` the norm weight; ``alpha`` migration strength.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from inwhale.core.checks import check_tensor
from inwhale.llm.harness import QuantReport
from inwhale.ptq.smoothing import smoothing_scales

__all__ = ["smooth_", "smoothing_factors", "smoothquant_quantize_"]


def smoothing_factors(act_absmax: torch.Tensor, weights: list[torch.Tensor],
                      alpha: float = 0.5) -> torch.Tensor:
    """``s_j = max|X_j|^alpha / max_o |W_oj|^(1-alpha)`` over all ``weights`` reading ``X``.

    The migration factors are :func:`inwhale.ptq.smoothing.smoothing_scales` (the one
    formula, with its rule for dead channels: ``s = 1``) applied to the linears' weights
    stacked along their output rows, in float32.

    >>> smoothing_factors(torch.tensor([16.0, 1.0]), [torch.tensor([[1.0, 4.0]])], 0.5)
    tensor([4.0000, 0.5000])
    """
    check_tensor(act_absmax, "act_absmax")
    stacked = torch.cat([w.detach().float() for w in weights], 0)       # (sum O, I)
    return smoothing_scales(act_absmax.float(), stacked, alpha)


@torch.no_grad()
def smooth_(pairs: list, act_absmax: dict[str, torch.Tensor], alpha: float = 0.5) -> None:
    """Fold SmoothQuant factors into each ``(norm, [linears])`` pair, in place.

    Args:
        pairs: from :func:`inwhale.llm.harness.norm_linear_pairs`.
        act_absmax: per-channel input absmax keyed by linear name (any linear of the pair).
        alpha: migration strength.
    """
    for p in pairs:
        s = smoothing_factors(act_absmax[p.linear_names[0]], [lin.weight for lin in p.linears],
                              alpha).to(p.norm.weight.device)
        p.norm.weight.div_(s.to(p.norm.weight.dtype))
        if getattr(p.norm, "bias", None) is not None:
            p.norm.bias.div_(s.to(p.norm.bias.dtype))
        for lin in p.linears:
            lin.weight.mul_(s.to(lin.weight.dtype))


@torch.no_grad()
def smoothquant_quantize_(model: nn.Module, calib_ids: torch.Tensor, *, alpha: float = 0.5,
                          bits: int = 8, group_size: int | None = None,
                          act_granularity: str = "tensor", n_samples: int = 16,
                          seq_len: int = 256, progress: bool = True) -> QuantReport:
    """Smooth every norm-linear pair (calibrated on ``calib_ids``), then W8A8 every linear.

    Linears not fed by a norm (``o_proj``, ``down_proj``) are quantized unsmoothed, as in
    the paper's reference code for LLaMA-like models.
    """
    from inwhale.llm.act_quant import w8a8_quantize_
    from inwhale.llm.harness import calibration_batches, linear_input_absmax, norm_linear_pairs

    start = time.perf_counter()
    pairs = norm_linear_pairs(model)
    names = [p.linear_names[0] for p in pairs]
    absmax = linear_input_absmax(model, names, calibration_batches(calib_ids, n_samples, seq_len))
    smooth_(pairs, absmax, alpha)
    report = w8a8_quantize_(model, act_granularity=act_granularity, w_bits=bits,
                            group_size=group_size, progress=progress)
    report.method, report.seconds = f"smoothquant(alpha={alpha})", time.perf_counter() - start
    report.settings["alpha"] = alpha
    report.details["smoothed_pairs"] = len(pairs)
    return report
