"""BitNet b1.58: ternary weights and 8-bit activations, trained from scratch.

BitNet (Wang et al., 2023) trains a transformer whose linear layers are ``BitLinear``: binary
weights and 8-bit activations from the first step, with the straight-through estimator.
BitNet b1.58 (Ma et al., 2024) adds the zero: every weight is one of ``{−1, 0, +1}``
(log2 3 ≈ 1.58 bits), scaled by one number per weight matrix.

**Weights** (absmean, per tensor; the b1.58 paper's eqs. 1–3):

    γ = mean|W|,      W̃ = RoundClip(W / (γ + ε), −1, 1) ∈ {−1, 0, +1},      Ŵ = (γ + ε)·W̃

with ``RoundClip(v, a, b) = max(a, min(b, round(v)))``. In inwhale's vocabulary this is a
symmetric 2-bit narrow-range grid (codes ``[−1, 1]``, zero point 0) whose range is
``±(γ + ε)`` instead of the min–max ``±max|W|``: :func:`absmean_qparams` asks the core's
:func:`~inwhale.core.qparams.qparams_from_range` for exactly that, so the step is ``γ + ε``.
A weight with ``|w| < (γ + ε)/2`` becomes 0; one beyond ``1.5·(γ + ε)`` is clipped to ±1.

**Activations** (absmax, per token, ``b = 8`` bits):

    s_x = max_j |x_tj| / 127,      x̂_t = s_x · Clip(round(x_t / s_x), −127, 127)

the core's ``choose_qparams(x, bits=8, symmetric=True, narrow_range=True,
granularity=PerToken())``, recomputed for every input (dynamic quantization).

**Layer and gradients.** ``y = Ŵ x̂ + b``. Both quantizers use the identity
straight-through estimator with the scales held constant, as the paper's training code does:

    ∂L/∂W := ∂L/∂Ŵ = Σ_t g_t x̂_tᵀ,        ∂L/∂x_t := ∂L/∂x̂_t = Ŵᵀ g_t

(``g_t = ∂L/∂y_t``). The true derivative of ``Ŵ`` in ``W`` is zero almost everywhere.

The papers train from scratch (the latent float weights start random, not from a trained
float model) and put a normalization (SubLN / RMSNorm) in front of each ``BitLinear``; here
``BitLinear`` is a drop-in for ``nn.Linear`` and any normalization is the model's business.
Nothing in inwhale packs the ternary codes for an integer kernel: this is the training view.

Glossary: ``W`` latent float weight (O, I), ``γ`` mean absolute weight, ``ε`` a small
constant that keeps the step positive, ``W̃`` ternary codes, ``Ŵ`` the weight used in the
forward pass, ``x`` input (..., I) whose last dim is a token's features, ``s_x`` per-token
activation step, ``g`` the gradient arriving at the output.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from inwhale.core.checks import check_bits, check_tensor
from inwhale.core.granularity import PerToken
from inwhale.core.qparams import QParams, qparams_from_range
from inwhale.nn.fake_quant import FakeQuantize, fake_quantize_ste_qp
from inwhale.nn.modules import QuantLinear

__all__ = ["AbsMeanTernaryWeight", "BitLinear", "absmean_qparams", "to_bitnet"]

DEFAULT_EPS = 1e-5
"""``ε`` of the absmean rule (the value the b1.58 training code uses as its floor)."""


def _check_eps(eps: object) -> float:
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not eps > 0:
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    return float(eps)


def absmean_qparams(w: torch.Tensor, eps: float = DEFAULT_EPS) -> QParams:
    """The ternary grid of BitNet b1.58: step ``s = mean|W| + ε``, codes ``{−1, 0, +1}``.

    The one place the absmean scale rule is written. It is the core's symmetric 2-bit
    narrow-range grid over the range ``[−(γ + ε), γ + ε]``, ``γ = mean|W|`` (one step per
    tensor); quantizing with it gives ``RoundClip(W/(γ + ε), −1, 1)``.

    Args:
        w: floating tensor, any shape (a Linear weight is (O, I)); statistics are not tracked
            by autograd (the scale is a constant for the straight-through gradient).
        eps: ``ε > 0``.

    Returns:
        :class:`~inwhale.core.qparams.QParams` with a 0-d ``scale`` ``γ + ε``, zero point 0,
        ``qmin = −1``, ``qmax = 1``, per tensor, ``bits = 2``.

    Raises:
        TypeError: ``w`` is not a floating tensor.
        ValueError: ``w`` is empty or not finite; ``eps`` is not positive.

    Example: ``mean|[0.6, −1.1, 0.05, 0.9, 0, −0.35]| = 3.0/6 = 0.5``.

    >>> qp = absmean_qparams(torch.tensor([[0.6, -1.1, 0.05], [0.9, 0.0, -0.35]]))
    >>> round(qp.scale.item(), 5), qp.zero_point.item(), (qp.qmin, qp.qmax)
    (0.50001, 0, (-1, 1))
    """
    check_tensor(w, "w")
    eps = _check_eps(eps)
    step = w.detach().float().abs().mean() + eps  # γ + ε
    return qparams_from_range(-step, step, bits=2, symmetric=True, narrow_range=True)


class AbsMeanTernaryWeight(nn.Module):
    """BitNet b1.58 weight quantizer ``Ŵ = (γ + ε)·RoundClip(W/(γ + ε), −1, 1)``.

    A ``weight_fq`` for :class:`~inwhale.nn.modules.QuantLinear`; the gradient passes
    straight through (``∂Ŵ/∂W := 1`` everywhere, the scale held constant).

    Args:
        eps: ``ε > 0`` of :func:`absmean_qparams`.

    Worked example (``γ = 0.5``): ``W/γ = [1.2, −2.2, 0.1, 1.8, 0, −0.7]`` rounds to
    ``[1, −2, 0, 2, 0, −1]`` and clips to ``[1, −1, 0, 1, 0, −1]``; times ``γ + ε``:

    >>> w = torch.tensor([[0.6, -1.1, 0.05], [0.9, 0.0, -0.35]])
    >>> (AbsMeanTernaryWeight()(w) / 0.50001).round().tolist()
    [[1.0, -1.0, 0.0], [1.0, 0.0, -1.0]]
    """

    def __init__(self, eps: float = DEFAULT_EPS) -> None:
        super().__init__()
        self.eps = _check_eps(eps)

    def codes(self, w: torch.Tensor) -> torch.Tensor:
        """The ternary codes ``W̃`` (values −1, 0, +1, ``w``'s dtype), without gradient."""
        qp = absmean_qparams(w, self.eps)
        return (self(w.detach()) / qp.scale.to(w.dtype)).round()

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """``Ŵ`` with ``w``'s shape and dtype; identity gradient to ``w``."""
        return fake_quantize_ste_qp(w, absmean_qparams(w, self.eps), ste="identity")

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}"


class BitLinear(QuantLinear):
    """A drop-in ``nn.Linear`` with BitNet b1.58 quantization: ``y = Ŵ x̂ + b``.

    ``Ŵ`` comes from :class:`AbsMeanTernaryWeight` (ternary, absmean step per tensor) and
    ``x̂`` from a dynamic per-token absmax fake quantizer with ``act_bits`` bits (codes
    ``[−(2^(b−1) − 1), 2^(b−1) − 1]``); both pass gradients straight through. Shapes:
    (..., I) → (..., O); the last input dim holds one token's features.

    Args:
        in_features, out_features: as ``nn.Linear`` (positive ints).
        bias: learn an additive bias (kept in floating point).
        act_bits: activation code width, 2..16 (8 in the paper).
        eps: ``ε > 0`` of the weight rule.

    Raises:
        ValueError: a feature count below 1, ``act_bits`` outside 2..16, ``eps <= 0``.
        TypeError: a non-int feature count or ``act_bits``.

    Worked example: with ``W`` as in :class:`AbsMeanTernaryWeight` (``Ŵ ≈ 0.5·[[1, −1, 0],
    [1, 0, −1]]``) and one token ``x = [0.3, −2.54, 1.013]`` (``s_x = 2.54/127 = 0.02``,
    ``x̂ = [0.30, −2.54, 1.02]``), ``y ≈ [0.5·(0.3 + 2.54), 0.5·(0.3 − 1.02)] = [1.42, −0.36]``.

    >>> layer = BitLinear(3, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = layer.weight.copy_(torch.tensor([[0.6, -1.1, 0.05], [0.9, 0.0, -0.35]]))
    >>> [round(v, 3) for v in layer(torch.tensor([[0.3, -2.54, 1.013]]))[0].tolist()]
    [1.42, -0.36]
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 act_bits: int = 8, eps: float = DEFAULT_EPS) -> None:
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, bool) or not isinstance(n, int):
                raise TypeError(f"{name} must be an int, got {type(n).__name__}")
            if n < 1:
                raise ValueError(f"{name} must be >= 1, got {n}")
        check_bits(act_bits, "act_bits")
        if act_bits < 2:
            raise ValueError(f"act_bits must be >= 2 (codes ±1 need two bits), got {act_bits}")
        act_fq = FakeQuantize(act_bits, symmetric=True, narrow_range=True,
                              granularity=PerToken(), dynamic=True, ste="identity")
        super().__init__(in_features, out_features, bias, weight_fq=AbsMeanTernaryWeight(eps),
                         act_fq=act_fq)
        self.act_bits = act_bits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x")
        return super().forward(x)

    @classmethod
    def from_float(cls, linear: nn.Linear, act_bits: int = 8,  # type: ignore[override]
                   eps: float = DEFAULT_EPS) -> BitLinear:
        """A ``BitLinear`` holding a copy of ``linear``'s weight and bias as latent weights."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be nn.Linear, got {type(linear).__name__}")
        q = cls(linear.in_features, linear.out_features, linear.bias is not None,
                act_bits=act_bits, eps=eps).to(linear.weight.device)
        q.load_state_dict(copy.deepcopy(linear.state_dict()), strict=False)
        return q


def to_bitnet(model: nn.Module, *, act_bits: int = 8, eps: float = DEFAULT_EPS,
              skip: tuple[str, ...] = ()) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` (not named in ``skip``) a :class:`BitLinear`.

    Call it on a freshly initialized model and train the copy to follow the papers (from
    scratch); on a trained model it gives the post-training ternary start point instead.
    The original is not modified; other layers (convolutions, norms, embeddings) are kept.

    Args:
        model: any module.
        act_bits, eps: passed to :class:`BitLinear`.
        skip: qualified names of linears to keep in floating point (e.g. ``("head",)``).

    Returns:
        The converted copy.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: ``model`` has no ``nn.Linear`` outside ``skip``.

    >>> m = to_bitnet(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), skip=("2",))
    >>> [type(layer).__name__ for layer in m]
    ['BitLinear', 'ReLU', 'Linear']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if type(model) is nn.Linear:  # the model is one layer
        return BitLinear.from_float(model, act_bits, eps)
    q = copy.deepcopy(model)
    names = [n for n, m in q.named_modules()
             if type(m) is nn.Linear and n not in skip]  # exact type: Quant layers stay
    if not names:
        raise ValueError("model has no nn.Linear to convert (outside skip)")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = q.get_submodule(parent_name)
        setattr(parent, child, BitLinear.from_float(getattr(parent, child), act_bits, eps))
    return q
