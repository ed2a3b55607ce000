"""k-means weight sharing (Deep Compression) and a learned lookup-table quantizer.

References: Han, Mao, Dally, "Deep Compression: Compressing Deep Neural Networks with
Pruning, Trained Quantization and Huffman Coding", ICLR 2016 (section 3: weight sharing,
linear centroid initialisation, centroid fine-tuning); Bengio, Léonard, Courville (2013)
for the straight-through estimator.

**Weight sharing.** The ``n`` weights of a layer are clustered into ``L = 2^b`` clusters by
one-dimensional k-means, ``min Σ_i (w_i − c_{k(i)})²``; each weight stores a ``b``-bit
index ``k(i)`` and the layer stores the code book ``c`` (``L`` float32 values):

    storage = n·b + 32·L bits,       compression ratio r = 32·n / (n·b + 32·L)

One-dimensional k-means is Lloyd's algorithm on samples, so :func:`kmeans_share` calls
:func:`inwhale.formats.lloyd_max.lloyd_max_samples`, started as Han et al. recommend from
**linear** initialisation (``L`` points evenly spaced over ``[min w, max w]``), which keeps
centroids for the rare large weights that matter most; ``init="density"`` starts from the
quantiles instead.

**Learned lookup table.** Instead of k-means, treat the table ``c`` as parameters and train
it by gradient descent on any loss, e.g. the layer's *output* error
``‖X Wᵀ − X Ŵᵀ‖²`` on real activations ``X`` rather than the weight error. The forward
pass is ``Ŵ = c[k(W)]`` with ``k`` the nearest entry; gradients are

    ∂L/∂c_j = Σ_{i : k(i) = j} ∂L/∂Ŵ_i          (Han et al.'s centroid fine-tuning)
    ∂L/∂W_i ≈ ∂L/∂Ŵ_i                            (straight-through estimator)

so the table follows the loss while assignments are refreshed every step.

Glossary: ``n`` number of weights, ``b`` bits per index, ``L = 2^b`` clusters, ``c`` code
book (centroids / table), ``k(i)`` the index of weight ``i``, ``X`` layer inputs,
``r`` compression ratio.

>>> s = kmeans_share(torch.tensor([0.0, 0.1, 0.9, 1.0]), bits=1)
>>> s.codebook.tolist(), s.codes.tolist()
([0.05000000074505806, 0.949999988079071], [0, 0, 1, 1])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from inwhale.core.checks import check_bits, check_tensor
from inwhale.formats.codebook import codebook_storage_bits, dequantize_codes, nearest_codes
from inwhale.formats.lloyd_max import lloyd_max_samples


@dataclass
class SharedWeights:
    """Codes (uint8, the weight's shape) and a float32 code book (``L``,)."""

    codes: torch.Tensor
    codebook: torch.Tensor

    def dequantize(self) -> torch.Tensor:
        """``Ŵ = c[k]``."""
        return dequantize_codes(self.codes, self.codebook)

    def storage_bits(self) -> int:
        """``n·b + 32·L`` with ``b = ⌈log₂ L⌉``."""
        return codebook_storage_bits(self.codes.numel(), self.codebook.numel())

    def compression_ratio(self) -> float:
        """``32·n / storage`` against float32 weights."""
        return 32 * self.codes.numel() / self.storage_bits()


def linear_init(w: torch.Tensor, n_levels: int) -> torch.Tensor:
    """``L`` centroids evenly spaced over ``[min w, max w]`` (Han et al.'s linear init)."""
    return torch.linspace(float(w.min()), float(w.max()), n_levels, dtype=torch.float64)


@torch.no_grad()
def kmeans_share(w: torch.Tensor, bits: int, init: str = "linear", tol: float = 1e-8,
                 max_iter: int = 1000) -> SharedWeights:
    """Cluster the weights ``w`` into ``2^bits`` shared values with 1-D k-means.

    Args:
        w: finite floating tensor (all elements share one code book).
        bits: index width ``b`` (1..8).
        init: ``"linear"`` (Han et al.) or ``"density"`` (sample quantiles).
        tol, max_iter: k-means stopping rule.

    Returns:
        :class:`SharedWeights` (its code book is sorted).
    """
    check_tensor(w, "w")
    check_bits(bits)
    if bits > 8:
        raise ValueError(f"bits must be <= 8 for uint8 codes, got {bits}")
    if init not in ("linear", "density"):
        raise ValueError(f"init must be 'linear' or 'density', got {init!r}")
    n_levels = 2**bits
    levels0 = linear_init(w, n_levels).to(w.device) if init == "linear" else None
    res = lloyd_max_samples(w, n_levels, levels0=levels0, tol=tol, max_iter=max_iter)
    codebook = torch.unique(res.levels.float())  # collapsed duplicates (e.g. constant w)
    return SharedWeights(nearest_codes(w.float(), codebook), codebook)


class LearnedLUT(nn.Module):
    """A lookup-table quantizer whose ``L`` entries are trainable parameters.

    ``forward(w)`` returns ``c[k(w)]`` (nearest entry) with gradients to the table
    (scatter-add per entry) and a straight-through gradient to ``w``.

    Args:
        table: initial entries (L,), e.g. a k-means code book or a uniform grid.
    """

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        check_tensor(table, "table")
        if table.ndim != 1 or table.numel() < 2:
            raise ValueError("table must be a 1-D tensor with at least 2 entries")
        self.table = nn.Parameter(table.detach().float().clone())

    def codes(self, w: torch.Tensor) -> torch.Tensor:
        """Index of the nearest table entry for each element (int64, ``w``'s shape)."""
        check_tensor(w, "w")
        t, order = self.table.detach().sort()
        k = torch.bucketize(w.detach().float(), (t[1:] + t[:-1]) / 2)  # sorted position
        return order[k]

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """``Ŵ = c[k(w)] + (w − sg(w))``: the table value, with identity gradient to ``w``."""
        wq = self.table[self.codes(w)]
        return wq + (w - w.detach())


def train_lut(lut: LearnedLUT, loss_fn: Callable[[LearnedLUT], torch.Tensor], steps: int = 200,
              lr: float = 1e-3) -> list[float]:
    """Adam on the table entries for ``steps`` steps; returns the loss per step.

    ``loss_fn(lut)`` builds the loss, e.g.
    ``lambda q: ((x @ (q(w) - w).T) ** 2).mean()`` for the output error of a linear layer.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    opt = torch.optim.Adam(lut.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(lut)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


__all__ = ["LearnedLUT", "SharedWeights", "kmeans_share", "linear_init", "train_lut"]
