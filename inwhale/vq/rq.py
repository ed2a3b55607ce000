"""Residual (multi-stage) vector quantization (Juang & Gray 1982; Chen, Guan & Wang 2010).

Quantize, subtract, quantize what is left, ``M`` times, each stage with its own full-dimension
k-means codebook ``C_m`` (K, D):

    r_0 = x,    i_m = argmin_k ‖r_{m−1} − c^(m)_k‖²,    r_m = r_{m−1} − c^(m)_{i_m},
    x̂ = Σ_m c^(m)_{i_m}.

Unlike PQ every codebook sees all ``D`` dimensions, so correlations across the whole vector
are used; the encoder is greedy (each stage picks its best codeword without looking ahead).
Cost ``M · log2 K`` bits, like PQ with the same ``M, K``.

Glossary: ``r_m`` residual after stage ``m``, ``C`` codebooks (M, K, D), codes (N, M).
"""

from __future__ import annotations

import torch

from inwhale.vq.base import VectorQuantizer, check_data, check_positive_int
from inwhale.vq.kmeans import assign, kmeans

__all__ = ["ResidualQuantizer"]


class ResidualQuantizer(VectorQuantizer):
    """``M`` stages of k-means on successive residuals, greedy encoding.

    Example (stage 2 refines what stage 1 left):
        >>> X = torch.tensor([[0.], [1.], [10.], [11.]])
        >>> rq = ResidualQuantizer(2, 2).fit(X)
        >>> rq.quantize(X).flatten().tolist()
        [0.0, 1.0, 10.0, 11.0]
    """

    def __init__(self, num_stages: int, codebook_size: int, iters: int = 50, seed: int = 0):
        self.num_codebooks = check_positive_int(num_stages, "num_stages")
        self.codebook_size = check_positive_int(codebook_size, "codebook_size")
        self.iters, self.seed = iters, seed
        self.codebooks: torch.Tensor | None = None  # (M, K, D)

    @torch.no_grad()
    def fit(self, X: torch.Tensor) -> ResidualQuantizer:
        """Fit stage ``m`` by k-means on the residuals left by stages ``0..m−1``."""
        R = check_data(X).clone()
        books = []
        for m in range(self.num_codebooks):
            C, a, _ = kmeans(R, self.codebook_size, self.iters, seed=self.seed + m)
            R -= C[a]
            books.append(C)
        self.codebooks, self.dim = torch.stack(books), X.shape[1]
        return self

    def _encode(self, X: torch.Tensor) -> torch.Tensor:
        R = X.clone()
        cols = []
        for C in self.codebooks:
            a = assign(R, C)[0]
            R -= C[a]
            cols.append(a)
        return torch.stack(cols, 1)  # (N, M)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        m = torch.arange(self.num_codebooks, device=codes.device)
        return self.codebooks[m, codes].sum(1)  # (N, M, D) -> (N, D)
