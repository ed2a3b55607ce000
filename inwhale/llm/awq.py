"""AWQ: activation-aware weight quantization (Lin et al., 2023).

Paper: J. Lin, J. Tang, H. Tang, S. Yang, W.-M. Chen, W.-C. Wang, G. Xiao, X. Dang, C. Gan,
S. Han, "AWQ: Activation-aware Weight Quantization for LLM Compression and Acceleration",
MLSys 2024 (arXiv:2306.00978).

Observation: a small fraction of *input channels* — those with large activations — matter
most. Scaling such a weight column up by ``s_j > 1`` before quantization (and the activation
down by ``s_j``) shrinks its relative rounding error, because the group's scale barely changes
while the column's values grow:

    y = X Wᵀ = (X diag(s)⁻¹)(W diag(s))ᵀ  ≈  (X diag(s)⁻¹) Q(W diag(s))ᵀ      (1)

The per-channel scale is a power of the mean activation magnitude, searched on a grid:

    s = s_X^α,   s_X = mean_t |X_tj|,
    α* = argmin_{α ∈ [0, 1)} ‖X Wᵀ − X (Q(W diag(s)) diag(s)⁻¹)ᵀ‖²              (2)

(``s`` is normalized by ``√(max s · min s)``, as in the reference code). ``α = 0`` is plain
round-to-nearest, so the search can only help on the calibration objective. ``diag(s)⁻¹`` is
folded into the previous operation — here the RMSNorm that feeds the linears,
``γ ← γ / s`` — so inference costs nothing extra.

Then a **clipping search** shrinks each group's range ``[r·lo, r·hi]``, ``r ∈ (0.5, 1]``,
to minimize the group's output error.

Both errors are measured with the layer Hessian ``H = XᵀX / n`` (I, I) accumulated over all
calibration tokens: ``‖X Dᵀ‖²/n = tr(D H Dᵀ)`` for a weight error ``D``, so no activation
rows need to be kept.

Simplifications (stated): the scale search minimizes the error of the linears that share the
scaled input (q/k/v or gate/up), not the output of the whole attention or MLP block; only
norm → linears scales are folded (the reference also folds v → o and up → down, which needs
architecture knowledge); scales and clipping are searched on the float model's activations.

Glossary: ``X`` inputs (n, I); ``W`` weight (O, I); ``s`` per-input-channel scale (I,);
``α`` the exponent; ``γ`` norm weight; ``H`` Hessian; ``r`` clip ratio; ``lo, hi`` group
min/max; ``Q`` the RTN quantizer at the chosen bits/group size.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from inwhale.core.affine import fake_quantize
from inwhale.core.checks import check_tensor
from inwhale.core.granularity import PerAxis, PerGroup
from inwhale.core.qparams import QParams, qparams_from_range
from inwhale.llm.harness import (
    GramAccumulator,
    LastInputMemo,
    QuantReport,
    _as_1d_ids,
    _check_vocab,
    block_linears,
    calibration_batches,
    for_each_linear_input,
    norm_linear_pairs,
)
from inwhale.llm.rtn import rtn_weight

__all__ = [
    "awq_clip_qparams",
    "awq_quantize_",
    "awq_scale_search",
    "collect_awq_stats",
    "output_error",
]


def output_error(D: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """``tr(D H Dᵀ)``: the mean squared output error ``‖X Dᵀ‖²/n`` when ``H = XᵀX/n``.

    >>> X = torch.tensor([[1.0, 2.0], [0.0, 1.0]]); D = torch.tensor([[0.5, -1.0]])
    >>> float(output_error(D, X.T @ X / 2)), float(((X @ D.T) ** 2).sum() / 2)
    (1.625, 1.625)
    """
    check_tensor(D, "D"), check_tensor(H, "H")
    if D.ndim != 2 or H.shape != (D.shape[1], D.shape[1]):
        raise ValueError(f"D must be (O, I) and H (I, I), got shapes {tuple(D.shape)} and "
                         f"{tuple(H.shape)}")
    D = D.to(H.dtype)
    return torch.einsum("oi,ij,oj->", D, H, D)


@torch.no_grad()
def collect_awq_stats(
    model: nn.Module, names: list[str], batches: torch.Tensor, batch_size: int = 4
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{name: (H = XᵀX/n, mean|X| per channel)}`` for each linear, from one pass.

    ``H`` is :class:`~inwhale.llm.harness.GramAccumulator`'s mean (GPTQ's Hessian is twice it).
    """
    gram = GramAccumulator()
    abs_sums: dict[str, torch.Tensor] = {}
    abs_sum = LastInputMemo(lambda x: x.float().abs().sum(0))   # q/k/v share one sum

    def accumulate(name: str, x: torch.Tensor) -> None:
        gram.add(name, x)
        abs_sums[name] = abs_sums.get(name, 0) + abs_sum(x)

    for_each_linear_input(model, names, batches, accumulate, batch_size)
    return {n: (H, abs_sums[n] / gram.counts[n]) for n, H in gram.mean().items()}


def awq_scale_search(
    weights: list[torch.Tensor], H: torch.Tensor, x_mean: torch.Tensor, *,
    bits: int, group_size: int | None, n_grid: int = 20,
) -> tuple[torch.Tensor, float, list[float]]:
    """Equation (2): the best ``s = x_mean^α`` for the linears sharing one input.

    Returns ``(s, α*, errors)``, with ``errors[i]`` the summed output error of
    ``α = i / n_grid``.
    """
    check_tensor(x_mean, "x_mean")
    if not isinstance(n_grid, int) or n_grid < 1:
        raise ValueError(f"n_grid must be a positive int (alpha values), got {n_grid!r}")
    if x_mean.ndim != 1 or any(W.shape[-1] != x_mean.shape[0] for W in weights):
        raise ValueError(f"x_mean must be 1-D with one entry per input channel of the weights, "
                         f"got shape {tuple(x_mean.shape)}")
    errors, best = [], (float("inf"), None, 0.0)
    for i in range(n_grid):
        alpha = i / n_grid
        s = x_mean.clamp(min=1e-4).pow(alpha)
        s = s / (s.max() * s.min()).sqrt()
        err = 0.0
        for W in weights:
            Wq = rtn_weight(W * s, bits=bits, group_size=group_size) / s
            err += float(output_error(W - Wq, H))
        errors.append(err)
        if err < best[0]:
            best = (err, s, alpha)
    return best[1], best[2], errors


def _group_blocks(H: torch.Tensor, g: int) -> torch.Tensor:
    """Diagonal (g, g) blocks of H, zero-padded when g does not divide I: (G, g, g)."""
    I = H.shape[0]  # noqa: E741
    pad = -I % g
    Hp = F.pad(H, (0, pad, 0, pad))
    G = (I + pad) // g
    return torch.stack([Hp[k * g:(k + 1) * g, k * g:(k + 1) * g] for k in range(G)])


def awq_clip_qparams(
    W: torch.Tensor, H: torch.Tensor, *, bits: int, group_size: int | None,
    ratios: tuple[float, ...] = tuple(1 - i / 20 for i in range(10)),
) -> QParams:
    """Per-group clip ratio ``r`` minimizing that group's output error ``d H_gg dᵀ``.

    Returns QParams from :func:`inwhale.qparams_from_range` on ``[r·lo, r·hi]``.
    """
    check_tensor(W, "W"), check_tensor(H, "H")
    if W.ndim != 2 or H.shape != (W.shape[1], W.shape[1]):
        raise ValueError(f"W must be 2-D (O, I) and H (I, I), got shapes {tuple(W.shape)} and "
                         f"{tuple(H.shape)}")
    W, H = W.float(), H.float()
    gran = PerAxis(0) if group_size is None else PerGroup(group_size)
    g = W.shape[1] if group_size is None else group_size
    lo, hi = gran.reduce(W, "amin"), gran.reduce(W, "amax")      # (O, G, 1) or (O, 1)
    Hb = _group_blocks(H, g)                                     # (G, g, g)
    pad = -W.shape[1] % g
    best_err, best_r = None, None
    for r in ratios:
        qp = qparams_from_range(r * lo, r * hi, bits=bits, granularity=gran)
        D = F.pad(W - fake_quantize(W, qp), (0, pad)).view(W.shape[0], -1, g)   # (O, G, g)
        err = torch.einsum("ogk,gkl,ogl->og", D, Hb, D).reshape(lo.shape)
        if best_err is None:
            best_err, best_r = err, torch.full_like(err, r)
        else:
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_r = torch.where(better, torch.full_like(err, r), best_r)
    return qparams_from_range(best_r * lo, best_r * hi, bits=bits, granularity=gran)


@torch.no_grad()
def awq_quantize_(
    model: nn.Module,
    calib_ids: torch.Tensor | None,
    *,
    bits: int = 4,
    group_size: int | None = 128,
    n_grid: int = 20,
    clip: bool = True,
    n_samples: int = 16,
    seq_len: int = 256,
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    progress: bool = True,
) -> QuantReport:
    """AWQ every ``nn.Linear`` of the model's blocks, in place (scales folded into the norms).

    Args:
        model: a causal LM; scaled pairs come from ``norm_linear_pairs``.
        calib_ids: 1-D calibration ids (``n_samples`` windows of ``seq_len``); may be
            ``None`` when ``stats`` (from :func:`collect_awq_stats` on the float model) is given.
        bits, group_size: the weight grid (asymmetric min–max, as RTN).
        n_grid: number of α values in [0, 1).
        clip: run the clipping search after scaling.

    Returns:
        :class:`~inwhale.llm.harness.QuantReport` with method ``"awq"``, settings ``bits``,
        ``group_size``, and details ``alpha``: each norm's name -> its chosen exponent.
    """
    from inwhale._optional import tqdm

    t0 = time.perf_counter()
    linears = block_linears(model)
    if stats is None:
        if calib_ids is None:
            raise TypeError("calib_ids must be a tensor of token ids when stats is None")
        calib_ids = _check_vocab(_as_1d_ids(calib_ids, "calib_ids"), model, "calib_ids")
        stats = collect_awq_stats(model, list(linears),
                                  calibration_batches(calib_ids, n_samples, seq_len))
    name_of = {id(m): n for n, m in linears.items()}
    scale_of: dict[str, torch.Tensor] = {}
    report = QuantReport("awq", list(linears), 0.0, {"bits": bits, "group_size": group_size},
                         {"alpha": {}})
    for pair in tqdm(norm_linear_pairs(model), desc="AWQ scales", disable=not progress):
        names = [name_of[id(m)] for m in pair.linears if id(m) in name_of]
        if not names:
            continue
        H, x_mean = stats[names[0]]
        s, alpha, _ = awq_scale_search([linears[n].weight.float() for n in names], H, x_mean,
                                       bits=bits, group_size=group_size, n_grid=n_grid)
        pair.norm.weight.div_(s.to(pair.norm.weight.dtype))        # X ← X diag(s)⁻¹
        for n in names:
            linears[n].weight.mul_(s.to(linears[n].weight.dtype))  # W ← W diag(s)
            scale_of[n] = s
        report.details["alpha"][pair.norm_name] = alpha
    for n, lin in tqdm(linears.items(), desc="AWQ quantize", disable=not progress):
        W, H = lin.weight.float(), stats[n][0]
        if n in scale_of:                                          # H of the scaled input
            H = H / scale_of[n][:, None] / scale_of[n][None, :]
        if clip:
            Wq = fake_quantize(W, awq_clip_qparams(W, H, bits=bits, group_size=group_size))
        else:
            Wq = rtn_weight(W, bits=bits, group_size=group_size)
        lin.weight.copy_(Wq.to(lin.weight.dtype))
    report.seconds = time.perf_counter() - t0
    return report
