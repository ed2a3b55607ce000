"""Low rank meets quantization: quantized SVD factors, and a low-rank correction of the
quantization error (LoRC), optionally alternated with the quantizer (LQ-LoRA).

References: Eckart & Young, "The approximation of one matrix by another of lower rank",
Psychometrika 1936; Yao, Wu, Li, Youn, He, "ZeroQuant-V2: Exploring Post-training
Quantization in LLMs from Comprehensive Study to Low Rank Compensation", 2023 (LoRC);
Guo, Greengard, Xing, Kim, "LQ-LoRA: Low-rank plus Quantized Matrix Decomposition for
Efficient Language Model Finetuning", ICLR 2024 (arXiv 2023); Saha, Srivastava, Pilanci,
"Matrix Compression via Randomized Low Rank and Low Precision Factorization" (LPLR), 2023.

**Truncated SVD.** With ``W = U S Vᵀ`` (singular values ``σ₁ ≥ σ₂ ≥ …``), the best
approximation of rank ``r`` in Frobenius norm is ``W_r = U_r S_r V_rᵀ``, with

    ‖W − W_r‖²_F = Σ_{i>r} σ_i²                         (Eckart–Young)

We keep it as two *balanced* factors ``L = U_r S_r^{1/2}`` ``(O, r)`` and
``R = S_r^{1/2} V_rᵀ`` ``(r, I)``, so ``W_r = L R`` and both factors have the same scale.

**1. Quantized SVD** (low-rank compression, LPLR-like): ``W ≈ Q(L) Q(R)``. Each factor is
quantized with the round-to-nearest of :func:`inwhale.llm.rtn.rtn_weight`, one scale and
zero point per rank-one component (a column of ``L``, a row of ``R``), or per group of ``g``
values along it. Storage: ``r (O + I)`` codes of ``b`` bits plus the parameters, against
``O · I`` codes for plain quantization. It pays only when the spectrum of ``W`` decays fast.

**2. Low-rank correction** (LoRC, ZeroQuant-V2): quantize first, then approximate the
residual ``E = W − Q(W)`` by its rank-``r`` SVD, kept in ``b_c`` bits (8 in the paper):

    Ŵ = Q(W) + L R,        L R = SVD_r(W − Q(W))

Extra storage ``r (O + I) b_c`` bits, i.e. ``r (O + I) b_c / (O I)`` bits per weight.

**3. Alternating** (LQ-LoRA's decomposition, ``iters > 1``): start with ``L R = 0`` and
repeat ``Q ← Q(W − L R)``, ``L R ← SVD_r(W − Q)``. The first iteration is LoRC. The SVD step
is optimal for its block, but RTN is not the best quantization of its input in Frobenius
norm (its grid follows the input's range), so the error need not fall every iteration: the
best iterate is kept.

Glossary: ``W`` weight ``(O, I)``; ``Q(·)`` RTN fake-quantization (``b`` bits, groups of
``g``); ``r`` rank; ``L`` ``(O, r)``, ``R`` ``(r, I)`` factors; ``b_c`` factor bits;
``σ_i`` singular values; ``E`` residual.

>>> w = torch.outer(torch.arange(1.0, 5.0), torch.ones(3))     # rank 1
>>> L, R = truncated_svd(w, 1)
>>> bool(torch.allclose(L @ R, w, atol=1e-5)), tuple(L.shape), tuple(R.shape)
(True, (4, 1), (1, 3))
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from inwhale.core.checks import check_tensor
from inwhale.llm.rtn import bits_per_weight, rtn_weight
from inwhale.metrics import relative_error  # (w, ŵ): reference first

__all__ = [
    "LowRank",
    "LowRankCorrection",
    "lowrank_correct",
    "lowrank_correct_",
    "quantized_svd",
    "truncated_svd",
]


def _check_rank(w: torch.Tensor, rank: int) -> None:
    check_tensor(w, "w")
    if w.ndim != 2:
        raise ValueError(f"w must be a 2-D tensor (out, in), got shape {tuple(w.shape)}")
    if not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank <= min(w.shape):
        raise ValueError(f"rank must be an int in [0, min(w.shape) = {min(w.shape)}], "
                         f"got {rank!r}")


def truncated_svd(w: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced factors of the best rank-``r`` approximation of ``w``.

    Returns ``L = U_r S_r^{1/2}`` ``(O, r)`` and ``R = S_r^{1/2} V_rᵀ`` ``(r, I)`` with
    ``L R = U_r S_r V_rᵀ``.

    Computed from the eigenvectors of the smaller Gram matrix (for ``O ≥ I``:
    ``WᵀW = V S² Vᵀ``, then ``U_r S_r = W V_r`` and ``σ_i = ‖W v_i‖``). That gives the same
    ``L R`` as :func:`torch.linalg.svd` truncated to ``r`` (up to float rounding), three to
    five times faster on a CPU for SmolLM2's shapes. The Gram matrix squares the condition
    number, so in float32 singular values below about ``10⁻³ σ₁`` lose relative accuracy; the
    leading ones kept here do not. Computed in float32 (float64 stays float64).

    >>> L, R = truncated_svd(torch.tensor([[3.0, 0.0], [0.0, 1.0]]), 1)
    >>> (L @ R).tolist()
    [[3.0, 0.0], [0.0, 0.0]]
    """
    _check_rank(w, rank)
    if w.shape[0] < w.shape[1]:  # work on the tall orientation
        L, R = truncated_svd(w.T, rank)
        return R.T, L.T
    w = w.double() if w.dtype == torch.float64 else w.float()
    if rank == 0:
        return w.new_zeros(w.shape[0], 0), w.new_zeros(0, w.shape[1])
    _, V = torch.linalg.eigh(w.T @ w)  # (I, I), eigenvalues ascending
    V_r = V[:, -rank:].flip(-1)  # (I, r): leading right singular vectors
    US = w @ V_r  # (O, r) = U_r S_r
    sqrt_s = US.norm(dim=0).sqrt()  # (r,) σ_i^{1/2}
    safe = torch.where(sqrt_s > 0, sqrt_s, torch.ones_like(sqrt_s))
    return US / safe, sqrt_s[:, None] * V_r.T  # (O, r), (r, I)


@dataclass
class LowRank:
    """Two factors ``L`` ``(O, r)``, ``R`` ``(r, I)`` (their values as used, i.e. dequantized)
    and how they are stored: ``bits``-bit RTN codes, one scale and zero point (fp16 each) per
    rank-one component or per ``group_size`` values of it; ``bits=None`` means fp16 values."""

    L: torch.Tensor
    R: torch.Tensor
    bits: int | None = None
    group_size: int | None = None

    @property
    def rank(self) -> int:
        """``r``."""
        return self.R.shape[0]

    def matrix(self) -> torch.Tensor:
        """``L R`` ``(O, I)``."""
        return self.L @ self.R

    def stored_bits(self) -> float:
        """Bits stored for both factors: codes plus parameters (16 bits per value if fp16).

        >>> LowRank(torch.zeros(576, 8), torch.zeros(8, 1536), bits=8).stored_bits()
        135680.0

        (8·8·(576 + 1536) = 135,168 code bits + 16 components × (fp16 scale + zero point).)
        """
        r = self.rank
        if r == 0:
            return 0.0
        if self.bits is None:
            return 16.0 * r * (self.L.shape[0] + self.R.shape[1])
        return sum(bits_per_weight(self.bits, self.group_size, (r, n)) * r * n
                   for n in (self.L.shape[0], self.R.shape[1]))


def quantized_svd(w: torch.Tensor, rank: int, bits: int | None = None,
                  group_size: int | None = None) -> LowRank:
    """``W ≈ Q(L) Q(R)``: truncated SVD, then RTN of both factors (see the module docstring).

    Args:
        w: weight ``(O, I)``.
        rank: ``0 ≤ r ≤ min(O, I)``.
        bits: factor bits (2–8 for RTN), or ``None`` to keep the factors in float (counted
            as fp16).
        group_size: ``None`` for one scale per rank-one component, else groups of this many
            values along each component (``≤ O`` and ``≤ I``).

    >>> w = torch.randn(64, 32, generator=torch.Generator().manual_seed(0))
    >>> lr = quantized_svd(w, rank=32, bits=8)
    >>> relative_error(w, lr.matrix()) < 0.02, lr.stored_bits() == 32 * 96 * 8 + 64 * 32
    (True, True)
    """
    L, R = truncated_svd(w, rank)
    if bits is not None and rank > 0:
        L = rtn_weight(L.T.contiguous(), bits, group_size).T  # per column of L
        R = rtn_weight(R, bits, group_size)  # per row of R
    return LowRank(L, R, bits, group_size)


@dataclass
class LowRankCorrection:
    """``Ŵ = Q + L R``: the RTN part, the factors, and the relative error of every iteration.

    ``bits_per_weight`` counts the RTN codes and fp16 parameters plus the factors.
    """

    q: torch.Tensor
    factors: LowRank
    bits: int
    group_size: int | None
    errors: list[float] = field(default_factory=list)

    def matrix(self) -> torch.Tensor:
        """``Ŵ = Q + L R`` ``(O, I)``."""
        return self.q + self.factors.matrix()

    def bits_per_weight(self) -> float:
        """``b + params/(O I) + (factor bits)/(O I)``."""
        shape = tuple(self.q.shape)
        n = self.q.numel()
        return bits_per_weight(self.bits, self.group_size, shape) + self.factors.stored_bits() / n


@torch.no_grad()
def lowrank_correct(w: torch.Tensor, bits: int, rank: int, group_size: int | None = None,
                    factor_bits: int | None = 8, iters: int = 1) -> LowRankCorrection:
    """Quantize ``w`` with RTN and correct the residual with a rank-``r`` term.

    ``iters = 1`` is LoRC: ``Ŵ = Q(W) + SVD_r(W − Q(W))``. ``iters > 1`` alternates
    ``Q ← Q(W − L R)``, ``L R ← SVD_r(W − Q)`` and keeps the best iterate (LQ-LoRA).

    Args:
        w: weight ``(O, I)``.
        bits: RTN bits of ``Q`` (asymmetric; per row, or per group of ``group_size`` inputs).
        rank: ``r ≥ 0`` (0: plain RTN).
        group_size: RTN group along the input axis, ``None`` for one scale per row.
        factor_bits: bits of the factors (RTN per rank-one component), ``None`` for fp16.
        iters: alternations, ``≥ 1``.

    >>> w = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    >>> plain, fixed = lowrank_correct(w, 3, rank=0), lowrank_correct(w, 3, rank=8)
    >>> fixed.errors[-1] < plain.errors[-1], round(fixed.bits_per_weight() - 3.5, 3)
    (True, 2.125)

    (The rank-8 term costs 2·8·64·8 code bits + 16·32 parameter bits = 2.125 bits per weight
    of this tiny matrix; for a 576 × 1536 SmolLM2 weight, rank 8 in 8 bits costs 0.15.)
    """
    _check_rank(w, rank)
    if not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters must be an int >= 1, got {iters!r}")
    w = w.float() if w.dtype != torch.float64 else w
    low = torch.zeros_like(w)
    best, errors = None, []
    for _ in range(iters):
        q = rtn_weight(w - low, bits, group_size)  # (O, I)
        factors = quantized_svd(w - q, rank, factor_bits)
        low = factors.matrix()
        errors.append(relative_error(w, q + low))
        if best is None or errors[-1] < best[2]:
            best = (q, factors, errors[-1])
    return LowRankCorrection(best[0], best[1], bits, group_size, errors)


@torch.no_grad()
def lowrank_correct_(model: nn.Module, bits: int, group_size: int | None, rank: int, *,
                     factor_bits: int | None = 8, iters: int = 1,
                     skip: str | tuple[str, ...] = ("lm_head",), progress: bool = True) -> dict:
    """Apply :func:`lowrank_correct` to every ``nn.Linear`` (found by type), in place.

    Each weight is replaced by the dense ``Ŵ = Q + L R`` (a simulation: a deployment would
    keep the codes and the two small factors and add ``(x Rᵀ) Lᵀ`` to ``x Qᵀ``). A linear
    whose smaller side is below ``rank`` gets ``rank = min(O, I)``.

    Returns:
        ``{"method", "layers", "seconds", "bits", "group_size", "rank", "factor_bits",
        "bits_per_weight", "rtn_bits_per_weight", "errors"}``: the bits per weight are
        averaged over all corrected weights; ``errors`` maps layer name to
        ``(relative error of plain RTN, relative error after correction)``.

    Example:
        >>> net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))
        >>> rep = lowrank_correct_(net, bits=3, group_size=None, rank=4, progress=False)
        >>> rep["layers"], all(after < before for before, after in rep["errors"].values())
        (2, True)
    """
    from inwhale._optional import tqdm
    from inwhale.llm.harness import find_linears

    start, errors = time.perf_counter(), {}
    stored = plain = numel = 0.0
    for name, lin in tqdm(find_linears(model, skip).items(), desc="LoRC", disable=not progress):
        w = lin.weight.data
        fix = lowrank_correct(w, bits, min(rank, *w.shape), group_size, factor_bits, iters)
        w_hat = fix.matrix()
        errors[name] = (relative_error(w, rtn_weight(w, bits, group_size)),
                        relative_error(w, w_hat))
        stored += fix.bits_per_weight() * w.numel()
        plain += bits_per_weight(bits, group_size, tuple(w.shape)) * w.numel()
        numel += w.numel()
        w.copy_(w_hat.to(w.dtype))
    return {"method": "lorc" if iters == 1 else "lq-lora", "layers": len(errors),
            "seconds": time.perf_counter() - start, "bits": bits, "group_size": group_size,
            "rank": rank, "factor_bits": factor_bits,
            "bits_per_weight": stored / max(numel, 1), "rtn_bits_per_weight": plain / max(numel, 1),
            "errors": errors}
