"""Product quantization (Jégou, Douze & Schmid, IEEE TPAMI 2011).

Split each vector into ``M`` sub-vectors of ``D/M`` dimensions and quantize every sub-vector
with its own small k-means codebook ``C_m`` of ``K`` entries:

    x = [x^(1), …, x^(M)],        q(x) = [c^(1)_{i_1}, …, c^(M)_{i_M}],
    i_m = argmin_k ‖x^(m) − c^(m)_k‖².

The implicit codebook is the Cartesian product ``C_1 × … × C_M`` with ``K^M`` entries, yet
only ``M · K`` centroids are stored and searched. A code costs ``M · log2 K`` bits
(``M = 8``, ``K = 256``: 64 bits per vector). The price: the sub-spaces are coded
independently, so correlation *between* sub-vectors is wasted (OPQ rotates first to fix that).

Glossary: ``D`` dimension, ``M`` sub-spaces, ``d = D/M`` sub-dimension, ``K`` centroids per
sub-space, ``C`` codebooks of shape (M, K, d), codes (N, M).
"""

from __future__ import annotations

import torch

from inwhale.vq.base import VectorQuantizer, check_data, check_positive_int
from inwhale.vq.kmeans import _lloyd, assign, kmeans

__all__ = ["ProductQuantizer"]


class ProductQuantizer(VectorQuantizer):
    """``M`` independent k-means codebooks, one per block of ``D/M`` consecutive dimensions.

    Args:
        num_subspaces: ``M``; must divide the data dimension.
        codebook_size: ``K`` centroids per sub-space (``2**bits`` for a byte-aligned code).
        iters, seed: passed to :func:`inwhale.vq.kmeans.kmeans`.

    Example (D = 4, M = 2: each half is clustered separately):
        >>> X = torch.tensor([[0., 0., 5., 5.], [1., 1., 5., 5.], [0., 0., 9., 9.]])
        >>> pq = ProductQuantizer(2, 2).fit(X)
        >>> pq.encode(X).shape, pq.code_bits, pq.bits_per_dim
        (torch.Size([3, 2]), 2.0, 0.5)
    """

    def __init__(self, num_subspaces: int, codebook_size: int, iters: int = 50, seed: int = 0):
        self.num_codebooks = check_positive_int(num_subspaces, "num_subspaces")
        self.codebook_size = check_positive_int(codebook_size, "codebook_size")
        self.iters, self.seed = iters, seed
        self.codebooks: torch.Tensor | None = None  # (M, K, d)

    def _split(self, X: torch.Tensor) -> torch.Tensor:
        return X.reshape(X.shape[0], self.num_codebooks, -1)  # (N, M, d)

    @torch.no_grad()
    def fit(self, X: torch.Tensor) -> ProductQuantizer:
        """Run one k-means per sub-space on ``X`` (N, D)."""
        X = check_data(X)
        if X.shape[1] % self.num_codebooks:
            raise ValueError(
                f"num_subspaces={self.num_codebooks} must divide the dimension D={X.shape[1]}"
            )
        Xs = self._split(X)
        self.codebooks = torch.stack(
            [
                kmeans(Xs[:, m].contiguous(), self.codebook_size, self.iters, seed=self.seed + m)[0]
                for m in range(self.num_codebooks)
            ]
        )  # (M, K, d)
        self.dim = X.shape[1]
        return self

    @torch.no_grad()
    def refine(self, X: torch.Tensor, iters: int) -> ProductQuantizer:
        """A few Lloyd iterations from the current codebooks (used by OPQ's alternation)."""
        Xs = self._split(check_data(X, dim=self._check_fitted()))
        for m in range(self.num_codebooks):
            self.codebooks[m] = _lloyd(Xs[:, m].contiguous(), self.codebooks[m], iters, 0.0)[0]
        return self

    def _encode(self, X: torch.Tensor) -> torch.Tensor:
        Xs = self._split(X)
        cols = [
            assign(Xs[:, m].contiguous(), self.codebooks[m])[0] for m in range(self.num_codebooks)
        ]
        return torch.stack(cols, 1)  # (N, M)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        m = torch.arange(self.num_codebooks, device=codes.device)
        return self.codebooks[m, codes].reshape(codes.shape[0], -1)  # (N, M, d) -> (N, D)
