"""Integer-only inference (Jacob et al., 2018): int8 codes in, int32 accumulation, int8 out.

With real values written as ``r = s·(q − z)`` for input ``x``, weight ``w`` (symmetric,
``z_w = 0``, one scale per output channel ``c``) and output ``y``, a linear layer
``y_c = Σ_k w_ck x_k + b_c`` becomes (the paper's eqs. 4–7)

    q_y,c = z_y + M_c · ( Σ_k q_w,ck (q_x,k − z_x) + q_b,c ),     M_c = s_x s_w,c / s_y

where the sum is an **int32 accumulator** and the bias is stored as int32 with scale
``s_x s_w,c`` (``q_b,c = round(b_c / (s_x s_w,c))``, ``z_b = 0``). The only non-integer
left is the real multiplier ``M_c``, which is written as a **fixed-point number**

    M = M0 · 2^(−n),     M0 ∈ [2^30, 2^31) an int32,  n ≥ 1 an integer shift,

so that ``M·acc`` is an integer multiply and a rounding right shift:

    round(acc · M) = (acc · M0 + 2^(n−1)) >> n          (exact, in int64; ties round up).

(gemmlowp splits this into a "saturating rounding doubling high multiply" and a rounding
shift — two roundings; one rounding of the exact product is simpler and equally
integer-only.) A ReLU that follows is the clamp ``q_y ≥ z_y``; max-pooling acts on codes
directly, because quantization is monotone.

Glossary: ``q`` integer codes, ``s`` scales, ``z`` zero points, ``acc`` the int32
accumulator, ``M`` the real requantization multiplier, ``M0, n`` its fixed-point form.

The int32 accumulations are computed exactly in float64 (products of 8-bit codes summed
over far fewer than 2^21 terms stay far below 2^53), which works on every device; the
result is checked to fit int32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from inwhale.core.affine import dequantize, quantize
from inwhale.core.granularity import PerTensor
from inwhale.core.qparams import QParams
from inwhale.nn.fake_quant import FakeQuantize
from inwhale.nn.modules import QuantConv2d, QuantLinear

__all__ = [
    "IntegerConv2d",
    "IntegerLinear",
    "IntegerSequential",
    "fixed_point_multiply",
    "integerize",
    "quantize_multiplier",
]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def quantize_multiplier(M: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed-point form ``M ≈ M0 · 2^(−n)`` with ``M0 ∈ [2^30, 2^31)`` (int64 tensors).

    ``M = f·2^e`` with ``f ∈ [½, 1)`` (frexp); ``M0 = round(f·2^31)``, ``n = 31 − e``
    (if rounding reaches 2^31, halve it and decrease ``n``). Relative error ≤ 2^−31.

    >>> M0, n = quantize_multiplier(0.3)
    >>> int(M0), int(n), int(M0) / 2 ** int(n)
    (1288490189, 32, 0.30000000004656613)

    Raises:
        ValueError: ``M`` not positive and finite, or so small/large that ``n ∉ [1, 62]``.
    """
    M = torch.as_tensor(M, dtype=torch.float64)
    if not bool(torch.isfinite(M).all()) or bool((M <= 0).any()):
        raise ValueError("M must be positive and finite")
    f, e = torch.frexp(M)  # M = f · 2^e, f in [0.5, 1)
    M0 = torch.round(f * 2.0**31).to(torch.int64)
    n = 31 - e.to(torch.int64)
    full = M0 == 2**31
    M0, n = torch.where(full, M0 // 2, M0), torch.where(full, n - 1, n)
    if bool((n < 1).any()) or bool((n > 62).any()):
        raise ValueError(f"M out of range for a 31-bit multiplier with shift 1..62: {M}")
    return M0, n


def fixed_point_multiply(acc: torch.Tensor, M0: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """``round(acc · M0 · 2^(−n))`` with integers only: ``(acc·M0 + 2^(n−1)) >> n``.

    ``acc`` is an int32-range integer tensor; ``M0, n`` broadcast against it (e.g. one per
    output channel). Ties round towards +∞. Returns int64.

    >>> M0, n = quantize_multiplier(0.25)
    >>> fixed_point_multiply(torch.tensor([-6, -2, 2, 5, 6]), M0, n).tolist()  # ×¼: -1.5,…
    [-1, 0, 1, 1, 2]
    """
    if acc.is_floating_point():
        raise TypeError("acc must be an integer tensor")
    acc = acc.to(torch.int64)
    if acc.numel() and (int(acc.min()) < INT32_MIN or int(acc.max()) > INT32_MAX):
        raise ValueError("acc must lie in the int32 range")
    M0, n = M0.to(acc.device), n.to(acc.device)
    half = torch.bitwise_left_shift(torch.ones_like(n), n - 1)
    return torch.bitwise_right_shift(acc * M0 + half, n)  # arithmetic shift = floor


def _per_tensor(qp: QParams, what: str) -> QParams:
    if not isinstance(qp.granularity, PerTensor) or qp.scale.numel() != 1:
        raise ValueError(f"{what} must be per-tensor for integer inference")
    if qp.zero_point_domain != "int":
        raise ValueError(f"{what} must have an integer zero point")
    return qp


class _IntegerLayer(nn.Module):
    """Shared state: integer weight codes, int32 bias, multipliers, in/out qparams."""

    def __init__(self, qlayer: QuantLinear | QuantConv2d, out_qp: QParams | None,
                 relu: bool) -> None:
        super().__init__()
        if not isinstance(qlayer.weight_fq, FakeQuantize) or not isinstance(
                qlayer.act_fq, FakeQuantize):
            raise ValueError("the layer needs frozen weight and input FakeQuantize nodes "
                             "(static PTQ: prepare, calibrate, convert)")
        w_qp, self.in_qp = qlayer.weight_fq.qparams(), _per_tensor(qlayer.act_fq.qparams(),
                                                                  "the input quantizer")
        if bool((w_qp.zero_point != 0).any()):
            raise ValueError("integer inference expects symmetric weights (zero point 0)")
        self.out_qp, self.relu = (None if out_qp is None else _per_tensor(out_qp, "out_qp")), relu
        with torch.no_grad():
            self.register_buffer("w_codes", quantize(qlayer.weight, w_qp))  # int8
            dev = qlayer.weight.device  # every buffer lives where the layer lives
            s_w = w_qp.scale.reshape(-1).double().to(dev) * torch.ones(
                qlayer.weight.shape[0], dtype=torch.float64, device=dev)
            self.register_buffer("acc_scale", s_w * self.in_qp.scale.double().to(dev))  # s_x s_w,c
            b = qlayer.bias if qlayer.bias is not None else torch.zeros(len(s_w), device=dev)
            bias_q = torch.round(b.double() / self.acc_scale)
            if bias_q.abs().max() >= 2.0**31:
                raise OverflowError("the bias does not fit int32 at scale s_x·s_w")
            self.register_buffer("bias_q", bias_q.to(torch.int32))
            if self.out_qp is not None:
                M = self.acc_scale / self.out_qp.scale.double().to(dev)
                M0, n = quantize_multiplier(M)
                self.register_buffer("M0", M0)
                self.register_buffer("n", n)

    def _matmul(self, xz: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def accumulate(self, q_x: torch.Tensor) -> torch.Tensor:
        """The int32 accumulator ``Σ q_w (q_x − z_x) + q_b`` (as int64), channel dim 1 / −1."""
        xz = q_x.double() - float(self.in_qp.zero_point)
        acc = self._matmul(xz)
        if acc.abs().max() >= 2.0**31:
            raise OverflowError("int32 accumulator overflow")
        return acc.round().long()

    def forward(self, q_x: torch.Tensor) -> torch.Tensor:
        """Integer codes in, integer codes out (or float if the layer has no ``out_qp``)."""
        acc = self.accumulate(q_x)
        if self.out_qp is None:  # the last layer: dequantize the accumulator
            return (acc.double() * self._bshape(self.acc_scale)).float()  # s_x s_w · acc
        y = self.out_qp.zero_point.long() + fixed_point_multiply(
            acc, self._bshape(self.M0), self._bshape(self.n))
        lo = int(self.out_qp.zero_point) if self.relu else self.out_qp.qmin
        return y.clamp(max(lo, self.out_qp.qmin), self.out_qp.qmax).to(self.out_qp.code_dtype)


class IntegerLinear(_IntegerLayer):
    """Integer-only ``Linear``: codes (..., I) → codes (..., O). Build with ``integerize``."""

    def _bshape(self, t: torch.Tensor) -> torch.Tensor:
        return t  # channels last

    def _matmul(self, xz: torch.Tensor) -> torch.Tensor:
        return xz @ self.w_codes.double().T + self.bias_q.double()


class IntegerConv2d(_IntegerLayer):
    """Integer-only ``Conv2d``: codes (N, C, H, W) → codes (N, O, H', W')."""

    def __init__(self, qconv: QuantConv2d, out_qp: QParams | None, relu: bool) -> None:
        super().__init__(qconv, out_qp, relu)
        self.conv_kw = dict(stride=qconv.stride, padding=qconv.padding,
                            dilation=qconv.dilation, groups=qconv.groups)
        if qconv.padding_mode != "zeros":
            raise ValueError("integer conv supports zero padding only")

    def _bshape(self, t: torch.Tensor) -> torch.Tensor:
        return t.view(-1, 1, 1)  # channels at dim 1 of (N, O, H, W)

    def _matmul(self, xz: torch.Tensor) -> torch.Tensor:
        # zero padding of (q_x − z_x) is padding with the code z_x, i.e. with the real 0.0
        return F.conv2d(xz, self.w_codes.double(), self.bias_q.double(), **self.conv_kw)


class IntegerSequential(nn.Module):
    """Float in → quantize once → integer layers (and pool/flatten on codes) → float out."""

    def __init__(self, in_qp: QParams, ops: list[nn.Module], out_qp: QParams | None) -> None:
        super().__init__()
        self.in_qp, self.ops, self.out_qp = in_qp, nn.ModuleList(ops), out_qp

    def forward_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Output codes (requires ``out_qp``) or the float logits of the last accumulator."""
        q = quantize(x, self.in_qp)
        for op in self.ops:
            q = op(q)
        return q

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Real-valued output: dequantized codes, or the last layer's dequantized accumulator."""
        q = self.forward_codes(x)
        return q if self.out_qp is None else dequantize(q, self.out_qp)


_PASS = (nn.MaxPool2d, nn.Flatten, nn.Unflatten, nn.Identity)


def integerize(model: nn.Sequential, out_qp: QParams | None = None) -> IntegerSequential:
    """Turn a converted static-PTQ ``nn.Sequential`` into an :class:`IntegerSequential`.

    Allowed modules: ``QuantLinear``/``QuantConv2d`` (each followed by an optional ``ReLU``,
    which is fused), ``MaxPool2d``, ``Flatten``, ``Unflatten``, ``Identity``. Each layer's
    output qparams are the *next* quantized layer's input qparams; the last layer uses
    ``out_qp`` or, if ``None``, returns its dequantized accumulator (float logits).

    Raises:
        TypeError: an unsupported module (fold batch norm first).
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential module, got {type(model).__name__}")
    mods = list(model)
    qidx = [i for i, m in enumerate(mods) if isinstance(m, QuantLinear | QuantConv2d)]
    if not qidx:
        raise ValueError("model has no quantized layer")
    ops: list[nn.Module] = []
    for i, m in enumerate(mods):
        if isinstance(m, QuantLinear | QuantConv2d):
            nxt = [j for j in qidx if j > i]
            oq = mods[nxt[0]].act_fq.qparams() if nxt else out_qp
            relu = i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)
            cls = IntegerLinear if isinstance(m, QuantLinear) else IntegerConv2d
            ops.append(cls(m, oq, relu))
        elif isinstance(m, nn.ReLU) and i > 0 and isinstance(mods[i - 1],
                                                              QuantLinear | QuantConv2d):
            continue  # fused into the layer before
        elif isinstance(m, _PASS):
            ops.append(m)
        else:
            raise TypeError(f"integerize cannot run {type(m).__name__} on integer codes "
                            "(fold batch norm first; ReLU must follow a quantized layer)")
    return IntegerSequential(mods[qidx[0]].act_fq.qparams(), ops, out_qp)
