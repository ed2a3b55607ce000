"""A scalar (Python float) view of a uniform quantizer, for sample-by-sample feedback loops.

Noise shaping, error diffusion and DPCM quantize one sample at a time inside a loop whose
next input depends on the last error. Calling :func:`inwhale.quantize` on 0-d tensors in
such a loop costs tens of microseconds per sample; these helpers read ``s, z, q_min, q_max``
from a :class:`~inwhale.QParams` (computed by the core, never here) and apply the core's
formulas to Python floats (float64):

    q = clamp(round(x · s⁻¹) + z, q_min, q_max),        x̂ = s · (q − z)

with Python's ``round`` (ties to even, like ``torch.round``). ``tests/test_signal.py`` checks
them against ``inwhale.quantize``/``fake_quantize`` on float64 tensors bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

from inwhale.core import QParams


def scalar_codec(qp: QParams) -> tuple[Callable[[float], int], Callable[[int], float]]:
    """Return ``(quantize, dequantize)`` for a per-tensor ``qp`` with an integer zero point.

    >>> import torch; from inwhale import qparams_from_range
    >>> q, dq = scalar_codec(qparams_from_range(
    ...     torch.tensor(-1.0), torch.tensor(1.0), bits=3, symmetric=True, narrow_range=True))
    >>> q(0.4), dq(q(0.4)), q(-5.0)
    (1, 0.3333333432674408, -3)
    """
    if not isinstance(qp, QParams):
        raise TypeError(f"qp must be a QParams, got {type(qp).__name__}")
    if qp.scale.numel() != 1 or qp.zero_point_domain != "int":
        raise ValueError("qp must be per-tensor with an integer zero point")
    s, z, lo, hi = float(qp.scale.float()), int(qp.zero_point), qp.qmin, qp.qmax
    inv = 1.0 / s

    def quantize(x: float) -> int:
        return min(max(round(x * inv) + z, lo), hi)

    def dequantize(q: int) -> float:
        return s * (q - z)

    return quantize, dequantize


def scalar_fake_quantizer(qp: QParams) -> Callable[[float], float]:
    """Return ``f(x) = dequantize(quantize(x))`` as a Python-float function.

    >>> import torch; from inwhale import qparams_from_range
    >>> qp = qparams_from_range(torch.tensor(0.0), torch.tensor(1.0), bits=1, signed=False)
    >>> f = scalar_fake_quantizer(qp)
    >>> f(0.4), f(0.6), f(7.0)
    (0.0, 1.0, 1.0)
    """
    q, dq = scalar_codec(qp)
    return lambda x: dq(q(x))
