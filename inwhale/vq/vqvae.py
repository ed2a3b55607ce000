"""A VQ-VAE codebook: nearest-codeword bottleneck, straight-through gradients, commitment loss.

van den Oord, Vinyals & Kavukcuoglu, "Neural Discrete Representation Learning", NeurIPS 2017.
An encoder outputs vectors ``z_e`` (…, D); each is replaced by its nearest codeword
``z_q = e_k``, ``k = argmin_j ‖z_e − e_j‖²``. ``argmin`` has no gradient, so the decoder's
gradient is copied straight through to the encoder (straight-through estimator, STE):

    z_q_st = z_e + sg[z_q − z_e]        (value z_q, gradient ∂/∂z_e = identity)

and two extra terms train the codebook and keep the encoder close to it (paper eq. 3):

    L = L_rec(x, dec(z_q_st)) + ‖sg[z_e] − z_q‖² + β ‖z_e − sg[z_q]‖²,      β = 0.25,

``sg`` = stop-gradient (``.detach()``). The second term (codebook loss) moves codewords
towards the encoder outputs; the third (commitment loss) stops the encoder outputs from
drifting away from their codewords.

Glossary: ``K`` codewords, ``D`` code dimension, ``β`` commitment weight.
"""

from __future__ import annotations

import torch
from torch import nn

from inwhale.core.checks import check_tensor
from inwhale.vq.base import check_positive_int
from inwhale.vq.kmeans import sq_distances

__all__ = ["TinyVQVAE", "VQCodebook", "train_vqvae"]


class VQCodebook(nn.Module):
    """The quantizing bottleneck: ``forward(z_e) -> (z_q_st, codes, vq_loss)``.

    Args:
        num_codes: ``K``. dim: ``D`` (the last axis of ``z_e``). beta: commitment weight ``β``.

    Shapes: ``z_e`` (…, D) → ``z_q_st`` (…, D), ``codes`` (…) int64, ``vq_loss`` scalar.

    >>> cb = VQCodebook(4, 2); _ = cb.embedding.data.copy_(torch.eye(4, 2))
    >>> z_q, codes, loss = cb(torch.tensor([[0.9, 0.1]]))
    >>> z_q.tolist(), codes.tolist(), round(loss.item(), 4)   # (1 + 0.25) · mean((0.1, 0.1)²)
    ([[1.0, 0.0]], [0], 0.0125)
    """

    def __init__(self, num_codes: int, dim: int, beta: float = 0.25):
        super().__init__()
        check_positive_int(num_codes, "num_codes")
        check_positive_int(dim, "dim")
        self.embedding = nn.Parameter(
            torch.empty(num_codes, dim).uniform_(-1 / num_codes, 1 / num_codes)
        )
        self.beta = beta

    def forward(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        check_tensor(z_e, "z_e")
        if z_e.ndim == 0 or z_e.shape[-1] != self.embedding.shape[1]:
            raise ValueError(f"z_e must have shape (..., {self.embedding.shape[1]}) (the code "
                             f"dimension), got {tuple(z_e.shape)}")
        z_e = z_e.to(self.embedding.dtype)
        flat = z_e.reshape(-1, z_e.shape[-1])  # (B, D)
        codes = sq_distances(flat.detach(), self.embedding.detach()).argmin(1)  # (B,)
        z_q = self.embedding[codes].reshape(z_e.shape)  # (…, D), differentiable in the codebook
        codebook_loss = ((z_e.detach() - z_q) ** 2).mean()
        commitment_loss = ((z_e - z_q.detach()) ** 2).mean()
        z_q_st = z_e + (z_q - z_e).detach()  # straight-through
        return z_q_st, codes.reshape(z_e.shape[:-1]), codebook_loss + self.beta * commitment_loss


def _check_images(x: object, name: str) -> torch.Tensor:
    """A finite floating batch of grey images ``(B, 1, H, W)`` with ``H, W >= 2``."""
    check_tensor(x, name)
    if x.ndim != 4 or x.shape[1] != 1 or min(x.shape[2:]) < 2:
        raise ValueError(f"{name} must have shape (B, 1, H, W) with H, W >= 2, "
                         f"got {tuple(x.shape)}")
    return x


class TinyVQVAE(nn.Module):
    """A small convolutional VQ-VAE for 8×8 grey images (the digits data set).

    Encoder: 8×8 → (D, 4, 4), i.e. 16 latent vectors per image, each coded by one of ``K``
    codewords (16 · log2 K bits per image). Decoder mirrors the encoder.
    """

    def __init__(self, num_codes: int = 32, dim: int = 8, hidden: int = 16, beta: float = 0.25):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, dim, 2, stride=2)
        )
        self.codebook = VQCodebook(num_codes, dim, beta)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(dim, hidden, 2, stride=2),
            nn.ReLU(),
            nn.Conv2d(hidden, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` (B, 1, 8, 8) → ``(x̂, codes (B, 4, 4), vq_loss)``."""
        _check_images(x, "x")
        x = x.to(self.codebook.embedding.dtype)
        z_e = self.encoder(x).permute(0, 2, 3, 1)  # (B, 4, 4, D)
        z_q, codes, vq_loss = self.codebook(z_e)
        return self.decoder(z_q.permute(0, 3, 1, 2)), codes, vq_loss  # (B, 1, 8, 8)


def train_vqvae(
    model: nn.Module,
    images: torch.Tensor,
    steps: int = 200,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Train ``model`` (modified in place) with Adam on ``images`` (N, 1, H, W).

    Loss = MSE reconstruction + the codebook's ``vq_loss``. Returns one record per step with
    ``rec``, ``vq`` and ``perplexity`` (``exp`` of the entropy of codeword usage in the batch:
    how many codewords are effectively in use).
    """
    check_positive_int(steps, "steps")
    _check_images(images, "images")
    images = images.to(next(model.parameters()).dtype)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        idx = torch.randint(images.shape[0], (batch_size,), generator=gen).to(images.device)
        x = images[idx]
        x_hat, codes, vq_loss = model(x)
        rec = ((x_hat - x) ** 2).mean()
        opt.zero_grad()
        (rec + vq_loss).backward()
        opt.step()
        p = torch.bincount(codes.flatten(), minlength=model.codebook.embedding.shape[0]).double()
        p = p[p > 0] / p.sum()
        history.append(
            {
                "rec": rec.item(),
                "vq": vq_loss.item(),
                "perplexity": float(torch.exp(-(p * p.log()).sum())),
            }
        )
    return history
