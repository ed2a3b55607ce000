"""Fake quantization you can train through: straight-through estimators (STE).

Quantization ``x̂ = s·(clamp(R(x·s⁻¹) + z, q_min, q_max) − z)`` has zero derivative almost
everywhere (``R`` is a staircase), so backpropagation through it stops. The
**straight-through estimator** (Bengio et al., 2013; Hinton's lectures) replaces the
derivative of the rounding ``R`` by 1 in the backward pass and keeps the forward pass exact:

    forward:   R(v)                 backward:  ∂R/∂v := 1

Two flavours for the gradient with respect to the input ``x``:

* **clipped STE** (the default, used by LSQ, PACT, PyTorch's FakeQuantize):
  ``∂x̂/∂x = 1`` if ``q_min ≤ R(x·s⁻¹) + z ≤ q_max`` and ``0`` outside — a value that is
  clipped gets no gradient, because moving it a little does not change the output;
* **identity STE** (BinaryConnect's "no-clip" variant, the simplest form):
  ``∂x̂/∂x = 1`` everywhere.

Because only ``R`` is replaced, autograd still differentiates the rest of the formula, so
with a scale that requires grad we get LSQ's step-size gradient for free (Esser et al., 2020):

    ∂x̂/∂s = R(x/s) − x/s   inside the range,    q_min − z  or  q_max − z   when clipped.

Glossary: ``x`` input, ``s`` scale (step), ``z`` zero point (integer code of 0.0),
``q_min, q_max`` code range, ``R`` rounding rule, ``x̂`` fake-quantized output.

The forward pass is the core's :func:`inwhale.fake_quantize` bit for bit (the same
``x·s⁻¹`` reciprocal, the zero point added after rounding); the tests check it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from inwhale.core.checks import check_bits, check_tensor
from inwhale.core.granularity import Granularity, PerTensor
from inwhale.core.qparams import QParams
from inwhale.observers import MinMaxObserver, MovingAverageMinMaxObserver
from inwhale.observers.base import Observer

__all__ = [
    "FakeQuantize",
    "fake_quantize_ste",
    "fake_quantize_ste_qp",
    "grad_scale",
    "round_ste",
]

STE_KINDS = ("clipped", "identity")


class _RoundSTE(torch.autograd.Function):
    """``torch.round`` forward (ties to even), identity backward."""

    @staticmethod
    def forward(ctx, v: torch.Tensor) -> torch.Tensor:
        return torch.round(v)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        return g


def _check_float(t: object, name: str) -> torch.Tensor:
    """A floating tensor (element-wise STE primitives: NaN in, NaN out, as ``torch.round``)."""
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        got = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {got}")
    return t


def round_ste(v: torch.Tensor) -> torch.Tensor:
    """Round to nearest (ties to even) with the straight-through gradient ``∂R/∂v = 1``.

    >>> v = torch.tensor([0.4, 1.5, 2.5], requires_grad=True)
    >>> y = round_ste(v); y.sum().backward()
    >>> y.tolist(), v.grad.tolist()
    ([0.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    """
    return _RoundSTE.apply(_check_float(v, "v"))


def grad_scale(t: torch.Tensor, g: float) -> torch.Tensor:
    """Return ``t`` unchanged in the forward pass, with its gradient multiplied by ``g``.

    ``y = t·g + (t − t·g).detach()`` — LSQ's trick to scale a parameter's gradient
    without changing its value.

    >>> s = torch.tensor(2.0, requires_grad=True)
    >>> (grad_scale(s, 0.1) * 3).backward(); s.grad.item()
    0.30000001192092896
    """
    check_tensor(t, "t", allow_empty=True)  # inf would turn into NaN below
    return t * g + (t - t * g).detach()


def fake_quantize_ste(
    x: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor | float,
    qmin: int,
    qmax: int,
    *,
    ste: str = "clipped",
    rounding: Callable[[torch.Tensor], torch.Tensor] | None = None,
    zero_point_domain: str = "int",
) -> torch.Tensor:
    """Differentiable fake quantization ``x̂ = s·(clamp(R(x·s⁻¹) + z, q_min, q_max) − z)``.

    The one place in ``inwhale.nn``/``ptq``/``qat`` where rounding and clamping are written.

    Args:
        x: floating tensor, any shape.
        scale: ``s > 0``, broadcastable against ``x`` (a parameter for learned-step methods).
        zero_point: ``z``, broadcastable against ``x``.
        qmin, qmax: code range.
        ste: ``"clipped"`` (zero gradient for clipped inputs) or ``"identity"``.
        rounding: a rounding rule ``R`` that carries its own gradient; default
            :func:`round_ste`. AdaRound passes ``floor(v) + h(V)``.
        zero_point_domain: ``"int"``: ``z`` is added after rounding (above); ``"float"``:
            before, ``clamp(R(x·s⁻¹ + z))`` — the rule of :class:`~inwhale.core.QParams`
            (HQQ, mid-rise), so this agrees with :func:`inwhale.fake_quantize` bit for bit.

    Returns:
        ``x̂`` with ``x``'s shape and dtype.

    Example (int4 symmetric, s = 0.5): 0.3 → 0.5, 1.1 → 1.0, 9.0 clips to 3.5.

    >>> x = torch.tensor([0.3, 1.1, 9.0], requires_grad=True)
    >>> y = fake_quantize_ste(x, torch.tensor(0.5), 0, -8, 7); y.sum().backward()
    >>> y.tolist(), x.grad.tolist()
    ([0.5, 1.0, 3.5], [1.0, 1.0, 0.0])
    """
    if ste not in STE_KINDS:
        raise ValueError(f"ste must be one of {STE_KINDS}, got {ste!r}")
    if zero_point_domain not in ("int", "float"):
        raise ValueError(f"zero_point_domain must be 'int' or 'float', got {zero_point_domain!r}")
    check_tensor(x, "x", allow_empty=True)  # NaN/inf: an error, not a silent NaN
    R = rounding or round_ste
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32
    s = torch.as_tensor(scale, device=x.device).to(dt)
    z = torch.as_tensor(zero_point, device=x.device).to(dt)
    xin = x.detach() if ste == "identity" else x
    v = xin.to(dt) * (1.0 / s)
    q = R(v + z) if zero_point_domain == "float" else R(v) + z   # z before / after rounding
    q = torch.clamp(q, qmin, qmax)  # codes, as floats
    xhat = ((q - z) * s).to(x.dtype)
    if ste == "identity":  # forward x̂, backward ∂x̂/∂x = 1 (scale gradients kept)
        xhat = xhat + (x - x.detach())
    return xhat


def fake_quantize_ste_qp(x: torch.Tensor, qp: QParams, ste: str = "clipped") -> torch.Tensor:
    """:func:`fake_quantize_ste` with the parameters of a :class:`QParams` (any granularity).

    >>> from inwhale.core.qparams import qparams_from_range
    >>> qp = qparams_from_range(-1.0, 1.0, bits=4, symmetric=True, narrow_range=True)
    >>> fake_quantize_ste_qp(torch.tensor([0.3]), qp)   # 0.3·7 = 2.1 → 2 → 2/7
    tensor([0.2857])
    """
    check_tensor(x, "x", allow_empty=True)
    g = qp.granularity
    xv = g.view(x)
    out = fake_quantize_ste(xv, qp.scale, qp.zero_point, qp.qmin, qp.qmax, ste=ste,
                            zero_point_domain=qp.zero_point_domain)
    return g.unview(out, x.shape)


class FakeQuantize(nn.Module):
    """A fake-quant node for training and calibration: observer → qparams → STE quantizer.

    Three switches, as in PyTorch's ``FakeQuantize``:

    * ``observe`` — record ``x`` in the observer on every forward (calibration / early QAT);
    * ``quantize`` — apply fake quantization (off: the module is the identity);
    * ``dynamic`` — compute qparams from *this* tensor on every call (dynamic quantization)
      instead of from the observer's running statistics.

    :meth:`freeze` turns observation off, so the qparams stay fixed (late QAT, PTQ convert).

    The same observer → qparams → freeze life cycle as
    :class:`inwhale.core.uniform.AffineUniformQuantizer`, and the same core underneath; this
    one is the differentiable ``nn.Module`` form for inside a network (the module docstring
    of :mod:`inwhale.core.uniform` says why both exist).

    Args:
        bits: code width.
        symmetric, signed, narrow_range: passed to ``qparams_from_range``.
        granularity: e.g. ``PerAxis(0)`` for per-output-channel weights.
        observer: an observer instance; default min–max (``moving_average`` for training).
        moving_average: use a moving-average min–max observer (QAT on activations).
        ste: ``"clipped"`` or ``"identity"``.

    >>> fq = FakeQuantize(bits=8)
    >>> _ = fq(torch.tensor([-1.0, 3.0])); round(fq.qparams().scale.item(), 6)
    0.015686
    """

    def __init__(
        self,
        bits: int = 8,
        *,
        symmetric: bool = False,
        signed: bool | None = None,
        narrow_range: bool = False,
        granularity: Granularity | None = None,
        observer: Observer | None = None,
        moving_average: bool = False,
        dynamic: bool = False,
        ste: str = "clipped",
    ) -> None:
        super().__init__()
        if ste not in STE_KINDS:
            raise ValueError(f"ste must be one of {STE_KINDS}, got {ste!r}")
        check_bits(bits)
        self.bits, self.symmetric, self.signed = bits, symmetric, signed
        self.narrow_range, self.dynamic, self.ste = narrow_range, dynamic, ste
        self.granularity = granularity or PerTensor()
        if observer is None:
            cls = MovingAverageMinMaxObserver if moving_average else MinMaxObserver
            observer = cls(granularity=self.granularity)
        self.observer = observer
        self.observe, self.quantize = True, True
        self._frozen: QParams | None = None

    def _qp_kwargs(self) -> dict:
        return dict(bits=self.bits, symmetric=self.symmetric, signed=self.signed,
                    narrow_range=self.narrow_range)

    def qparams(self) -> QParams:
        """Current parameters (frozen ones after :meth:`freeze`)."""
        if self._frozen is not None:  # the buffers follow .to() and live in the state_dict
            return dataclasses.replace(self._frozen, scale=self.frozen_scale,
                                       zero_point=self.frozen_zero_point)
        return self.observer.calculate_qparams(**self._qp_kwargs())

    def freeze(self) -> FakeQuantize:
        """Stop observing and fix the qparams; returns ``self``.

        The fixed scale and zero point become the buffers ``frozen_scale`` and
        ``frozen_zero_point``: they move with ``.to(device)`` and are saved in ``state_dict``.
        """
        self.observe = False
        if not self.dynamic:
            qp = self.qparams()
            self._frozen = qp
            self.register_buffer("frozen_scale", qp.scale.detach().clone())
            self.register_buffer("frozen_zero_point", qp.zero_point.detach().clone())
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Observe (if on), then fake-quantize (if on)."""
        check_tensor(x, "x")
        if self.dynamic:
            from inwhale.core.qparams import choose_qparams

            qp = choose_qparams(x.detach(), granularity=self.granularity, **self._qp_kwargs())
            return fake_quantize_ste_qp(x, qp, self.ste) if self.quantize else x
        if self.observe:
            self.observer(x.detach())
        if not self.quantize:
            return x
        return fake_quantize_ste_qp(x, self.qparams(), self.ste)

    def extra_repr(self) -> str:
        mode = "dynamic" if self.dynamic else ("observing" if self.observe else "frozen")
        return (f"bits={self.bits}, symmetric={self.symmetric}, {self.granularity}, {mode}, "
                f"ste={self.ste}")
