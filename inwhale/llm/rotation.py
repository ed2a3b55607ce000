"""Hadamard rotations of the residual stream: incoherence processing for quantization.

Papers: J. Chee, Y. Cai, V. Kuleshov, C. De Sa, "QuIP: 2-Bit Quantization of Large Language
Models With Guarantees", NeurIPS 2023 (incoherence processing); A. Tseng et al., "QuIP#",
ICML 2024 (randomized Hadamard transforms); S. Ashkboos et al., "QuaRot: Outlier-Free 4-Bit
Inference in Rotated LLMs", NeurIPS 2024 (rotations folded into the weights of a pre-norm LLM,
after SliceGPT's computational invariance).

The idea. For any orthogonal ``Q`` (``QᵀQ = I``), a linear layer computes the same thing on
rotated inputs with rotated weights:

    y = x Wᵀ = (x Q)(W Q)ᵀ.                                          (1)

A weight row (or an activation vector) with a few huge entries becomes, after a
**normalized Hadamard** rotation ``H/√n`` (entries ``±1/√n``), a vector whose entries are all
about ``‖w‖/√n``: the outliers are spread evenly over all coordinates ("incoherence"), the
max/RMS ratio drops, and a uniform grid fits much better.

Where a rotation can be folded for free in a pre-norm transformer (RMSNorm, no biases):

1. fold each RMSNorm weight ``γ`` into the linears that read it: ``W ← W diag(γ)``, ``γ ← 1``;
2. rotate the residual stream ``h ← h Q``: embedding rows ``E ← E Q``; every linear that
   *reads* the stream (after a norm) ``W ← W Q``; every linear that *writes* to it
   (attention output, MLP down projection) ``W ← Qᵀ W`` (and ``b ← b Q``); the output
   head ``W ← W Q``. RMSNorm with ``γ = 1`` commutes with ``Q`` because ``‖hQ‖ = ‖h‖``.

The float model is unchanged (up to rounding); only its weights look different.

Sizes that are not a power of two. SmolLM2's hidden size 576 = 2⁶·9, and no Hadamard matrix
of order 9 exists (orders are 1, 2 and multiples of 4). :func:`incoherence_matrix` uses the
Kronecker product ``H_64/8 ⊗ R_9`` with a seeded random orthogonal ``R_9`` (the QR factor of
a Gaussian matrix), times random signs ``diag(±1)`` on the input side — the
"randomized Hadamard transform" of QuIP#, with a random orthogonal block for the odd factor.

Glossary: ``Q`` the (d, d) orthogonal rotation; ``d`` hidden size; ``H_n`` the Sylvester
Hadamard matrix of order ``n = 2^k`` (entries ±1, ``H Hᵀ = n I``); ``γ`` RMSNorm weight;
``E`` embedding (vocab, d); ``W`` a linear weight (out, in).
"""

from __future__ import annotations

import time

import torch
from torch import nn

from inwhale.core.checks import check_module, check_tensor
from inwhale.llm.harness import (
    _EvalMode,
    _forward_logits,
    _model_device,
    block_linears,
    norm_linear_pairs,
)
from inwhale.metrics import kurtosis

__all__ = [
    "excess_kurtosis",
    "fold_norms_",
    "hadamard_matrix",
    "incoherence_matrix",
    "random_orthogonal",
    "rotate_model_",
]


def hadamard_matrix(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The Sylvester Hadamard matrix of order ``n = 2^k``, normalized: ``H/√n`` (orthogonal).

    ``H_1 = [1]``, ``H_2n = [[H_n, H_n], [H_n, −H_n]]``.

    >>> hadamard_matrix(2) * 2**0.5
    tensor([[ 1.,  1.],
            [ 1., -1.]], dtype=torch.float64)

    Raises ``ValueError`` unless ``n`` is a positive power of two.
    """
    if not isinstance(n, int) or n < 1 or n & (n - 1):
        raise ValueError(f"n must be a power of two, got {n!r}")
    H = torch.ones(1, 1, dtype=dtype)
    while H.shape[0] < n:
        H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)], 0)
    return H / n**0.5


def random_orthogonal(n: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A seeded random orthogonal (n, n) matrix: the Q of the QR of a Gaussian matrix.

    Signs are fixed by ``Q ← Q diag(sign(diag R))``, which makes it Haar-distributed.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=gen, dtype=torch.float64)
    Q, R = torch.linalg.qr(A)
    return (Q * torch.sign(torch.diag(R))).to(dtype).contiguous()


def incoherence_matrix(n: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Orthogonal (n, n) rotation ``diag(±1) · (H_{2^k}/√2^k ⊗ R_m)`` for ``n = 2^k · m``, m odd.

    ``R_m`` is :func:`random_orthogonal` (``m = 1`` gives a pure randomized Hadamard
    transform). Entries of the Hadamard factor are ``±2^{-k/2}``, so every output coordinate
    mixes ``2^k`` blocks evenly. Deterministic for a given ``seed``.

    >>> Q = incoherence_matrix(576)          # 64 x 9
    >>> bool(torch.allclose(Q @ Q.T, torch.eye(576, dtype=Q.dtype), atol=1e-12))
    True
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    k = (n & -n)  # largest power of two dividing n
    m = n // k
    Q = hadamard_matrix(k)
    if m > 1:
        Q = torch.kron(Q, random_orthogonal(m, seed + 1).contiguous())
    gen = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (n,), generator=gen).double() * 2 - 1
    return (signs[:, None] * Q).to(dtype)


def excess_kurtosis(x: torch.Tensor) -> float:
    """Excess kurtosis ``E[(x−μ)⁴]/σ⁴ − 3`` of all entries (0 for a Gaussian, 1.2 − 3 = −1.8
    for a uniform distribution; large for heavy tails / outliers).

    The float64 measurement of :func:`inwhale.metrics.kurtosis` with ``excess=True``.

    >>> round(excess_kurtosis(torch.tensor([-1.0, 1.0])), 6)
    -2.0
    """
    check_tensor(x, "x")
    return float(kurtosis(x.detach().double(), excess=True))


def _norm_execution_order(model: nn.Module, d: int) -> list[nn.Module]:
    """Leaf modules with a 1-D weight of length ``d`` (norms), in the order they run."""
    order: list[nn.Module] = []
    cands = [m for m in model.modules() if next(m.children(), None) is None
             and not isinstance(m, (nn.Linear, nn.Embedding))
             and isinstance(getattr(m, "weight", None), torch.Tensor)
             and m.weight.ndim == 1 and m.weight.numel() == d]
    handles = [m.register_forward_hook(lambda mod, i, o: order.append(mod)) for m in cands]
    try:
        with _EvalMode(model):
            _forward_logits(model, torch.arange(1, 9)[None].to(_model_device(model)))
    finally:
        for h in handles:
            h.remove()
    return order


@torch.no_grad()
def fold_norms_(model: nn.Module) -> dict:
    """Fold every RMSNorm weight ``γ`` into the linears that read it (``W ← W diag(γ)``), in place.

    Pairs come from :func:`~inwhale.llm.harness.norm_linear_pairs`; the final norm (the last
    norm to run) is folded into the output head, which is first untied from the input
    embedding. Afterwards every norm weight is 1. Returns ``{"pairs": n, "final_norm": bool}``.
    """
    emb, head = _embeddings(model)
    _untie(model, emb, head)
    pairs = norm_linear_pairs(model)
    for p in pairs:
        for lin in p.linears:
            lin.weight.mul_(p.norm.weight.to(lin.weight.dtype)[None, :])
        p.norm.weight.fill_(1.0)
    paired = {id(p.norm) for p in pairs}
    order = _norm_execution_order(model, emb.weight.shape[1])
    final = order[-1] if order and id(order[-1]) not in paired else None
    if final is not None:
        head.weight.mul_(final.weight.to(head.weight.dtype)[None, :])
        final.weight.fill_(1.0)
    return {"pairs": len(pairs), "final_norm": final is not None}


def _embeddings(model: nn.Module) -> tuple[nn.Embedding, nn.Linear]:
    """The input embedding and output head (transformers' ``get_*_embeddings`` API)."""
    check_module(model, "model")
    if not hasattr(model, "get_input_embeddings") or not hasattr(model, "get_output_embeddings"):
        raise TypeError("model must provide get_input_embeddings() and get_output_embeddings() "
                        "(a transformers causal LM)")
    emb, head = model.get_input_embeddings(), model.get_output_embeddings()
    if not isinstance(emb, nn.Embedding) or not isinstance(head, nn.Linear):
        raise TypeError("expected an nn.Embedding input and an nn.Linear output head")
    return emb, head


def _untie(model: nn.Module, emb: nn.Embedding, head: nn.Linear) -> None:
    """Give the output head its own weight tensor if it shares the embedding's."""
    if head.weight is emb.weight or head.weight.data_ptr() == emb.weight.data_ptr():
        head.weight = nn.Parameter(emb.weight.detach().clone())
        if hasattr(model, "config"):
            model.config.tie_word_embeddings = False


def _rotate_(lin: nn.Module, Q: torch.Tensor, side: str) -> None:
    """``W ← W Q`` (side="in") or ``W ← Qᵀ W``, ``b ← b Q`` (side="out"), computed in float64."""
    W = lin.weight.double()
    Qd = Q.to(W.device)
    new = W @ Qd if side == "in" else Qd.T @ W
    lin.weight.copy_(new.to(lin.weight.dtype))
    if side == "out" and getattr(lin, "bias", None) is not None:
        lin.bias.copy_((lin.bias.double() @ Qd).to(lin.bias.dtype))


@torch.no_grad()
def rotate_model_(model: nn.Module, Q: torch.Tensor | None = None, seed: int = 0) -> dict:
    """Fold the norms, then rotate the residual stream of a pre-norm LM by ``Q``, in place.

    Equation (1) and steps 1–2 of the module docstring. Readers are the linears paired with
    a norm; writers are the other linears inside the blocks whose ``out_features`` equals the
    hidden size (attention output, MLP down projection). Requires RMSNorm-type norms (no mean
    subtraction, no bias) and no absolute position embedding added to the stream.

    Args:
        model: a transformers causal LM (``get_input_embeddings``/``get_output_embeddings``).
        Q: (d, d) orthogonal matrix; default :func:`incoherence_matrix` ``(d, seed)``.
        seed: seed of the default rotation.

    Returns:
        ``{"method": "rotation", "readers", "writers", "seconds"}``.
    """
    t0 = time.perf_counter()
    emb, head = _embeddings(model)
    d = emb.weight.shape[1]
    Q = incoherence_matrix(d, seed) if Q is None else check_tensor(Q, "Q").double()
    if Q.shape != (d, d):
        raise ValueError(f"Q must have shape ({d}, {d}), got {tuple(Q.shape)}")
    fold_norms_(model)
    readers = [lin for p in norm_linear_pairs(model) for lin in p.linears]
    reader_ids = {id(m) for m in readers}
    writers = [m for m in block_linears(model).values()
               if id(m) not in reader_ids and m.out_features == d]
    emb.weight.copy_((emb.weight.double() @ Q.to(emb.weight.device)).to(emb.weight.dtype))
    for lin in [*readers, head]:
        _rotate_(lin, Q, "in")
    for lin in writers:
        _rotate_(lin, Q, "out")
    return {"method": "rotation", "readers": len(readers), "writers": len(writers),
            "seconds": time.perf_counter() - t0}
