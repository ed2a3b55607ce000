"""One-bit weights: BinaryConnect, XNOR-Net and ABC-Net.

* **BinaryConnect** (Courbariaux et al., 2015): ``w_b = sign(w)`` in the forward pass, a
  float latent ``w`` kept for the updates and clipped to ``[−1, 1]`` after each step; the
  gradient is the clipped STE ``∂w_b/∂w = 1[|w| ≤ 1]`` (the derivative of hard-tanh).
* **XNOR-Net** (Rastegari et al., 2016): a scale per output filter,
  ``W ≈ α · sign(W)`` with ``α = mean|W|`` (the least-squares optimum, the paper's eq. 6);
  activations may be binarized too (``sign(x)``, with the clipped STE).
* **ABC-Net** (Lin et al., 2017): ``M`` binary bases,
  ``W ≈ Σ_i α_i B_i``, ``B_i = sign(W − mean(W) + u_i·std(W))`` with shifts
  ``u_i`` spread over ``[−1, 1]``, and ``α`` the least-squares solution of
  ``min_α ‖vec(W) − A α‖²`` (``A = [vec(B_1), …, vec(B_M)]``), eq. 3–4. Gradients pass
  straight through to ``W``.

``sign(0) = +1`` throughout (a binary code has no zero).

Glossary: ``w`` latent float weight, ``w_b`` binary weight, ``α`` scales, ``B_i`` binary
bases, ``u_i`` shifts, ``M`` number of bases.
"""

from __future__ import annotations

import torch
from torch import nn

from inwhale.core.checks import check_tensor

__all__ = ["ABCWeight", "BinaryActivation", "BinaryConnectWeight", "XNORWeight", "abc_bases",
           "clip_latent_", "sign_ste"]


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= 1).to(g.dtype)


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """``sign(x)`` (with ``sign(0) = 1``), gradient ``1[|x| ≤ 1]`` (clipped STE).

    >>> x = torch.tensor([-2.0, -0.5, 0.0, 3.0], requires_grad=True)
    >>> y = sign_ste(x); y.sum().backward(); y.tolist(), x.grad.tolist()
    ([-1.0, -1.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0])
    """
    return _SignSTE.apply(check_tensor(x, "x", allow_empty=True))  # sign(NaN) would be -1


class BinaryConnectWeight(nn.Module):
    """``w_b = sign(w)``; pair with :func:`clip_latent_` after every optimizer step."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return sign_ste(w)


class XNORWeight(nn.Module):
    """``W ≈ α_c · sign(W_c)``, ``α_c = mean|W_c|`` per output channel ``c``.

    >>> XNORWeight()(torch.tensor([[1.0, -3.0], [0.5, 0.5]])).tolist()
    [[2.0, -2.0], [0.5, 0.5]]
    """

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        check_tensor(w, "w")
        if w.ndim == 0:
            raise ValueError("w must be at least 1-D (one scale per output channel, dim 0)")
        alpha = w.abs().reshape(w.shape[0], -1).mean(1).view(-1, *([1] * (w.ndim - 1)))
        return alpha * sign_ste(w)


class BinaryActivation(nn.Module):
    """``sign(x)`` with the clipped STE (XNOR-Net's binary inputs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sign_ste(x)


def abc_bases(w: torch.Tensor, M: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ABC-Net bases ``B`` (M, *w.shape) and least-squares scales ``α`` (M,)."""
    if not isinstance(M, int) or isinstance(M, bool) or M < 1:
        raise ValueError(f"M must be an int >= 1, got {M!r}")
    w = check_tensor(w, "w").detach()
    u = torch.linspace(-1, 1, M, device=w.device) if M > 1 else torch.zeros(1, device=w.device)
    mu, sd = w.mean(), w.std() if w.numel() > 1 else torch.tensor(0.0)
    B = torch.stack([torch.where(w - mu + ui * sd >= 0, 1.0, -1.0) for ui in u])  # (M, ...)
    A = B.reshape(M, -1).T.double()  # (numel, M)
    alpha = torch.linalg.lstsq(A, w.reshape(-1, 1).double()).solution.reshape(M)
    return B.to(w.dtype), alpha.to(w.dtype)


class ABCWeight(nn.Module):
    """``W ≈ Σ_i α_i B_i`` with ``M`` binary bases; straight-through gradient to ``W``."""

    def __init__(self, M: int = 3) -> None:
        super().__init__()
        if not isinstance(M, int) or isinstance(M, bool) or M < 1:
            raise ValueError(f"M must be an int >= 1, got {M!r}")
        self.M = M

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        B, alpha = abc_bases(w, self.M)
        w_hat = (alpha.view(-1, *([1] * w.ndim)) * B).sum(0)
        return w + (w_hat - w).detach()


@torch.no_grad()
def clip_latent_(model: nn.Module, bound: float = 1.0) -> None:
    """Clip every latent weight that a binary quantizer reads to ``[−bound, bound]``."""
    for m in model.modules():
        if isinstance(getattr(m, "weight_fq", None), BinaryConnectWeight | XNORWeight):
            m.weight.clamp_(-bound, bound)
