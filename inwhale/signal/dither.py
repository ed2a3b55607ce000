"""Dither: add noise before quantizing so that the error stops depending on the signal.

Schuchman (1964); Lipshitz, Wannamaker & Vanderkooy, "Quantization and Dither: A Theoretical
Survey", J. Audio Eng. Soc. 40(5), 1992. A uniform quantizer ``Q`` with step ``Δ`` is fed
``x + d`` with a random dither ``d`` independent of ``x``:

* **non-subtractive**: output ``y = Q(x + d)``, total error ``ε = y − x``;
* **subtractive**: the receiver knows ``d`` (same seed) and outputs ``y = Q(x + d) − d``.

Dither PDFs: **RPDF** ``d ~ U(−Δ/2, Δ/2)`` (variance ``Δ²/12``) and **TPDF**
``d = d₁ + d₂``, the sum of two independent RPDFs, triangular on ``(−Δ, Δ)`` (variance
``Δ²/6``). The error powers (for a signal that does not overload the quantizer):

    subtractive, RPDF or TPDF:   E[ε²] = Δ²/12,  ε ~ U(−Δ/2, Δ/2) independent of x
    non-subtractive, RPDF:       E[ε²] = Δ²/12 + Δ²/12 = Δ²/6,  mean of ε is 0 for every x,
                                 but its power still depends on x (noise modulation)
    non-subtractive, TPDF:       E[ε²] = Δ²/12 + Δ²/6 = Δ²/4,  first and second moments of ε
                                 independent of x: the choice in audio mastering

Glossary: ``Δ`` step (``qp.scale``), ``d`` dither, ``ε`` total error.
"""

from __future__ import annotations

import torch

from inwhale.core import QParams, fake_quantize
from inwhale.core.checks import check_tensor

__all__ = ["DITHER_KINDS", "dither_noise", "dithered_quantize", "theoretical_error_power"]

DITHER_KINDS = ("none", "rpdf", "tpdf")


def _check_kind(kind: str) -> str:
    if kind not in DITHER_KINDS:
        raise ValueError(f"kind must be one of {DITHER_KINDS}, got {kind!r}")
    return kind


def dither_noise(
    shape: torch.Size | tuple[int, ...],
    step: float,
    kind: str = "tpdf",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draw dither of the given shape: zeros, ``U(−Δ/2, Δ/2)``, or the sum of two of those.

    Drawn on the CPU with ``generator`` (so a seed repeats on every device), then moved.

    >>> d = dither_noise((100_000,), 1.0, "tpdf", torch.Generator().manual_seed(0))
    >>> bool(d.abs().max() < 1.0), round(float(d.var()), 2)     # variance Δ²/6 ≈ 0.167
    (True, 0.17)
    """
    _check_kind(kind)
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step}")
    shape = tuple(shape)
    if any(not isinstance(n, int) or isinstance(n, bool) or n < 0 for n in shape):
        raise ValueError(f"shape must hold non-negative ints, got {shape}")
    if kind == "none":
        return torch.zeros(shape, dtype=dtype, device=device)
    n = 1 if kind == "rpdf" else 2
    u = torch.rand((n, *shape), generator=generator, dtype=dtype) - 0.5  # (n, …) in [−½, ½)
    return (step * u.sum(0)).to(device)


def dithered_quantize(
    x: torch.Tensor,
    qp: QParams,
    kind: str = "tpdf",
    subtractive: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``Q(x + d)`` (non-subtractive) or ``Q(x + d) − d`` (subtractive), with ``Δ = qp.scale``.

    ``qp`` must be per-tensor; the quantizer is :func:`inwhale.fake_quantize`. Leave head-room
    of ``Δ`` (TPDF) or ``Δ/2`` (RPDF) inside the range, or the dither itself clips.

    >>> from inwhale import qparams_from_range
    >>> qp = qparams_from_range(
    ...     torch.tensor(-1.0), torch.tensor(1.0), bits=8, symmetric=True, narrow_range=True)
    >>> x = torch.full((100_000,), 0.3 * float(qp.scale))        # 0.3 steps: plain rounding gives 0
    >>> float(fake_quantize(x, qp).mean() / qp.scale)
    0.0
    >>> y = dithered_quantize(x, qp, "tpdf", generator=torch.Generator().manual_seed(0))
    >>> round(float(y.mean() / qp.scale), 2)                     # dither keeps the mean
    0.3
    """
    check_tensor(x, "x")
    if qp.scale.numel() != 1:
        raise ValueError("qp must be per-tensor (one scale) for dithering")
    d = dither_noise(x.shape, float(qp.scale), kind, generator, x.device, x.dtype)
    y = fake_quantize(x + d, qp)
    return y - d if subtractive else y


def theoretical_error_power(step: float, kind: str, subtractive: bool) -> float:
    """Expected ``E[(y − x)²]`` for the dither schemes above (no overload).

    >>> theoretical_error_power(1.0, "tpdf", subtractive=False)     # Δ²/12 + Δ²/6
    0.25
    """
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step}")
    if _check_kind(kind) == "none":
        raise ValueError("without dither the error power depends on the signal; no formula")
    if subtractive:
        return step**2 / 12
    return step**2 / 12 + (step**2 / 12 if kind == "rpdf" else step**2 / 6)
