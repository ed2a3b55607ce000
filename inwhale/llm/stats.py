"""Weight and activation statistics of an LLM: ranges, kurtosis, outlier channels.

Used by the "LLM under the microscope" chapter; kurtosis is :func:`inwhale.metrics.kurtosis`.
Definitions (for a tensor ``x`` of ``n``
values with mean :math:`\\mu` and standard deviation :math:`\\sigma`):

.. math::
    \\mathrm{kurtosis}(x) = \\frac{1}{n}\\sum_i \\left(\\frac{x_i-\\mu}{\\sigma}\\right)^4
    \\quad(3 \\text{ for a Gaussian}),\\qquad
    r_j = \\frac{\\max_t |X_{tj}|}{\\operatorname{median}_k \\max_t |X_{tk}|}.

A hidden dimension ``j`` is an *outlier channel* of an activation ``X`` (tokens x channels)
when ``max_t |X_tj| >= threshold`` (LLM.int8()'s 6.0, Dettmers et al., 2022) or when its
ratio to the median channel is large. Glossary: ``t`` token, ``j`` channel (input feature
of a linear), ``X`` the linear's input, ``W`` its weight ``(out, in)``.
"""

from __future__ import annotations

import torch
from torch import nn

from inwhale.core.checks import check_tensor
from inwhale.metrics import kurtosis  # the one kurtosis (float64 here: a measurement)

__all__ = ["outlier_channels", "weight_stats"]


def outlier_channels(
    absmax: torch.Tensor, threshold: float = 6.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Channels whose absolute maximum reaches ``threshold``, largest first.

    Args:
        absmax: ``(C,)`` per-channel ``max_t |X_tj|`` (e.g. from
            :func:`inwhale.llm.harness.linear_input_absmax`).
        threshold: the outlier magnitude (6.0 in LLM.int8()).

    Returns:
        ``(indices, values)``, sorted by decreasing magnitude.

    >>> outlier_channels(torch.tensor([1.0, 9.0, 0.5, 7.0]))
    (tensor([1, 3]), tensor([9., 7.]))
    """
    check_tensor(absmax, "absmax")
    if absmax.ndim != 1:
        raise ValueError(f"absmax must be 1-D (C,), got shape {tuple(absmax.shape)}")
    vals, idx = absmax.sort(descending=True)
    keep = vals >= threshold
    return idx[keep], vals[keep]


@torch.no_grad()
def weight_stats(linears: dict[str, nn.Linear]) -> list[dict[str, float | str]]:
    """One row of statistics per linear: name, shape, std, max|w|, max|w|/std, kurtosis,
    and the ratio of the largest to the median per-row and per-column absolute maximum
    (how much per-row or per-column scales help)."""
    if not isinstance(linears, dict) or not all(isinstance(m, nn.Linear) for m in linears.values()):
        raise TypeError(f"linears must be a dict of nn.Linear modules (e.g. from find_linears), "
                        f"got {type(linears).__name__}")
    rows = []
    for name, lin in linears.items():
        w = lin.weight.detach().float()  # (O, I)
        row_max, col_max = w.abs().amax(1), w.abs().amax(0)
        rows.append({
            "name": name, "kind": name.rsplit(".", 1)[-1],
            "out": w.shape[0], "in": w.shape[1], "std": float(w.std()),
            "absmax": float(w.abs().max()), "absmax_over_std": float(w.abs().max() / w.std()),
            "kurtosis": float(kurtosis(w.double())),
            "row_spread": float(row_max.max() / row_max.median()),
            "col_spread": float(col_max.max() / col_max.median()),
        })
    return rows
