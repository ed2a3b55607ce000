"""AdaRound: learned rounding for post-training quantization (Nagel et al., 2020).

Rounding each weight to the *nearest* grid point minimises the weight error, not the
layer's output error. AdaRound chooses, per weight, to round down or up by solving

    min_V  ‖W x − W̃(V) x‖²_F  +  λ · Σ_ij (1 − |2 h(V_ij) − 1|^β)

with the soft-quantized weight ``W̃(V) = s · clamp(⌊W/s⌋ + h(V), q_min, q_max)`` and the
**rectified sigmoid** (the paper's eq. 23)

    h(V) = clamp(σ(V)·(ζ − γ) + γ, 0, 1),     ζ = 1.1,  γ = −0.1,

which reaches exactly 0 and 1. The regularizer pushes ``h`` to 0 or 1; its exponent β is
**annealed** from 20 (flat: let V move freely) to 2 (steep: force a decision) after a warm-up
without regularization. At the end ``h ≥ ½`` rounds up. ``V`` is initialized so that
``h(V)`` equals the fractional part of ``W/s`` (nearest rounding is where it starts).

Glossary: ``W`` float weight, ``s, z`` its (frozen) scale and zero point, ``V`` learned
rounding logits, ``h`` rectified sigmoid, ``λ`` regularization weight, ``β`` annealed
exponent, ``x`` calibration inputs of the layer.
"""

from __future__ import annotations

import torch
from torch import nn

from inwhale.core.affine import fake_quantize
from inwhale.ptq._layers import check_layer, check_layer_input, layer_op

__all__ = ["GAMMA", "ZETA", "adaround_", "rectified_sigmoid", "round_reg"]

ZETA, GAMMA = 1.1, -0.1


def rectified_sigmoid(V: torch.Tensor) -> torch.Tensor:
    """``h(V) = clamp(σ(V)(ζ − γ) + γ, 0, 1)``.

    >>> rectified_sigmoid(torch.tensor([-10.0, 0.0, 10.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    return torch.clamp(torch.sigmoid(V) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def _inverse_h(h: torch.Tensor) -> torch.Tensor:
    """``V`` with ``h(V) = h`` for ``h`` in (0, 1)."""
    p = ((h - GAMMA) / (ZETA - GAMMA)).clamp(1e-4, 1 - 1e-4)
    return torch.log(p / (1 - p))


def round_reg(h: torch.Tensor, beta: float) -> torch.Tensor:
    """``Σ (1 − |2h − 1|^β)``: 0 when every ``h`` is 0 or 1, largest at ½.

    >>> round_reg(torch.tensor([0.0, 0.5, 1.0]), 2.0).item()
    1.0
    """
    return (1 - (2 * h - 1).abs().pow(beta)).sum()


def _beta(step: int, iters: int, warmup: float, b_start: float, b_end: float) -> float:
    t = (step - warmup * iters) / max(1.0, (1 - warmup) * iters)
    return b_end + (b_start - b_end) * 0.5 * (1 + torch.cos(torch.tensor(t * torch.pi)).item())


def adaround_(
    layer: nn.Module,
    x: torch.Tensor,
    *,
    iters: int = 500,
    lr: float = 1e-2,
    lam: float = 0.01,
    beta: tuple[float, float] = (20.0, 2.0),
    warmup: float = 0.2,
    batch_size: int = 256,
    seed: int = 0,
) -> dict:
    """Learn the rounding of ``layer``'s weights on inputs ``x`` and write them in place.

    ``layer`` is a ``QuantLinear``/``QuantConv2d`` with a frozen weight quantizer; its
    ``weight`` is replaced by the hard-rounded, on-grid weight ``s·(⌊W/s⌋ + 1[h ≥ ½] − z)``
    (clamped), which the frozen quantizer reproduces exactly (fake quantization is
    idempotent). The float target is the layer's own output on ``x`` with its float weight.

    Returns:
        ``{"flipped": share of weights rounded differently from nearest,
        "mse_nearest": ..., "mse_adaround": ...}`` (output MSE on ``x``).
    """
    from inwhale.nn.fake_quant import fake_quantize_ste

    check_layer(layer)
    x = check_layer_input(layer, x)
    if not 0 <= warmup < 1:
        raise ValueError(f"warmup must be in [0, 1), got {warmup}")
    qp = layer.weight_fq.qparams()
    g, W = qp.granularity, layer.weight.detach().clone()
    Wv = g.view(W)
    base = torch.floor(Wv * (1.0 / qp.scale))  # ⌊W/s⌋ in the granularity view
    V = nn.Parameter(_inverse_h(Wv * (1.0 / qp.scale) - base))
    soft_round = lambda v: base + rectified_sigmoid(V)  # R(v) = ⌊v⌋ + h(V)
    opt = torch.optim.Adam([V], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        target = layer_op(layer, x, W)
    for step in range(iters):
        idx = torch.randint(len(x), (min(batch_size, len(x)),), generator=gen).to(x.device)
        w_soft = g.unview(fake_quantize_ste(Wv, qp.scale, qp.zero_point, qp.qmin, qp.qmax,
                                            rounding=soft_round), W.shape)
        loss = (layer_op(layer, x[idx], w_soft) - target[idx]).pow(2).sum(-1).mean()
        if step >= warmup * iters:
            loss = loss + lam * round_reg(rectified_sigmoid(V), _beta(step, iters, warmup, *beta))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return _finish(layer, x, W, base, V, qp, target)


@torch.no_grad()
def _finish(layer, x, W, base, V, qp, target) -> dict:
    up = (rectified_sigmoid(V) >= 0.5).to(base.dtype)
    w_ada = fake_quantize(W, qp, rounding=lambda v: base + up)
    w_near = fake_quantize(W, qp)
    mse = lambda w: float((layer_op(layer, x, w) - target).pow(2).mean())
    flipped = float((w_ada != w_near).float().mean())
    stats = {"flipped": flipped, "mse_nearest": mse(w_near), "mse_adaround": mse(w_ada)}
    layer.weight.copy_(w_ada)
    return stats
