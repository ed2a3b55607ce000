"""Additive quantization (Babenko & Lempitsky, CVPR 2014), with an ICM encoder.

Like residual quantization, a vector is a *sum* of ``M`` full-dimension codewords, but the
codebooks are learned jointly and the codes are chosen jointly:

    x̂ = Σ_m C_m[i_m],      min_{C, i} Σ_n ‖x_n − Σ_m C_m[i_{n,m}]‖².

Two alternating steps:

* **codebook update** (codes fixed) is linear least squares. With ``B`` the (N, M·K) one-hot
  code matrix and ``C`` the stacked (M·K, D) codebooks, ``min ‖X − B C‖²`` gives the normal
  equations ``(BᵀB + λI) C = Bᵀ X`` (``λ`` a tiny ridge for unused codewords).
* **encoding** (codebooks fixed) is a fully connected discrete problem (NP-hard). Babenko &
  Lempitsky use beam search. Here new vectors are encoded by a beam search over the codebooks
  in a fixed order (keep the ``B`` best partial sums after each codebook), then polished by
  *iterated conditional modes* (ICM), as in LSQ (Martinez et al. 2016): re-pick ``i_m`` for
  one ``m`` at a time with the others fixed,
  ``i_m ← argmin_k ‖(x − Σ_{j≠m} C_j[i_j]) − C_m[k]‖²``. No ICM sweep can raise the error.
  During training the codes of the previous round seed ICM directly; for new vectors the
  initial residual quantizer's codes are a second start (kept when better), since a beam in
  fixed order suits residual-like codebooks and the jointly learned ones drift from that.

Codebooks start from :class:`~inwhale.vq.rq.ResidualQuantizer`, so AQ never does worse than
RQ on its training data.

Glossary: ``M`` codebooks, ``K`` entries, ``C`` (M, K, D), ``B`` one-hot codes (N, M·K).
"""

from __future__ import annotations

import torch

from inwhale.vq.base import VectorQuantizer, check_data, check_positive_int
from inwhale.vq.kmeans import assign, sq_distances
from inwhale.vq.rq import ResidualQuantizer

__all__ = ["AdditiveQuantizer", "beam_encode", "icm_encode", "least_squares_codebooks"]


def icm_encode(X: torch.Tensor, C: torch.Tensor, codes: torch.Tensor, sweeps: int) -> torch.Tensor:
    """ICM: ``sweeps`` passes of re-choosing each code with the other ``M − 1`` fixed.

    Args:
        X: (N, D) data; C: (M, K, D) codebooks; codes: (N, M) starting codes (not modified).

    Returns:
        (N, M) codes whose reconstruction error is ≤ that of ``codes`` for every row.
    """
    codes = codes.clone()
    M = C.shape[0]
    R = X - C[torch.arange(M, device=X.device), codes].sum(1)  # (N, D) residual
    for _ in range(sweeps):
        for m in range(M):
            R += C[m][codes[:, m]]  # residual without codebook m
            codes[:, m] = assign(R, C[m])[0]
            R -= C[m][codes[:, m]]
    return codes


def beam_encode(X: torch.Tensor, C: torch.Tensor, beam: int) -> torch.Tensor:
    """Beam search over codebooks ``0..M−1``: keep the ``beam`` best partial codes per vector.

    ``beam = 1`` is greedy residual encoding. Returns (N, M) codes.
    """
    N, (M, K, _) = X.shape[0], C.shape
    R = X.unsqueeze(1)  # (N, 1, D) residuals of the surviving candidates
    codes = torch.zeros(N, 1, 0, dtype=torch.long, device=X.device)  # (N, B, m)
    for m in range(M):
        B = R.shape[1]
        d = sq_distances(R.reshape(N * B, -1), C[m]).reshape(N, B, K)  # (N, B, K)
        best = d.reshape(N, B * K).topk(min(beam, B * K), largest=False).indices  # (N, B')
        parent, k = best // K, best % K
        R = R.gather(1, parent.unsqueeze(-1).expand(-1, -1, R.shape[-1])) - C[m][k]
        codes = torch.cat(
            [codes.gather(1, parent.unsqueeze(-1).expand(-1, -1, m)), k.unsqueeze(-1)], -1
        )
    return codes[:, 0]  # topk is sorted: candidate 0 is the best


def least_squares_codebooks(
    X: torch.Tensor, codes: torch.Tensor, K: int, ridge: float = 1e-6
) -> torch.Tensor:
    """Solve ``(BᵀB + λI) C = BᵀX`` for all codebooks at once; returns (M, K, D).

    ``BᵀB`` is built from co-occurrence counts of code pairs without forming ``B``.
    """
    N, M = codes.shape
    flat = codes + K * torch.arange(M, device=codes.device)  # (N, M) column index in B
    G = torch.zeros(M * K, M * K, dtype=torch.float64, device=X.device)
    ones = torch.ones(N, dtype=torch.float64, device=X.device)
    for i in range(M):
        for j in range(M):
            G.index_put_((flat[:, i], flat[:, j]), ones, accumulate=True)
    BtX = torch.zeros(M * K, X.shape[1], dtype=torch.float64, device=X.device)
    for i in range(M):
        BtX.index_add_(0, flat[:, i], X.double())
    G += (
        ridge
        * max(1.0, float(G.diagonal().mean()))
        * torch.eye(M * K, dtype=G.dtype, device=G.device)
    )
    return torch.linalg.solve(G, BtX).to(X.dtype).reshape(M, K, -1)


class AdditiveQuantizer(VectorQuantizer):
    """Sum of ``M`` jointly learned full-dimension codewords; ICM encoding.

    Args:
        num_codebooks: ``M``; codebook_size: ``K``.
        iters: alternations of (ICM encoding, least-squares codebooks).
        icm_sweeps: ICM passes per encoding.
        beam: beam width when encoding new vectors.
        seed: seed of the residual-quantizer initialization.
    """

    def __init__(
        self,
        num_codebooks: int,
        codebook_size: int,
        iters: int = 10,
        icm_sweeps: int = 3,
        beam: int = 8,
        seed: int = 0,
    ):
        self.num_codebooks = check_positive_int(num_codebooks, "num_codebooks")
        self.codebook_size = check_positive_int(codebook_size, "codebook_size")
        self.iters, self.icm_sweeps, self.seed = iters, icm_sweeps, seed
        self.beam = check_positive_int(beam, "beam")
        self.codebooks: torch.Tensor | None = None
        self.history: list[float] = []

    @torch.no_grad()
    def fit(self, X: torch.Tensor) -> AdditiveQuantizer:
        """RQ initialization, then ``iters`` rounds of ICM encoding + least-squares codebooks."""
        X = check_data(X)
        rq = ResidualQuantizer(self.num_codebooks, self.codebook_size, seed=self.seed).fit(X)
        self.rq, self.codebooks, self.dim = rq, rq.codebooks.clone(), X.shape[1]
        codes = rq.encode(X)
        self.history = [float(((X - self._decode(codes)) ** 2).mean())]
        for _ in range(self.iters):
            self.codebooks = least_squares_codebooks(X, codes, self.codebook_size)
            codes = icm_encode(X, self.codebooks, codes, self.icm_sweeps)
            self.history.append(float(((X - self._decode(codes)) ** 2).mean()))
        return self

    def _encode(self, X: torch.Tensor) -> torch.Tensor:
        # two starts, kept per row: the initial RQ's codes (how training started) and a beam
        # search with the final codebooks; then ICM polishes the better one
        starts = [self.rq.encode(X), beam_encode(X, self.codebooks, self.beam)]
        errs = torch.stack([((X - self._decode(c)) ** 2).sum(1) for c in starts])  # (2, N)
        codes = torch.where((errs[0] <= errs[1]).unsqueeze(1), starts[0], starts[1])
        return icm_encode(X, self.codebooks, codes, self.icm_sweeps)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        m = torch.arange(self.num_codebooks, device=codes.device)
        return self.codebooks[m, codes].sum(1)
