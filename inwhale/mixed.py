"""Mixed precision across layers: measure each layer's sensitivity, then allocate bits.

Not every layer of a network suffers equally from quantization. Given ``L`` layers and a set
of bit widths ``B`` (e.g. ``{2, 3, 4, 8}``), choose one width ``b_l`` per layer to

.. math::

    \\min_{b_1..b_L} \\sum_l D_l(b_l) \\quad\\text{subject to}\\quad
    \\sum_l R_l(b_l) \\le R_{\\max},

a *multiple-choice knapsack*. Two solvers, one exact and one that shows the trade-off:

* :func:`allocate_bits` solves it **exactly** by dynamic programming over the budget in
  whole bytes (the layers of a transformer have few distinct sizes, so the table is small).
  Its error never grows with the budget, and it is never worse than a uniform width.
* :func:`allocation_path` follows Shoham and Gersho (1988), "bit allocation for an
  arbitrary set of quantizers": with a Lagrange multiplier ``λ ≥ 0`` the problem splits into
  one small problem per layer, ``min_b D_l(b) + λ R_l(b)`` (Everett, 1963), whose solutions
  lie on the **lower convex hull** of the layer's ``(R_l(b), D_l(b))`` points. Sweeping ``λ``
  from ∞ down to 0 walks every layer up its hull; merged over all layers this is one list of
  *upgrades* sorted by slope ``ΔD / ΔR`` (error removed per byte spent), steepest first.
  Every allocation on that path is **optimal for the bytes it uses** (it minimizes
  ``D + λR``), so the path traces the error-versus-bytes curve. Points *above* a layer's hull
  (a 3-bit width barely better than 2 bits) are never visited, and between two path points
  the exact solver can do better.

For the distortion ``D_l`` this module uses :func:`layer_sensitivity`,
the noise-to-signal ratio of the layer's output; summing it over layers assumes that the
errors of different layers add up independently, a first-order approximation that the
chapter checks against perplexity.

Glossary
--------
``l``            layer index (a name in the dictionaries below)
``b``            bit width of a layer's weight codes, one of ``choices``
``n_l``          number of weights of layer ``l`` (``sizes[l]``)
``β(b)``         bits stored per weight at width ``b``, codes plus amortized scales
                 (``bits_per_weight[b]``, default ``b``)
``R_l(b)``       bytes of layer ``l``: ``n_l · β(b) / 8``
``D_l(b)``       error of layer ``l`` at width ``b`` (``sensitivities[l][b]``)
``X, W, Ŵ``      layer input (T, I), weight (O, I) and its fake-quantized copy
``NSR``          noise-to-signal ratio ``‖X(W − Ŵ)ᵀ‖² / ‖XWᵀ‖² = 10^(−SQNR/10)``

References: Y. Shoham, A. Gersho, "Efficient bit allocation for an arbitrary set of
quantizers", IEEE Trans. ASSP 36(9), 1988. H. Everett, "Generalized Lagrange multiplier
method for solving problems of optimum allocation of resources", Operations Research 11(3),
1963. Z. Dong et al., "HAWQ: Hessian AWare Quantization of neural networks with mixed
precision", ICCV 2019 (per-layer sensitivity for bit allocation).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch

from inwhale.core import Granularity, PerAxis, choose_qparams, fake_quantize
from inwhale.core.checks import check_bits, check_tensor

_MAX_CELLS = 200_000  # most budget cells the dynamic programme of allocate_bits uses

__all__ = [
    "Upgrade",
    "allocate_bits",
    "allocation_bytes",
    "allocation_error",
    "allocation_path",
    "layer_sensitivity",
]


@torch.no_grad()
def layer_sensitivity(
    weight: torch.Tensor,
    inputs: torch.Tensor | None = None,
    choices: Iterable[int] = (2, 3, 4, 8),
    *,
    symmetric: bool = True,
    granularity: Granularity | None = None,
) -> dict[int, float]:
    """How much a linear layer's output suffers when its weight is quantized to each width.

    For each ``b`` in ``choices`` the weight is min–max fake-quantized
    (:func:`~inwhale.core.qparams.choose_qparams` + :func:`~inwhale.core.affine.fake_quantize`)
    and the noise-to-signal ratio of the output is returned:

    .. math::  D(b) = \\frac{\\lVert X (W - \\hat W_b)^\\top \\rVert_F^2}
                          {\\lVert X W^\\top \\rVert_F^2}

    With ``inputs=None`` it is the weight's own NSR ``‖W − Ŵ‖² / ‖W‖²`` (as if ``X = I``).

    Args:
        weight: (O, I) floating weight of an ``nn.Linear``.
        inputs: (T, I) inputs of the layer (e.g. from
            :func:`inwhale.llm.harness.capture_linear_inputs`), or ``None``.
        choices: bit widths to try, each in 1..16.
        symmetric: symmetric (signed, zero point 0) or asymmetric codes.
        granularity: default ``PerAxis(0)``, one scale per output channel.

    Returns:
        ``{b: D(b)}``, floats ≥ 0 (``0.0`` when the quantized output is exact; a layer whose
        output is all zero gets ``0.0`` too, since nothing can be lost).

    Example, by hand: 2-bit symmetric codes are {−2, −1, 0, 1} with ``s = max|w| / 1.5``
    per row (PyTorch's convention ``(q_max − q_min) / 2``, which clips the largest positive
    value). Row [−2, 0, 2, 2]: ``s = 4/3``, ``w/s = [−1.5, 0, 1.5, 1.5]`` rounds (ties to
    even) and clamps to [−2, 0, 1, 1], so ``ŵ = [−8/3, 0, 4/3, 4/3]``: noise ``3·(2/3)² = 4/3``,
    signal 12. Row [1, −1, 0, 0.5]: ``s = 2/3``, codes [1, −2, 0, 1], ``ŵ = [2/3, −4/3, 0, 2/3]``:
    noise ``1/9 + 1/9 + 1/36 = 1/4``, signal 2.25. So ``D(2) = (4/3 + 1/4) / 14.25 = 1/9``:

    >>> w = torch.tensor([[-2.0, 0.0, 2.0, 2.0], [1.0, -1.0, 0.0, 0.5]])
    >>> d = layer_sensitivity(w, choices=(2, 8))
    >>> round(d[2], 6), d[8] < 1e-4
    (0.111111, True)

    Raises:
        TypeError: ``weight`` or ``inputs`` is not a floating tensor.
        ValueError: ``weight`` is not 2-D, ``inputs`` is not (T, I), ``choices`` is empty.
    """
    check_tensor(weight, "weight")
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got {weight.ndim}-D")
    if inputs is not None:
        check_tensor(inputs, "inputs")
        if inputs.ndim != 2 or inputs.shape[1] != weight.shape[1]:
            raise ValueError(
                f"inputs must have shape (T, {weight.shape[1]}), got {tuple(inputs.shape)}"
            )
    choices = [check_bits(b, "choices") for b in choices]
    if not choices:
        raise ValueError("choices must name at least one bit width")
    granularity = granularity or PerAxis(0)
    w = weight.float()
    x = None if inputs is None else inputs.to(device=w.device, dtype=torch.float32)
    y = w if x is None else x @ w.T  # (O, I) or (T, O)
    signal = float(y.double().pow(2).sum())
    out = {}
    for b in choices:
        qp = choose_qparams(w, bits=b, symmetric=symmetric, granularity=granularity)
        dw = w - fake_quantize(w, qp)  # (O, I)
        noise = float((dw if x is None else x @ dw.T).double().pow(2).sum())
        out[b] = noise / signal if signal > 0 else 0.0
    return out


@dataclass(frozen=True)
class Upgrade:
    """One step of :func:`allocation_path`: raise ``layer`` from ``old_bits`` to ``new_bits``.

    Attributes:
        layer: the layer's name.
        old_bits, new_bits: widths before and after.
        delta_bytes: ``R(new) − R(old)`` > 0.
        delta_error: ``D(old) − D(new)`` ≥ 0, the error removed.
    """

    layer: str
    old_bits: int
    new_bits: int
    delta_bytes: float
    delta_error: float

    @property
    def slope(self) -> float:
        """Error removed per byte spent."""
        return self.delta_error / self.delta_bytes


def _check_problem(
    sensitivities: Mapping[str, Mapping[int, float]],
    sizes: Mapping[str, int],
    choices: Iterable[int],
    bits_per_weight: Mapping[int, float] | None,
) -> tuple[list[int], dict[int, float]]:
    choices = sorted({check_bits(b, "choices") for b in choices})
    if not choices:
        raise ValueError("choices must name at least one bit width")
    if not sensitivities:
        raise ValueError("sensitivities must hold at least one layer")
    if set(sensitivities) != set(sizes):
        raise ValueError("sensitivities and sizes must have the same layer names")
    for name, d in sensitivities.items():
        missing = [b for b in choices if b not in d]
        if missing:
            raise ValueError(f"sensitivities[{name!r}] lacks the widths {missing}")
        if sizes[name] <= 0:
            raise ValueError(f"sizes[{name!r}] must be a positive count, got {sizes[name]}")
    beta = {b: float(b) for b in choices} if bits_per_weight is None else dict(bits_per_weight)
    if any(b not in beta for b in choices):
        raise ValueError(f"bits_per_weight must give a value for every choice {choices}")
    costs = [beta[b] for b in choices]
    if any(c2 <= c1 for c1, c2 in pairwise(costs)):
        raise ValueError("bits_per_weight must increase with the bit width")
    return choices, beta


def _hull(points: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """Lower convex hull of (bytes, error, bits), bytes increasing, error decreasing."""
    hull: list[tuple[float, float, int]] = []
    for p in points:
        if hull and p[1] >= hull[-1][1]:
            continue  # more bytes but no less error: never worth it
        while len(hull) >= 2:
            (r0, d0, _), (r1, d1, _) = hull[-2], hull[-1]
            # drop hull[-1] if it lies on or above the chord hull[-2] -> p
            if (d0 - d1) * (p[0] - r0) <= (d0 - p[1]) * (r1 - r0):
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def allocation_path(
    sensitivities: Mapping[str, Mapping[int, float]],
    sizes: Mapping[str, int],
    choices: Iterable[int] = (2, 3, 4, 8),
    bits_per_weight: Mapping[int, float] | None = None,
) -> tuple[dict[str, int], list[Upgrade]]:
    """The start allocation (every layer at its cheapest hull width) and all upgrades in order.

    Applying the upgrades one after another traces the best error-versus-bytes curve that
    a Lagrangian allocation can reach (see the module docstring). Ties in slope are broken by
    layer order, so the result is deterministic.

    Args:
        sensitivities: ``{layer: {bits: error}}``, e.g. from :func:`layer_sensitivity`.
        sizes: ``{layer: number of weights}``.
        choices: the widths allowed.
        bits_per_weight: stored bits per weight of each width (codes + scale overhead);
            default: ``b`` itself, i.e. dense packing and free scales.

    Returns:
        ``(start, upgrades)``: ``{layer: bits}`` and the list of :class:`Upgrade`.
    """
    choices, beta = _check_problem(sensitivities, sizes, choices, bits_per_weight)
    start: dict[str, int] = {}
    steps: list[tuple[float, int, int, Upgrade]] = []
    for order, (name, d) in enumerate(sensitivities.items()):
        pts = [(sizes[name] * beta[b] / 8, float(d[b]), b) for b in choices]
        hull = _hull(pts)
        start[name] = hull[0][2]
        for k, ((r0, d0, b0), (r1, d1, b1)) in enumerate(pairwise(hull)):
            up = Upgrade(name, b0, b1, r1 - r0, d0 - d1)
            steps.append((-up.slope, order, k, up))
    steps.sort(key=lambda s: s[:3])
    return start, [s[3] for s in steps]


def allocation_bytes(
    allocation: Mapping[str, int],
    sizes: Mapping[str, int],
    bits_per_weight: Mapping[int, float] | None = None,
) -> float:
    """Total bytes ``Σ_l n_l · β(b_l) / 8`` of an allocation.

    >>> allocation_bytes({"a": 4, "b": 8}, {"a": 100, "b": 10})
    60.0
    """
    beta = bits_per_weight or {}
    return sum(sizes[n] * beta.get(b, float(b)) / 8 for n, b in allocation.items())


def allocation_error(
    allocation: Mapping[str, int], sensitivities: Mapping[str, Mapping[int, float]]
) -> float:
    """Total error ``Σ_l D_l(b_l)`` of an allocation.

    >>> allocation_error({"a": 4}, {"a": {2: 0.5, 4: 0.1}})
    0.1
    """
    return sum(float(sensitivities[n][b]) for n, b in allocation.items())


def _integer_costs(
    names: list[str], sizes: Mapping[str, int], choices: list[int], beta: Mapping[int, float]
) -> tuple[np.ndarray, int]:
    """Bytes of every (layer, width) rounded up to whole bytes, and their common unit."""
    cost = np.array(
        [[math.ceil(sizes[n] * beta[b] / 8 - 1e-9) for b in choices] for n in names],
        dtype=np.int64,
    )  # (L, |B|)
    return cost, math.gcd(*cost.flatten().tolist())


def allocate_bits(
    sensitivities: Mapping[str, Mapping[int, float]],
    sizes: Mapping[str, int],
    budget_bytes: float,
    choices: Iterable[int] = (2, 3, 4, 8),
    bits_per_weight: Mapping[int, float] | None = None,
) -> dict[str, int]:
    r"""Bit width per layer with the least total error whose bytes fit ``budget_bytes``.

    Solved exactly, as a multiple-choice knapsack, by dynamic programming over the budget:
    with ``F_l(k)`` the least error of layers ``1..l`` in at most ``k`` byte units,

    .. math::  F_l(k) = \min_{b} \; F_{l-1}\big(k - c_l(b)\big) + D_l(b),
               \qquad F_0(k) = 0,

    where ``c_l(b)`` is ``R_l(b)`` rounded up to whole bytes, in units of the greatest common
    divisor of all the costs (SmolLM2's layers at 2/3/4/8 bits: 13,824 bytes, so a 50 MB
    budget is ~3,600 cells). Backtracking from ``k = budget`` gives the widths. Unlike the
    Lagrangian path of :func:`allocation_path`, this also reaches widths above a layer's
    convex hull and uses leftover bytes, so it is never worse than any uniform allocation
    that fits, and its error never grows with the budget. Ties go to fewer bits.

    Args:
        sensitivities: ``{layer: {bits: error}}``, e.g. from :func:`layer_sensitivity`.
        sizes: ``{layer: number of weights}``.
        budget_bytes: the most bytes the weights may take.
        choices: the widths allowed.
        bits_per_weight: stored bits per weight of each width (default ``b``).

    Returns:
        ``{layer: bits}`` in the order of ``sensitivities``.

    Worked example: layer "a" (1,600 weights) barely cares, "b" (1,600 weights) does. At 2
    bits each costs 400 bytes; 4 bits costs 400 more per layer. With 1,200 bytes one upgrade
    fits, and it goes to "b", which removes 0.8 of error instead of 0.05:

    >>> sens = {"a": {2: 0.10, 4: 0.05}, "b": {2: 1.00, 4: 0.20}}
    >>> allocate_bits(sens, {"a": 1600, "b": 1600}, 1200, choices=(2, 4))
    {'a': 2, 'b': 4}

    Edge cases:
        When the budget spans more than ``2·10⁵`` units the costs are rounded up to a coarser
        unit (``budget / 2·10⁵``): the budget is still respected, and the answer is optimal
        for the rounded costs.

    Raises:
        ValueError: the budget is below the cheapest allocation (which is named), or the
            problem is malformed (names, missing widths, sizes ≤ 0, ``bits_per_weight``).
    """
    choices, beta = _check_problem(sensitivities, sizes, choices, bits_per_weight)
    names = list(sensitivities)
    cost, unit = _integer_costs(names, sizes, choices, beta)  # (L, |B|) bytes
    cheapest = int(cost[:, 0].sum())
    if cheapest > budget_bytes:
        raise ValueError(
            f"budget_bytes={budget_bytes:,.0f} is below the cheapest allocation "
            f"({cheapest:,} bytes with every layer at {choices[0]} bits)"
        )
    unit = max(unit, math.ceil(budget_bytes / _MAX_CELLS))
    cost = -(-cost // unit)  # ceil: in units, never under the true bytes
    n_cells = int(budget_bytes // unit) + 1
    err = np.array([[float(sensitivities[n][b]) for b in choices] for n in names])  # (L, |B|)
    best = np.zeros(n_cells)  # F_0(k) for k = 0..K
    pick = np.empty((len(names), n_cells), dtype=np.int64)  # argmin b per (l, k)
    for i in range(len(names)):
        cand = np.full((len(choices), n_cells), math.inf)  # (|B|, K + 1)
        for j in range(len(choices)):
            c = int(cost[i, j])
            if c < n_cells:
                cand[j, c:] = best[: n_cells - c] + err[i, j]  # F_{l-1}(k - c) + D_l(b)
        pick[i] = cand.argmin(axis=0)  # first minimum: fewer bits on ties
        best = cand[pick[i], np.arange(n_cells)]
    alloc, k = {}, n_cells - 1
    for i in reversed(range(len(names))):
        j = int(pick[i, k])
        alloc[names[i]] = choices[j]
        k -= int(cost[i, j])
    return {n: alloc[n] for n in names}
