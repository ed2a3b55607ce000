"""Error-feedback noise shaping: push quantization noise out of the band you care about.

Spang & Schultheiss (1962); Lipshitz, Vanderkooy & Wannamaker, "Minimally audible noise
shaping", J. Audio Eng. Soc. 39(11), 1991. Before quantizing sample ``n``, subtract a filtered
copy of the past quantization errors:

    v[n] = x[n] − Σ_{k=1..K} h_k e[n−k],     y[n] = Q(v[n]),     e[n] = y[n] − v[n].

Then ``y[n] − x[n] = e[n] − Σ_k h_k e[n−k]``: the output error is the white quantizer error
``e`` filtered by the **noise transfer function**

    NTF(z) = 1 − Σ_k h_k z^{−k}.

First order ``h = (1,)`` gives ``NTF = 1 − z⁻¹`` with ``|NTF(e^{jω})|² = 4 sin²(ω/2)``:
zero at DC, 4 (+6 dB) at Nyquist. Second order ``h = (2, −1)`` gives ``(1 − z⁻¹)²``,
``|NTF|² = 16 sin⁴(ω/2)``. The total noise power *grows* (by ``Σ (NTF coefficients)²``: 2 and
6), but it leaves the low frequencies, where an oversampled signal or the eye/ear lives.

Glossary: ``x`` input, ``v`` quantizer input, ``y`` output, ``e`` quantizer error,
``h`` feedback taps, ``ω`` normalized angular frequency (π = Nyquist).
"""

from __future__ import annotations

import math

import torch

from inwhale.core import QParams
from inwhale.core.checks import check_tensor
from inwhale.signal._scalar import scalar_fake_quantizer

__all__ = ["noise_shaped_quantize", "noise_transfer_function", "shaping_taps"]


def shaping_taps(order: int) -> tuple[float, ...]:
    """Feedback taps ``h`` for ``NTF = (1 − z⁻¹)^order`` (order 0, 1, 2 or 3).

    >>> shaping_taps(1), shaping_taps(2)
    ((1.0,), (2.0, -1.0))
    """
    if order not in (0, 1, 2, 3):
        raise ValueError(f"order must be 0, 1, 2 or 3, got {order}")
    ntf = [(-1) ** k * math.comb(order, k) for k in range(order + 1)]  # (1 − z⁻¹)^order
    return tuple(float(-c) for c in ntf[1:])


def noise_transfer_function(taps: tuple[float, ...], omega: torch.Tensor) -> torch.Tensor:
    """Complex ``NTF(e^{jω}) = 1 − Σ_k h_k e^{−jωk}`` at angular frequencies ``omega``.

    >>> ntf = noise_transfer_function((1.0,), torch.tensor([0.0, math.pi]))
    >>> [round(v, 9) for v in ntf.abs().tolist()]
    [0.0, 2.0]
    """
    omega = check_tensor(omega, "omega", allow_empty=True).double()
    out = torch.ones_like(omega, dtype=torch.complex128)
    for k, h in enumerate(taps, start=1):
        out = out - h * torch.exp(-1j * omega * k)
    return out


def noise_shaped_quantize(x: torch.Tensor, qp: QParams, taps: tuple[float, ...]) -> torch.Tensor:
    """Quantize the 1-D signal ``x`` with error feedback through ``taps``.

    Sequential (each sample depends on earlier errors): a plain Python loop over samples,
    using the core's per-tensor ``qp`` through :func:`scalar_fake_quantizer`.

    Returns ``y`` (same shape, dtype and device as ``x``). With ``taps = ()`` this is plain
    rounding. Overload (``v`` outside the range) clips and the loop can go unstable for high
    orders; leave head-room.

    >>> from inwhale import qparams_from_range
    >>> qp = qparams_from_range(
    ...     torch.tensor(-4.0), torch.tensor(4.0), bits=4, symmetric=True, narrow_range=True)
    >>> x = torch.full((8,), 0.25 * float(qp.scale))            # a quarter step, constant
    >>> (noise_shaped_quantize(x, qp, (1.0,)) / qp.scale).tolist()   # one step in four: mean kept
    [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    """
    check_tensor(x, "x")
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {tuple(x.shape)}")
    fq = scalar_fake_quantizer(qp)
    xs = x.double().cpu().tolist()
    past = [0.0] * len(taps)  # e[n−1], e[n−2], …
    out = []
    for xn in xs:
        v = xn - sum(h * e for h, e in zip(taps, past, strict=True))
        y = fq(v)
        out.append(y)
        if past:
            past = [y - v, *past[:-1]]
    return torch.tensor(out, dtype=x.dtype, device=x.device)
