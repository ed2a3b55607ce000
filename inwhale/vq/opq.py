"""Optimized product quantization, non-parametric variant (Ge, He, Ke & Sun, CVPR 2013).

PQ cuts the space along fixed coordinate blocks. OPQ first applies a learned orthogonal
matrix ``R`` (D, D) and product-quantizes ``y = x R``; since ``R`` is orthogonal the error in
``y``-space equals the error in ``x``-space:

    min_{R, C}  Σ_n ‖x_n R − q_C(x_n R)‖²      subject to  Rᵀ R = I.

The problem is solved by alternation:

1. fix ``R``: update the PQ codebooks (Lloyd iterations) and codes on ``X R``;
2. fix the codes: with ``Y = q(X R)`` the best rotation is the orthogonal Procrustes solution
   ``R = U Vᵀ`` where ``U S Vᵀ = svd(Xᵀ Y)`` (Schönemann 1966).

``encode(x) = PQ.encode(x R)``, ``decode(codes) = PQ.decode(codes) Rᵀ``.

Glossary: ``X`` (N, D) data, ``R`` (D, D) rotation, ``Y`` (N, D) quantized rotated data.
"""

from __future__ import annotations

import torch

from inwhale.vq.base import VectorQuantizer, check_data, check_positive_int
from inwhale.vq.pq import ProductQuantizer

__all__ = ["OptimizedProductQuantizer", "procrustes"]


def procrustes(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """The orthogonal ``R`` minimizing ``‖X R − Y‖_F``: ``R = U Vᵀ`` from ``svd(Xᵀ Y)``.

    >>> X = torch.eye(2); Y = torch.tensor([[0., 1.], [-1., 0.]])   # Y is X rotated by 90°
    >>> procrustes(X, Y)
    tensor([[ 0.,  1.],
            [-1.,  0.]])
    """
    U, _, Vh = torch.linalg.svd(X.T.double() @ Y.double())
    return (U @ Vh).to(X.dtype)


class OptimizedProductQuantizer(VectorQuantizer):
    """PQ after a learned rotation ``R``; same code size as :class:`ProductQuantizer`.

    Args:
        num_subspaces, codebook_size: as for PQ.
        outer_iters: rotation/codebook alternations.
        inner_iters: Lloyd iterations per alternation.
        seed: k-means seed.
    """

    def __init__(
        self,
        num_subspaces: int,
        codebook_size: int,
        outer_iters: int = 10,
        inner_iters: int = 5,
        seed: int = 0,
    ):
        self.pq = ProductQuantizer(num_subspaces, codebook_size, iters=inner_iters, seed=seed)
        self.num_codebooks, self.codebook_size = self.pq.num_codebooks, self.pq.codebook_size
        self.outer_iters = check_positive_int(outer_iters, "outer_iters")
        self.inner_iters = inner_iters
        self.rotation: torch.Tensor | None = None
        self.history: list[float] = []

    @torch.no_grad()
    def fit(self, X: torch.Tensor) -> OptimizedProductQuantizer:
        """Alternate Procrustes rotations and PQ codebook updates; records MSE per round."""
        X = check_data(X)
        R = torch.eye(X.shape[1], dtype=X.dtype, device=X.device)
        self.pq.fit(X)
        self.history = []
        for _ in range(self.outer_iters):
            Y = self.pq.quantize(X @ R)  # (N, D): quantized rotated data
            self.history.append(float(((X @ R - Y) ** 2).mean()))
            R = procrustes(X, Y)
            self.pq.refine(X @ R, self.inner_iters)
        self.rotation, self.dim = R, X.shape[1]
        return self

    def _encode(self, X: torch.Tensor) -> torch.Tensor:
        return self.pq.encode(X @ self.rotation)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.pq.decode(codes) @ self.rotation.T
