"""LLM.int8(): vector-wise int8 matmul with mixed-precision outlier decomposition.

Reference: T. Dettmers, M. Lewis, Y. Belkada, L. Zettlemoyer, *LLM.int8(): 8-bit Matrix
Multiplication for Transformers at Scale*, NeurIPS 2022 (arXiv:2208.07339), eqs. (1)-(3).

For an input ``X`` (tokens x I) and weight ``W`` (O x I), the set of outlier feature
columns is :math:`O = \\{ j : \\max_t |X_{tj}| \\ge \\tau \\}` (``tau = 6.0``). Then

.. math::
    Y = \\underbrace{X_{:,O} W_{:,O}^\\top}_{\\text{float}}
      + \\underbrace{\\mathrm{diag}(s_X)\\,(C_X C_W^\\top)\\,\\mathrm{diag}(s_W)}_{\\text{int8}},
    \\qquad s_{X,t} = \\frac{\\max_j |X_{tj}|}{127},\\ s_{W,o} = \\frac{\\max_j |W_{oj}|}{127},

where ``C_X = round(X_{:,\\bar O} / s_X)`` and ``C_W = round(W_{:,\\bar O} / s_W)`` are int8
codes of the non-outlier columns (per-row scales for ``X``, per-output-channel scales for
``W``: *vector-wise* quantization), and the int8 products are summed in int32.

Glossary: ``X`` input (T, I); ``W`` weight (O, I); ``tau`` outlier threshold; ``O`` outlier
columns, ``\\bar O`` the rest; ``s_X`` (T,) and ``s_W`` (O,) scales; ``C`` int8 codes.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from inwhale.core import PerAxis, PerToken, choose_qparams, fake_quantize, quantize
from inwhale.core.checks import check_tensor
from inwhale.llm.harness import QuantReport

__all__ = ["LLMInt8Linear", "int8_matmul_decomposed", "int8_matmul_int32", "llm_int8_quantize_",
           "outlier_columns"]


def outlier_columns(x: torch.Tensor, threshold: float = 6.0) -> torch.Tensor:
    """Boolean mask ``(I,)`` of the columns of ``x`` ``(..., I)`` with ``max|x| >= threshold``."""
    check_tensor(x, "x")
    return x.reshape(-1, x.shape[-1]).abs().amax(0) >= threshold


def _split(x: torch.Tensor, w: torch.Tensor, threshold: float):
    """Regular parts (outlier columns zeroed) and the outlier mask."""
    mask = outlier_columns(x, threshold)  # (I,)
    return x.masked_fill(mask, 0.0), w.masked_fill(mask, 0.0), mask


def _qp_x(x: torch.Tensor):
    return choose_qparams(x, bits=8, symmetric=True, narrow_range=True, granularity=PerToken())


def _qp_w(w: torch.Tensor):
    return choose_qparams(w, bits=8, symmetric=True, narrow_range=True, granularity=PerAxis(0))


def _check_xw(x: object, w: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Finite, non-empty ``x`` (T, I) and ``w`` (O, I) sharing ``I``, as float32."""
    check_tensor(x, "x"), check_tensor(w, "w")
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x (T, I) and w (O, I) must be 2-D and share I, got "
                         f"{tuple(x.shape)}, {tuple(w.shape)}")
    return x.float(), w.float()


def int8_matmul_decomposed(
    x: torch.Tensor, w: torch.Tensor, threshold: float = 6.0
) -> torch.Tensor:
    """``X W^T`` by the decomposition above, in fake quantization (float arithmetic).

    Shapes: ``x`` (T, I), ``w`` (O, I) -> (T, O). ``threshold=float('inf')`` gives plain
    vector-wise int8; ``threshold=0`` keeps every column in float (exact).
    """
    x, w = _check_xw(x, w)
    x_reg, w_reg, mask = _split(x, w, threshold)
    y = fake_quantize(x_reg, _qp_x(x_reg)) @ fake_quantize(w_reg, _qp_w(w_reg)).T  # (T, O)
    if mask.any():
        y = y + x[:, mask] @ w[:, mask].T  # the outliers, in float
    return y


def int8_matmul_int32(x: torch.Tensor, w: torch.Tensor, threshold: float = 6.0) -> torch.Tensor:
    """The same product with int8 codes multiplied and accumulated in **int32**, then
    rescaled by ``s_X s_W^T``: what an int8 tensor core computes."""
    x, w = _check_xw(x, w)
    x_reg, w_reg, mask = _split(x, w, threshold)
    qx, qw = _qp_x(x_reg), _qp_w(w_reg)
    acc = quantize(x_reg, qx).to(torch.int32) @ quantize(w_reg, qw).to(torch.int32).T  # (T, O)
    y = acc.float() * qx.scale.reshape(-1, 1) * qw.scale.reshape(1, -1)
    if mask.any():
        y = y + x[:, mask] @ w[:, mask].T
    return y


class LLMInt8Linear(nn.Module):
    """``nn.Linear`` replacement computing its product with :func:`int8_matmul_decomposed`.

    Outlier columns are detected on every call (dynamically, as bitsandbytes does);
    ``outlier_fraction`` keeps the fraction of input columns sent to float in the last call.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None,
                 threshold: float = 6.0) -> None:
        check_tensor(weight, "weight")
        if weight.ndim != 2:
            raise ValueError(f"weight must be 2-D (out, in), got shape {tuple(weight.shape)}")
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        self.threshold, self.outlier_fraction = threshold, 0.0

    @classmethod
    def from_float(cls, lin: nn.Linear, threshold: float = 6.0) -> LLMInt8Linear:
        if not isinstance(lin, nn.Linear):
            raise TypeError(f"lin must be an nn.Linear, got {type(lin).__name__}")
        bias = None if lin.bias is None else lin.bias.detach().clone()
        return cls(lin.weight.detach().clone(), bias, threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, x.shape[-1])  # (T, I)
        self.outlier_fraction = float(outlier_columns(x2, self.threshold).float().mean())
        y = int8_matmul_decomposed(x2, self.weight, self.threshold)
        if self.bias is not None:
            y = y + self.bias.float()
        return y.to(x.dtype).reshape(*x.shape[:-1], -1)


@torch.no_grad()
def llm_int8_quantize_(model: nn.Module, calib_ids: torch.Tensor | None = None, *,
                       threshold: float = 6.0, skip: tuple[str, ...] = ("lm_head",),
                       progress: bool = True) -> QuantReport:
    """Swap every ``nn.Linear`` (by type) for an :class:`LLMInt8Linear`, in place.

    Returns a :class:`~inwhale.llm.harness.QuantReport` (settings ``bits``, ``threshold``).
    """
    from inwhale._optional import tqdm
    from inwhale.llm.act_quant import _set_module
    from inwhale.llm.harness import find_linears

    start, names = time.perf_counter(), []
    for name, lin in tqdm(find_linears(model, skip).items(), desc="LLM.int8",
                          disable=not progress):
        _set_module(model, name, LLMInt8Linear.from_float(lin, threshold))
        names.append(name)
    return QuantReport(f"llm.int8(tau={threshold})", names, time.perf_counter() - start,
                       {"bits": 8, "threshold": threshold, "group_size": None})
