"""Fake-quantized W8A8 linear layers: int8 activations and weights, float compute.

Following the fake-quant reference of SmoothQuant (Xiao et al., 2022, ``fake_quant.py``):

.. math:: Y = \\hat X \\hat W^\\top + b,\\quad
    \\hat X = \\mathrm{FQ}(X;\\ s_X),\\quad \\hat W = \\mathrm{FQ}(W;\\ s_W)

with symmetric narrow-range codes (``s = max|.|/127``). Activation scales are computed
dynamically, on every call: one per tensor (``act_granularity="tensor"``) or one per token
(``"token"``, a row of ``X``). Weights get one scale per output channel (``PerAxis(0)``)
or per group. Glossary: ``X`` input ``(..., I)``; ``W`` weight ``(O, I)``; ``s`` scale.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from inwhale.core import PerTensor, PerToken, choose_qparams, fake_quantize
from inwhale.core.checks import check_bits, check_tensor
from inwhale.llm.harness import QuantReport
from inwhale.llm.rtn import rtn_granularity

__all__ = ["W8A8Linear", "quantize_activation", "w8a8_quantize_"]


def quantize_activation(x: torch.Tensor, bits: int = 8, granularity: str = "token") -> torch.Tensor:
    """Dynamic symmetric fake quantization of ``x`` ``(..., I)``: one scale per tensor or
    per token (row). ``max|x|/127`` for 8 bits (narrow range)."""
    if granularity not in ("tensor", "token"):
        raise ValueError(f"granularity must be 'tensor' or 'token', got {granularity!r}")
    check_tensor(x, "x")
    g = PerToken() if granularity == "token" else PerTensor()
    x32 = x.float()
    qp = choose_qparams(x32, bits=bits, symmetric=True, narrow_range=True, granularity=g)
    return fake_quantize(x32, qp).to(x.dtype)


class W8A8Linear(nn.Module):
    """A linear layer with fake-quantized weights (stored) and activations (per call)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, act_bits: int = 8,
                 act_granularity: str = "token") -> None:
        check_tensor(weight, "weight")
        if weight.ndim != 2:
            raise ValueError(f"weight must be 2-D (out, in), got shape {tuple(weight.shape)}")
        check_bits(act_bits, "act_bits")
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        self.act_bits, self.act_granularity = act_bits, act_granularity
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]

    @classmethod
    @torch.no_grad()
    def from_float(cls, lin: nn.Linear, w_bits: int = 8, act_bits: int = 8,
                   act_granularity: str = "token", group_size: int | None = None) -> W8A8Linear:
        """Quantize ``lin``'s weight (per output channel, or per group) and wrap it."""
        if not isinstance(lin, nn.Linear):
            raise TypeError(f"lin must be an nn.Linear, got {type(lin).__name__}")
        w = lin.weight.detach().float()
        qp = choose_qparams(w, bits=w_bits, symmetric=True, narrow_range=True,
                            granularity=rtn_granularity(group_size, 0))
        bias = None if lin.bias is None else lin.bias.detach().clone()
        return cls(fake_quantize(w, qp).to(lin.weight.dtype), bias, act_bits, act_granularity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xq = quantize_activation(x, self.act_bits, self.act_granularity)
        return nn.functional.linear(xq, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, act_bits={self.act_bits}, "
                f"act={self.act_granularity}")


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


@torch.no_grad()
def w8a8_quantize_(model: nn.Module, calib_ids: torch.Tensor | None = None, *,
                   act_granularity: str = "token", w_bits: int = 8, act_bits: int = 8,
                   group_size: int | None = None, skip: tuple[str, ...] = ("lm_head",),
                   progress: bool = True) -> QuantReport:
    """Swap every ``nn.Linear`` (by type) for a :class:`W8A8Linear`, in place.

    ``calib_ids`` is unused: activation scales are dynamic. Returns a
    :class:`~inwhale.llm.harness.QuantReport` (method ``"w8a8-token"`` etc., settings
    ``bits``, ``act_bits``, ``act_granularity``, ``group_size``).
    """
    from inwhale._optional import tqdm
    from inwhale.llm.harness import find_linears

    start, names = time.perf_counter(), []
    for name, lin in tqdm(find_linears(model, skip).items(), desc="W8A8", disable=not progress):
        _set_module(model, name, W8A8Linear.from_float(lin, w_bits, act_bits, act_granularity,
                                                       group_size))
        names.append(name)
    settings = {"bits": w_bits, "act_bits": act_bits, "act_granularity": act_granularity,
                "group_size": group_size}
    return QuantReport(f"w{w_bits}a{act_bits}-{act_granularity}", names,
                       time.perf_counter() - start, settings)
