"""k-means vector quantization: Lloyd's algorithm with k-means++ seeding.

The codebook ``C = {c_1, …, c_K}`` that minimizes the mean squared distortion

    D(C) = (1/N) Σ_n min_k ‖x_n − c_k‖²

satisfies two necessary conditions (Lloyd 1957/1982, generalized to vectors by Linde, Buzo &
Gray 1980): each vector goes to its nearest centroid (*nearest-neighbour condition*),

    a_n = argmin_k ‖x_n − c_k‖²,

and each centroid is the mean of the vectors assigned to it (*centroid condition*),

    c_k = mean{x_n : a_n = k}.

Lloyd's algorithm alternates the two; each step can only lower ``D``. The start matters, so
centroids are seeded with k-means++ (Arthur & Vassilvitskii 2007): the first is a random
vector, each next one is drawn with probability proportional to its squared distance to the
nearest centroid chosen so far. A centroid that loses all its vectors is moved to the vector
with the largest current error.

Glossary: ``X`` (N, D) data, ``C`` (K, D) centroids, ``a`` (N,) assignments, *inertia*
``Σ_n ‖x_n − c_{a_n}‖²`` (scikit-learn's name for ``N · D(C)``).
"""

from __future__ import annotations

import torch

from inwhale.vq.base import VectorQuantizer, check_data, check_positive_int

__all__ = ["KMeansVQ", "assign", "kmeans", "kmeans_plusplus", "sq_distances"]


def sq_distances(X: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``‖x_n − c_k‖²`` as an (N, K) matrix.

    Uses ``‖x‖² − 2 x·c + ‖c‖²`` (one matmul), clamped at 0 against round-off.

    >>> sq_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0]]), torch.tensor([[0.0, 0.0]]))
    tensor([[ 0.],
            [25.]])
    """
    d = (X * X).sum(1, keepdim=True) - 2.0 * X @ C.T + (C * C).sum(1)  # (N, K)
    return d.clamp_min_(0.0)


def assign(
    X: torch.Tensor, C: torch.Tensor, chunk: int = 65536
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centroid of each row: ``(a, d)`` with ``a`` (N,) int64 and ``d`` (N,) distances².

    Processed in chunks of rows so that the (chunk, K) distance matrix stays small.
    """
    idx, dist = [], []
    for start in range(0, X.shape[0], chunk):
        d, a = sq_distances(X[start : start + chunk], C).min(1)
        idx.append(a)
        dist.append(d)
    return torch.cat(idx), torch.cat(dist)


def kmeans_plusplus(X: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: ``k`` rows of ``X`` drawn with probability ∝ D(x)²; returns (k, D)."""
    n = X.shape[0]
    first = int(torch.randint(n, (1,), generator=generator))
    C = X[first : first + 1].clone()
    d = sq_distances(X, C)[:, 0]  # (N,) distance² to the nearest chosen centroid
    for _ in range(1, k):
        probs = d.double().cpu() if float(d.sum()) > 0 else torch.ones(n, dtype=torch.float64)
        nxt = int(torch.multinomial(probs, 1, generator=generator))
        C = torch.cat([C, X[nxt : nxt + 1]])
        d = torch.minimum(d, sq_distances(X, X[nxt : nxt + 1])[:, 0])
    return C


def _lloyd(X: torch.Tensor, C: torch.Tensor, iters: int, tol: float) -> tuple[torch.Tensor, float]:
    """Run Lloyd iterations from centroids ``C``; return (centroids, inertia)."""
    k = C.shape[0]
    prev = float("inf")
    for _ in range(iters):
        a, d = assign(X, C)
        inertia = float(d.sum())
        sums = torch.zeros_like(C).index_add_(0, a, X)  # (K, D)
        counts = torch.bincount(a, minlength=k).to(X.dtype)  # (K,)
        empty = counts == 0
        C = sums / counts.clamp_min(1).unsqueeze(1)
        if empty.any():  # move each empty centroid onto a badly served vector
            worst = d.topk(int(empty.sum())).indices
            C[empty] = X[worst]
        if prev - inertia <= tol * max(inertia, 1e-30):
            break
        prev = inertia
    a, d = assign(X, C)
    return C, float(d.sum())


@torch.no_grad()
def kmeans(
    X: torch.Tensor, k: int, iters: int = 100, n_init: int = 1, tol: float = 1e-6, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Cluster the rows of ``X`` into ``k`` centroids with k-means++ and Lloyd's algorithm.

    Args:
        X: (N, D) floating data, on any device.
        k: number of centroids, ``1 <= k <= N``.
        iters: maximum Lloyd iterations per restart.
        n_init: restarts from different seedings; the lowest inertia wins.
        tol: stop when the relative inertia decrease falls below ``tol``.
        seed: seed of the k-means++ draws (a CPU generator, so results repeat on any device).

    Returns:
        ``(C, a, inertia)``: centroids (k, D), assignments (N,), and ``Σ ‖x_n − c_{a_n}‖²``.

    Example (two obvious clusters):
        >>> X = torch.tensor([[0.0], [0.2], [10.0], [10.2]])
        >>> C, a, inertia = kmeans(X, 2)
        >>> sorted(round(c, 3) for c in C[:, 0].tolist()), round(inertia, 4)
        ([0.1, 10.1], 0.04)
    """
    X = check_data(X)
    k = check_positive_int(k, "k")
    if k > X.shape[0]:
        raise ValueError(f"k must be <= the number of vectors {X.shape[0]}, got {k}")
    check_positive_int(n_init, "n_init")
    gen = torch.Generator().manual_seed(seed)
    best_C, best = None, float("inf")
    for _ in range(n_init):
        C, inertia = _lloyd(X, kmeans_plusplus(X, k, gen), iters, tol)
        if inertia < best:
            best_C, best = C, inertia
    a, _ = assign(X, best_C)
    return best_C, a, best


class KMeansVQ(VectorQuantizer):
    """Plain (full-search) VQ: one codebook of ``K`` centroids in ``R^D``; code = one index.

    Cost per vector: ``log2(K)`` bits; encoding searches all ``K`` centroids, which is what
    product and residual quantization avoid for large codes.

    >>> vq = KMeansVQ(2).fit(torch.tensor([[0.0, 0.0], [0.0, 1.0], [9.0, 9.0], [9.0, 8.0]]))
    >>> vq.code_bits, vq.decode(vq.encode(torch.tensor([[0.1, 0.4]]))).tolist()
    (1.0, [[0.0, 0.5]])
    """

    def __init__(self, codebook_size: int, iters: int = 100, n_init: int = 1, seed: int = 0):
        self.codebook_size = check_positive_int(codebook_size, "codebook_size")
        self.num_codebooks = 1
        self.iters, self.n_init, self.seed = iters, n_init, seed
        self.codebook: torch.Tensor | None = None

    @torch.no_grad()
    def fit(self, X: torch.Tensor) -> KMeansVQ:
        """Run :func:`kmeans` on ``X`` (N, D)."""
        X = check_data(X)
        self.codebook, _, self.inertia_ = kmeans(
            X, self.codebook_size, self.iters, self.n_init, seed=self.seed
        )
        self.dim = X.shape[1]
        return self

    def _encode(self, X: torch.Tensor) -> torch.Tensor:
        return assign(X, self.codebook)[0].unsqueeze(1)  # (N, 1)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.codebook[codes[:, 0]]  # (N, D)
