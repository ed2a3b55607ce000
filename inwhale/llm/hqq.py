"""HQQ: Half-Quadratic Quantization, a calibration-free optimizer of the zero point.

Reference: H. Badri and A. Shaji, "Half-Quadratic Quantization of Large Machine Learning
Models", Mobius Labs blog / technical report, November 2023
(https://mobiusml.github.io/hqq_blog/), and the authors' ``hqq`` package
(``hqq.core.optimize.optimize_weights_proximal_legacy``).

HQQ needs no data: it fits the quantizer to the weights alone, but with a *sparsity-promoting*
error ``‖W − Ŵ‖_p^p`` with ``p < 1`` (default 0.7), which lets a few large outlier errors go
and fits the bulk of the weights well. With ``Q_z(W) = clamp(round(W/s + z))`` and
``Ŵ = s (Q_z(W) − z)`` (a *float* zero point added before rounding), the problem

    argmin_z  ‖W − s(Q_z(W) − z)‖_p^p                                 (1)

is split (half-quadratic splitting) with an extra variable ``W_e ≈ W − Ŵ`` and a penalty
``β/2 ‖W_e − (W − Ŵ)‖²``, and solved by alternating two closed forms:

    W_e ← shrink_p(W − Ŵ, β)                                          (2)
    z   ← mean_g( Q_z(W) − (W − W_e)/s )                              (3)

where ``shrink_p(x, β) = sign(x) · relu(|x| − |x|^{p−1}/β)`` is the generalized soft-threshold
(the proximal step of ``|·|^p``; for p = 1 it is the ordinary soft threshold at ``1/β``) and
``mean_g`` averages over the elements of a group. ``β`` grows by ``κ`` each iteration
(``β ← κβ``), and the loop stops when the mean absolute error stops decreasing.

Glossary: ``W`` weight (O, I); ``s`` scale, ``z`` float zero point, both (O, G, 1) per group;
``Ŵ`` the dequantized weight; ``W_e`` the auxiliary error variable; ``p`` the lp exponent;
``β`` penalty weight; ``κ`` its growth factor; ``g`` group size.

The scale stays the min–max scale from :func:`inwhale.choose_qparams` (the HQQ default);
only the zero point is optimized. It is stored as a float tensor in the core's
:class:`~inwhale.core.qparams.QParams`, whose float zero point is added before rounding.
"""

from __future__ import annotations

import dataclasses
import time

import torch
from torch import nn

from inwhale.core.affine import fake_quantize, quantize
from inwhale.core.checks import check_tensor
from inwhale.core.granularity import PerAxis, PerGroup
from inwhale.core.qparams import QParams, choose_qparams
from inwhale.llm.harness import QuantReport, block_linears

__all__ = ["hqq_qparams", "hqq_quantize_", "hqq_weight", "shrink_lp"]


def shrink_lp(x: torch.Tensor, beta: float, p: float = 0.7) -> torch.Tensor:
    """Generalized soft-threshold ``sign(x)·relu(|x| − |x|^(p−1)/β)`` (equation (2)).

    For ``p = 1`` this is the soft threshold at ``1/β``, the proximal map of ``|x|/β``.

    >>> shrink_lp(torch.tensor([-2.0, 0.3, 1.0]), beta=2.0, p=1.0)
    tensor([-1.5000,  0.0000,  0.5000])
    """
    check_tensor(x, "x", allow_empty=True)
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if not 0 < p <= 1:
        raise ValueError(f"p must be in (0, 1], got {p}")
    a = x.abs()
    if p == 1:
        return torch.sign(x) * torch.relu(a - 1.0 / beta)
    return torch.sign(x) * torch.relu(a - (a + 1e-8).pow(p - 1) / beta)


def _valid_mask(granularity: PerGroup | PerAxis, W: torch.Tensor) -> torch.Tensor:
    """1 for real elements, 0 for the edge padding of a ragged last group, in the view shape."""
    idx = torch.arange(W.shape[-1], device=W.device, dtype=torch.float32).expand_as(W)
    iv = granularity.view(idx)
    pos = torch.arange(iv.shape[-2] * iv.shape[-1], device=W.device).view(iv.shape[-2:])
    return (pos < W.shape[-1]).float().expand_as(iv) if isinstance(granularity, PerGroup) \
        else torch.ones_like(iv)


def _start_qparams(W: torch.Tensor, gran: PerGroup | PerAxis, bits: int,
                   round_zero: bool) -> QParams:
    """The min–max start, with the zero point in the float domain (added before rounding).

    ``round_zero=False`` (the published method, and the ``hqq`` package's default): the core's
    exact zero point ``q_min − lo'/s``, which maps the group minimum exactly onto ``q_min``.
    ``round_zero=True``: the core's whole-code zero point, held as a float.
    """
    if not round_zero:
        return choose_qparams(W, bits=bits, symmetric=False, granularity=gran,
                              zero_point_domain="float")
    qp = choose_qparams(W, bits=bits, symmetric=False, granularity=gran)
    return dataclasses.replace(qp, zero_point=qp.zero_point.float(), zero_point_domain="float")


@torch.no_grad()
def hqq_qparams(
    W: torch.Tensor,
    *,
    bits: int = 4,
    group_size: int | None = 64,
    p: float = 0.7,
    beta: float = 10.0,
    kappa: float = 1.01,
    iters: int = 20,
    round_zero: bool = False,
    keep: str = "best",
) -> tuple[QParams, list[float]]:
    """Optimize the float zero point of each group of ``W`` (O, I) with equations (2)–(3).

    Groups are ``group_size`` consecutive columns of one row (the last one shorter when the
    size does not divide ``I``), or whole rows for ``group_size=None``. The ``hqq`` package's
    ``axis=1`` instead cuts the *flattened* matrix into groups, which differs only when
    ``group_size`` does not divide ``I``; ``hqq_qparams(W.reshape(-1, g), group_size=g)``
    gives its layout.

    Args:
        W: weight, 2-D floating tensor (O, I), finite.
        bits: code width; codes are unsigned ``[0, 2^b − 1]``.
        group_size: columns per group, or ``None`` for one group per row.
        p: the lp exponent of the error, ``0 < p <= 1``.
        beta: initial penalty weight ``β > 0``.
        kappa: growth of ``β`` per iteration (``β ← κβ``), ``κ >= 1``. The blog's 1.01;
            ``1.0`` keeps ``β`` constant, as ``hqq`` 0.2.x's default solver does.
        iters: at most this many zero points are evaluated (each followed by an update).
        round_zero: start from the core's whole-code zero point instead of the exact real
            one (the ``hqq`` package's ``round_zero``, on in its 4-bit default config).
        keep: ``"best"`` returns the evaluated zero point with the lowest error;
            ``"last"`` returns the last update, as the ``hqq`` package does (when it stops
            early that is two updates past its best).

    Returns:
        ``(qparams, errors)``: QParams with a float32 ``zero_point``
        (``zero_point_domain="float"``), and ``mean|W − Ŵ|`` of each evaluated zero point
        until the first one that does not improve on the best (the loop stops there).

    Raises:
        TypeError: ``W`` is not a floating tensor.
        ValueError: ``W`` not 2-D, empty or not finite; ``p``, ``beta``, ``kappa``,
            ``iters`` or ``keep`` out of range.

    Example:
        >>> W = torch.randn(8, 128) * 0.02
        >>> qp, errors = hqq_qparams(W, bits=4, group_size=64)
        >>> qp.zero_point.shape, errors[-1] < errors[0]
        (torch.Size([8, 2, 1]), True)
    """
    check_tensor(W, "W")
    if W.ndim != 2:
        raise ValueError(f"W must be 2-D (out, in), got shape {tuple(W.shape)}")
    _check_opts(p=p, beta=beta, kappa=kappa, iters=iters, keep=keep)
    gran = PerAxis(0) if group_size is None else PerGroup(group_size)
    W = W.float()
    qp = _start_qparams(W, gran, bits, round_zero)
    Wv, s, mask = gran.view(W), qp.scale, _valid_mask(gran, W)        # (O, G, g)
    best, errors = qp, []
    for _ in range(iters):
        Wq = gran.view(quantize(W, qp).float())                           # codes Q_z(W)
        Wr = gran.view(fake_quantize(W, qp))                              # Ŵ
        err = float(((W - gran.unview(Wr, W.shape)).abs()).mean())
        if errors and err >= min(errors):
            break
        errors.append(err)
        best = qp
        We = shrink_lp(Wv - Wr, beta, p)                                  # (2)
        z = ((Wq - (Wv - We) / s) * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True)
        qp = dataclasses.replace(qp, zero_point=z.reshape(qp.zero_point.shape))   # (3)
        beta *= kappa
    return (best if keep == "best" else qp), errors


def _check_opts(*, p: float, beta: float, kappa: float, iters: int, keep: str) -> None:
    """ValueError naming the first HQQ option out of range."""
    if not 0 < p <= 1:
        raise ValueError(f"p must be in (0, 1], got {p}")
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if kappa < 1:
        raise ValueError(f"kappa must be >= 1, got {kappa}")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters must be an int >= 1, got {iters!r}")
    if keep not in ("best", "last"):
        raise ValueError(f"keep must be 'best' or 'last', got {keep!r}")


def hqq_weight(W: torch.Tensor, *, bits: int = 4, group_size: int | None = 64,
               **opts: float | int | bool | str) -> torch.Tensor:
    """``Ŵ`` of ``W`` with HQQ-optimized zero points, in W's dtype.

    Args:
        W: weight (O, I); see :func:`hqq_qparams`.
        bits: code width.
        group_size: columns per group, or ``None`` for one group per row.
        opts: keyword arguments, the other options of :func:`hqq_qparams` (``p``,
            ``beta``, ``kappa``, ``iters``, ``round_zero``, ``keep``).

    Returns:
        The dequantized weight, same shape and dtype as ``W``.

    Example:
        >>> W = torch.randn(4, 64)
        >>> len(torch.unique(hqq_weight(W, bits=2, group_size=64)[0])) <= 4
        True
    """
    qp, _ = hqq_qparams(W, bits=bits, group_size=group_size, **opts)
    return fake_quantize(W.float(), qp).to(W.dtype)


@torch.no_grad()
def hqq_quantize_(
    model: nn.Module,
    calib_ids: torch.Tensor | None = None,
    *,
    bits: int = 4,
    group_size: int | None = 64,
    progress: bool = True,
    **opts: float | int | bool | str,
) -> QuantReport:
    """HQQ every ``nn.Linear`` of the model's blocks, in place. Calibration-free:
    ``calib_ids`` is ignored (kept for the common signature).

    Args:
        model: a decoder LM (see :func:`~inwhale.llm.harness.block_linears`).
        calib_ids: ignored.
        bits: code width.
        group_size: columns per group, or ``None`` for one group per row.
        progress: show a progress bar over the linears.
        opts: keyword arguments, options of :func:`hqq_qparams` (``p``, ``beta``, ``kappa``,
            ``iters``, ``round_zero``, ``keep``); their defaults are the published method's.

    Returns:
        A :class:`~inwhale.llm.harness.QuantReport` with method ``"hqq"``, settings
        ``bits``, ``group_size`` and the given options, and details ``iterations`` (the
        number of evaluated zero points, per layer).
    """
    from inwhale._optional import tqdm

    t0 = time.perf_counter()
    linears = block_linears(model)
    names = list(linears)
    iterations = {}
    for name in tqdm(names, desc="HQQ", disable=not progress):
        w = linears[name].weight
        qp, errs = hqq_qparams(w, bits=bits, group_size=group_size, **opts)
        w.copy_(fake_quantize(w.float(), qp).to(w.dtype))
        iterations[name] = len(errs)
    return QuantReport("hqq", names, time.perf_counter() - t0,
                       {"bits": bits, "group_size": group_size, **opts},
                       {"iterations": iterations})
