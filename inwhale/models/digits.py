"""Small real networks for scikit-learn's 8 x 8 digits, trained in seconds on a CPU.

* :func:`digits_mlp` — 64 → 64 → 32 → 10 with ReLUs (an ``nn.Sequential``);
* :func:`digits_cnn` — two 3x3 conv + batch-norm + ReLU + 2x2 max-pool stages, then a linear
  classifier (an ``nn.Sequential``; fold the batch norms before integer inference);
* :class:`DigitsTransformer` — a one-block transformer encoder that reads an image as a
  sequence of 8 tokens (its rows) of 8 features, with identity hooks (``q_fq``, ``k_fq``,
  ``v_fq``, ``p_fq``) where fake quantizers for the attention matmuls can be plugged in.

:func:`train_classifier` is deterministic for a given seed (CPU, fixed shuffles), and
:func:`accuracy` scores a model. Inputs are images ``(N, 8, 8)`` with pixels in ``[0, 1]``
from :func:`inwhale.data.images.digits_split`.

>>> from inwhale.device import seed_everything
>>> seed_everything(0); m = digits_mlp()
>>> m(torch.zeros(2, 8, 8)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DigitsTransformer", "accuracy", "digits_cnn", "digits_mlp", "train_classifier"]


def digits_mlp(hidden: tuple[int, int] = (64, 32)) -> nn.Sequential:
    """``Flatten → Linear(64, h1) → ReLU → Linear(h1, h2) → ReLU → Linear(h2, 10)``."""
    h1, h2 = hidden
    return nn.Sequential(nn.Flatten(), nn.Linear(64, h1), nn.ReLU(), nn.Linear(h1, h2),
                         nn.ReLU(), nn.Linear(h2, 10))


def digits_cnn(channels: tuple[int, int] = (8, 16)) -> nn.Sequential:
    """(N, 8, 8) → (N, 1, 8, 8) → [conv3x3, BN, ReLU, pool2] x 2 → (N, c2·2·2) → Linear → 10."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Unflatten(1, (1, 8)),                                                  # (N, 1, 8, 8)
        nn.Conv2d(1, c1, 3, padding=1), nn.BatchNorm2d(c1), nn.ReLU(), nn.MaxPool2d(2),  # 4x4
        nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2),  # 2x2
        nn.Flatten(), nn.Linear(c2 * 4, 10),
    )


class _Attention(nn.Module):
    """Multi-head self-attention written with plain ``nn.Linear`` so PTQ/QAT can swap them."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        if d % heads:
            raise ValueError(f"d={d} must be divisible by heads={heads}")
        self.h = heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        # hooks for fake quantizers on the matmul operands (identity by default)
        self.q_fq, self.k_fq, self.v_fq, self.p_fq = (nn.Identity() for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d)
        B, T, d = x.shape
        split = lambda t: t.view(B, T, self.h, d // self.h).transpose(1, 2)  # (B, h, T, dh)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        att = self.q_fq(q) @ self.k_fq(k).transpose(-2, -1) / math.sqrt(d // self.h)
        p = self.p_fq(att.softmax(dim=-1))  # (B, h, T, T)
        y = (p @ self.v_fq(v)).transpose(1, 2).reshape(B, T, d)
        return self.o(y)


class DigitsTransformer(nn.Module):
    """A pre-norm transformer encoder over the 8 rows of a digit (8 tokens x 8 pixels).

    Args:
        d: model width. heads: attention heads. layers: encoder blocks.
    """

    def __init__(self, d: int = 32, heads: int = 4, layers: int = 1) -> None:
        super().__init__()
        self.embed = nn.Linear(8, d)
        self.pos = nn.Parameter(torch.zeros(8, d))
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            blk = nn.Module()
            blk.ln1, blk.attn, blk.ln2 = nn.LayerNorm(d), _Attention(d, heads), nn.LayerNorm(d)
            blk.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
            self.blocks.append(blk)
        self.head = nn.Linear(d, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 8, 8) -> (B, 10)
        h = self.embed(x) + self.pos  # (B, T=8, d)
        for blk in self.blocks:
            h = h + blk.attn(blk.ln1(h))
            h = h + blk.mlp(blk.ln2(h))
        return self.head(h.mean(dim=1))


def _device(model: nn.Module) -> torch.device:
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def train_classifier(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = 20,
    lr: float = 1e-2,
    batch_size: int = 64,
    seed: int = 0,
    weight_decay: float = 0.0,
    extra_loss: Callable[[nn.Module], torch.Tensor] | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
) -> list[float]:
    """Train ``model`` in place with Adam and cross-entropy; return the loss of each epoch.

    Deterministic: the shuffles come from a generator seeded with ``seed``. ``extra_loss``
    adds a regularizer (e.g. kurtosis), ``after_step`` runs after every optimizer step
    (e.g. to clip latent weights, as BinaryConnect does).

    Raises:
        ValueError: ``X`` and ``y`` differ in length, or ``epochs < 1``.
    """
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    dev = _device(model)
    X, y = X.to(dev), y.to(dev)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr,
                           weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    history = []
    model.train()
    for _ in range(epochs):
        perm, total = torch.randperm(len(X), generator=gen).to(dev), 0.0
        for i in range(0, len(X), batch_size):
            idx = perm[i:i + batch_size]
            loss = F.cross_entropy(model(X[idx]), y[idx])
            if extra_loss is not None:
                loss = loss + extra_loss(model)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step(model)
            total += float(loss.detach()) * len(idx)
        sched.step()
        history.append(total / len(X))
    model.eval()
    return history


@torch.no_grad()
def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``X`` classified as ``y`` (model put in eval mode)."""
    model.eval()
    dev = _device(model)
    return float((model(X.to(dev)).argmax(dim=-1) == y.to(dev)).float().mean())
