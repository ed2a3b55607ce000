"""quantize → dequantize: the affine map between real tensors and integer codes.

    q  = clamp(R(x · s⁻¹) + z, q_min, q_max)        (quantize)
    x̂  = s · (q − z)                                 (dequantize)
    fake_quantize(x) = dequantize(quantize(x))       (the "simulated" quantizer)

``R`` is a rounding rule (default: round half to even, ``torch.round``) from
:mod:`inwhale.rounding`; ``s`` and ``z`` come from :mod:`inwhale.core.qparams`.

Two details make these agree bit for bit with PyTorch's fake-quantization kernels
(``torch.fake_quantize_per_tensor_affine``, ``torch.fake_quantize_per_channel_affine``):

1. We multiply by the float32 reciprocal ``s⁻¹ = 1/s`` instead of dividing by ``s``.
   ``x·(1/s)`` and ``x/s`` can differ in the last bit, which changes the result exactly
   when ``x/s`` lies next to a rounding tie.
2. An integer zero point is added *after* rounding. With ties-to-even,
   ``R(2.5) + 1 = 3`` but ``R(2.5 + 1) = 4``. (A ``QParams`` in the ``"float"``
   ``zero_point_domain`` — HQQ, mid-rise — adds its real-valued ``z`` before rounding.)

``torch.quantize_per_tensor`` (FBGEMM on x86) differs at exactly one kind of input: it
evaluates ``x·s⁻¹ + z`` as one fused multiply-add and rounds that, so at (near-)ties with a
non-zero zero point its code can be one higher or lower than ours. Everywhere else the codes
are identical (``tests/test_core_reference.py`` checks both statements).

Inputs in float16 / bfloat16 / float32 are computed in float32 (float64 stays float64);
:func:`fake_quantize` returns the input's dtype.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from inwhale.core.checks import check_tensor
from inwhale.core.qparams import QParams

RoundingFn = Callable[[torch.Tensor], torch.Tensor]


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _check_qparams(qparams: object, xv: torch.Tensor) -> QParams:
    if not isinstance(qparams, QParams):
        raise TypeError(f"qparams must be a QParams, got {type(qparams).__name__}")
    try:
        torch.broadcast_shapes(qparams.scale.shape, xv.shape)
    except RuntimeError as err:
        raise ValueError(
            f"qparams of shape {tuple(qparams.scale.shape)} do not fit this tensor "
            f"({qparams.granularity} view {tuple(xv.shape)}); were they computed for "
            "another tensor?"
        ) from err
    return qparams


def _quantize_view(xv: torch.Tensor, qp: QParams, rounding: RoundingFn | None) -> torch.Tensor:
    """Codes, as floats, for a tensor already in the granularity's view.

    Only ``v`` is a new tensor; the remaining steps work in place on it (the default
    rounding uses ``round_``), which keeps this within a small factor of PyTorch's fused
    kernel (see ``benchmarks/``).
    """
    z = qp.zero_point.to(xv.device)
    v = xv * (1.0 / qp.scale.to(device=xv.device, dtype=xv.dtype))  # x · s⁻¹
    before = qp.zero_point_domain == "float"
    if before:  # real-valued offset: added before rounding
        v.add_(z)
    q = v.round_() if rounding is None else rounding(v)  # R(·), ties to even by default
    if not before:  # integer zero point: added after rounding
        q.add_(z)
    return q.clamp_(qp.qmin, qp.qmax)


def _dequantize_view(q: torch.Tensor, qp: QParams) -> torch.Tensor:
    """``s · (q − z)``, computed in place on ``q`` (a temporary owned by the caller)."""
    z, s = qp.zero_point.to(q.device), qp.scale.to(q.device)
    return q.sub_(z).mul_(s.to(q.dtype))


def quantize(
    x: torch.Tensor, qparams: QParams, rounding: RoundingFn | None = None
) -> torch.Tensor:
    """Integer codes ``q = clamp(R(x·s⁻¹) + z, q_min, q_max)`` of ``x``.

    Args:
        x: floating tensor, finite; any shape the granularity accepts. May be empty.
        qparams: from :func:`~inwhale.core.qparams.choose_qparams` or an observer.
        rounding: a rule ``R`` (tensor → integer-valued tensor); default ties-to-even.

    Returns:
        Codes of ``x``'s shape in ``qparams.code_dtype`` (int8 for signed ≤ 8 bits, uint8
        for unsigned ≤ 8 bits, wider for more bits).

    >>> from inwhale.core.qparams import qparams_from_range
    >>> qp = qparams_from_range(-1.0, 1.0, bits=4, symmetric=True, narrow_range=True)
    >>> quantize(torch.tensor([-1.0, -0.2, 0.0, 0.6, 3.0]), qp).tolist()   # s = 1/7
    [-7, -1, 0, 4, 7]
    """
    check_tensor(x, allow_empty=True)
    g = qparams.granularity if isinstance(qparams, QParams) else None
    if x.numel() == 0:
        _check_qparams(qparams, x)
        return torch.empty(x.shape, dtype=qparams.code_dtype, device=x.device)
    xv = g.view(x.to(_compute_dtype(x))) if g is not None else x
    qp = _check_qparams(qparams, xv)
    return g.unview(_quantize_view(xv, qp, rounding), x.shape).to(qp.code_dtype)


def dequantize(
    codes: torch.Tensor, qparams: QParams, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Real values ``x̂ = s·(q − z)`` of integer ``codes``.

    Raises ``TypeError`` for floating codes and ``ValueError`` for codes outside
    ``[q_min, q_max]`` (they cannot have come from :func:`quantize` with these parameters).

    >>> from inwhale.core.qparams import qparams_from_range
    >>> qp = qparams_from_range(-1.0, 1.0, bits=4, symmetric=True, narrow_range=True)
    >>> dequantize(torch.tensor([-7, -1, 0, 4], dtype=torch.int8), qp)
    tensor([-1.0000, -0.1429,  0.0000,  0.5714])
    """
    if not isinstance(codes, torch.Tensor) or codes.is_floating_point() or codes.is_complex():
        raise TypeError("codes must be an integer tensor (the output of quantize)")
    if not isinstance(qparams, QParams):
        raise TypeError(f"qparams must be a QParams, got {type(qparams).__name__}")
    if codes.numel() and (int(codes.min()) < qparams.qmin or int(codes.max()) > qparams.qmax):
        raise ValueError(f"codes must lie in [{qparams.qmin}, {qparams.qmax}]")
    g = qparams.granularity
    cv = g.view(codes.to(_compute_dtype(torch.empty(0, dtype=dtype))))
    _check_qparams(qparams, cv)
    return g.unview(_dequantize_view(cv, qparams), codes.shape).to(dtype)


def fake_quantize(
    x: torch.Tensor, qparams: QParams, rounding: RoundingFn | None = None
) -> torch.Tensor:
    """Quantize then dequantize: ``x̂ = s·(clamp(R(x·s⁻¹) + z, q_min, q_max) − z)``.

    The result has ``x``'s dtype and shape and holds only values the integer grid can
    represent; ``x − x̂`` is the quantization error. Idempotent:
    ``fake_quantize(fake_quantize(x)) == fake_quantize(x)``.

    >>> from inwhale.core.qparams import qparams_from_range
    >>> qp = qparams_from_range(0.0, 1.0, bits=2, signed=False)      # levels 0, ⅓, ⅔, 1
    >>> fake_quantize(torch.tensor([0.1, 0.2, 0.5, 0.9, 1.5]), qp)
    tensor([0.0000, 0.3333, 0.6667, 1.0000, 1.0000])
    """
    check_tensor(x, allow_empty=True)
    if x.numel() == 0:
        return x.clone()
    if not isinstance(qparams, QParams):
        raise TypeError(f"qparams must be a QParams, got {type(qparams).__name__}")
    g = qparams.granularity
    xv = g.view(x.to(_compute_dtype(x)))
    qp = _check_qparams(qparams, xv)
    xhat = _dequantize_view(_quantize_view(xv, qp, rounding), qp)
    return g.unview(xhat, x.shape).to(x.dtype)


def fake_quantize_view(
    xv: torch.Tensor, qparams: QParams, rounding: RoundingFn | None = None
) -> torch.Tensor:
    """:func:`fake_quantize` without checks, for hot loops (GPTQ's column loop).

    ``xv`` must already be float32/float64, finite, and shaped so that ``qparams.scale``
    broadcasts against it (e.g. a column ``(O, 1)`` with per-row parameters ``(O, 1)``); it
    is not modified. The arithmetic is exactly :func:`fake_quantize`'s (same reciprocal,
    same zero-point rule, same clamp), so the two agree bit for bit — only the input
    validation and the granularity view are skipped.

    >>> from inwhale.core.qparams import qparams_from_range
    >>> qp = qparams_from_range(0.0, 1.0, bits=2, signed=False)
    >>> x = torch.tensor([0.1, 0.2, 0.5, 0.9, 1.5])
    >>> torch.equal(fake_quantize_view(x, qp), fake_quantize(x, qp))
    True
    """
    return _dequantize_view(_quantize_view(xv, qparams, rounding), qparams)


__all__ = ["dequantize", "fake_quantize", "fake_quantize_view", "quantize"]
