"""Lattice quantizers Z^n, D_n and E8: fast nearest-point algorithms (Conway & Sloane 1982).

A lattice ``Λ`` is an infinite regular grid of points; quantizing to ``Λ`` means finding the
nearest lattice point. For three classic lattices this takes a few roundings:

* ``Z^n`` (the scalar uniform quantizer in every coordinate): ``f(x) = round(x)``.
* ``D_n = {z ∈ Z^n : Σ z_i even}`` (the checkerboard; ``D_4`` is the densest 4-D packing):
  compute ``f(x)``; if its coordinate sum is odd, re-round the coordinate with the largest
  rounding error the other way (``g(x)``). (Conway & Sloane 1982, Algorithm 2.)
* ``E_8 = D_8 ∪ (D_8 + ½·1)``: find the nearest point of ``D_8`` and of the shifted coset
  ``D_8 + ½``, keep the closer one.

Quality of a lattice quantizer at high resolution is its **normalized second moment**

    G(Λ) = (1/n) · E‖x − Q(x)‖² / V^{2/n},      x uniform,   V = volume of a Voronoi cell,

which is scale free: ``G(Z^n) = 1/12 ≈ 0.08333``, ``G(D_4) ≈ 0.07660``, ``G(E_8) ≈ 0.07168``
(Conway & Sloane, *Sphere Packings, Lattices and Groups*, Table 2.3). At equal density
(equal rate) E8 has ``10·log10(0.08333/0.07168) ≈ 0.65 dB`` less MSE than scalar rounding:
the *granular gain* that no scalar quantizer can get.

Cell volumes used here: ``V(Z^n) = 1``, ``V(D_n) = 2``, ``V(E_8) = 1``.

Glossary: ``n`` dimension, ``f`` coordinatewise rounding, ``g`` rounding with the worst
coordinate flipped, ``V`` Voronoi-cell volume, ``G`` normalized second moment.
"""

from __future__ import annotations

import math

import torch

from inwhale.core.checks import check_group_size, check_tensor

__all__ = [
    "KNOWN_G",
    "LATTICE_VOLUME",
    "LatticeQuantizer",
    "granular_gain_db",
    "nearest_dn",
    "nearest_e8",
    "nearest_zn",
    "normalized_second_moment",
]

KNOWN_G = {"Z": 1.0 / 12.0, "D4": 0.076603, "E8": 0.071682}
"""Published normalized second moments (Conway & Sloane, SPLAG Table 2.3)."""

LATTICE_VOLUME = {"Z": 1.0, "D4": 2.0, "E8": 1.0}
"""Volume of one Voronoi cell of each lattice as generated here."""

_DIM = {"D4": 4, "E8": 8}


def nearest_zn(x: torch.Tensor) -> torch.Tensor:
    """Nearest point of ``Z^n``: coordinatewise ``round`` (ties to even). Shape kept."""
    return torch.round(x)


def nearest_dn(x: torch.Tensor) -> torch.Tensor:
    """Nearest point of ``D_n`` (integer vectors with even sum) along the last axis.

    >>> nearest_dn(torch.tensor([0.6, 0.1, 0.0, 0.0]))   # round gives sum 1: flip the worst
    tensor([0., 0., 0., 0.])
    >>> nearest_dn(torch.tensor([0.9, 0.8, 0.2, 0.0]))
    tensor([1., 1., 0., 0.])
    """
    check_tensor(x, "x")
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must be at least 1-D with a non-empty last axis, got {tuple(x.shape)}")
    f = torch.round(x)
    odd = (f.sum(-1) % 2) != 0  # (...,)
    err = x - f
    k = err.abs().argmax(-1, keepdim=True)  # coordinate rounded worst
    step = torch.where(err.gather(-1, k) >= 0, 1.0, -1.0).to(x.dtype)  # the other way
    g = f.scatter_add(-1, k, step)
    return torch.where(odd.unsqueeze(-1), g, f)


def nearest_e8(x: torch.Tensor) -> torch.Tensor:
    """Nearest point of ``E_8 = D_8 ∪ (D_8 + ½)`` along the last axis (size 8).

    >>> nearest_e8(torch.tensor([0.4, 0.6, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]))
    tensor([0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000])
    """
    check_tensor(x, "x")
    if x.ndim == 0 or x.shape[-1] != 8:
        raise ValueError(f"x must have 8 entries on its last axis for E8, got {x.shape[-1]}")
    y0 = nearest_dn(x)
    y1 = nearest_dn(x - 0.5) + 0.5
    d0 = ((x - y0) ** 2).sum(-1, keepdim=True)
    d1 = ((x - y1) ** 2).sum(-1, keepdim=True)
    return torch.where(d0 <= d1, y0, y1)


_NEAREST = {"Z": nearest_zn, "D4": nearest_dn, "E8": nearest_e8}


def _check_lattice(lattice: str) -> str:
    if lattice not in _NEAREST:
        raise ValueError(f"lattice must be one of {sorted(_NEAREST)}, got {lattice!r}")
    return lattice


def normalized_second_moment(lattice: str, num_samples: int = 200_000, seed: int = 0) -> float:
    """Monte-Carlo estimate of ``G(Λ)`` from ``num_samples`` uniform points.

    Points are drawn uniformly in a box of side 64 (many cells, so boundary effects vanish)
    in float64. For ``"Z"`` the estimate is per dimension, so any ``n`` gives the same value.

    >>> abs(normalized_second_moment("Z", 100_000) - 1 / 12) < 1e-3
    True
    """
    n = _DIM.get(_check_lattice(lattice), 1)
    check_group_size(num_samples, name="num_samples", allow_none=False)
    gen = torch.Generator().manual_seed(seed)
    x = 64.0 * torch.rand(num_samples, n, generator=gen, dtype=torch.float64)
    err = ((x - _NEAREST[lattice](x)) ** 2).sum(-1).mean().item()
    return err / n / LATTICE_VOLUME[lattice] ** (2.0 / n)


class LatticeQuantizer:
    """Scaled lattice quantizer ``Q(x) = a · nearest(x / a)`` on blocks of ``n`` coordinates.

    The scale ``a`` is set from a target density: ``points_per_unit_volume`` lattice points
    per unit ``n``-volume, i.e. ``a = (V · density)^{−1/n}``. Use
    :meth:`for_step` to match the density of a scalar quantizer with step ``Δ`` (one point
    per ``Δ^n``), the fair comparison: equal density means equal entropy-coded rate at high
    resolution. The codebook is infinite; a rate is measured by the entropy of the codes.

    >>> lq = LatticeQuantizer.for_step("E8", 0.5)
    >>> lq.quantize(torch.zeros(3, 8)).abs().sum().item()
    0.0
    """

    def __init__(self, lattice: str, scale: float):
        self.lattice = _check_lattice(lattice)
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.n, self.scale = _DIM.get(lattice, 1), float(scale)

    @classmethod
    def for_step(cls, lattice: str, step: float) -> LatticeQuantizer:
        """The lattice scaled to one point per ``step^n`` volume (the density of ``Z^n·step``)."""
        n = _DIM.get(_check_lattice(lattice), 1)
        return cls(lattice, step / LATTICE_VOLUME[lattice] ** (1.0 / n))

    def points(self, x: torch.Tensor) -> torch.Tensor:
        """Unscaled lattice points (…, n) as floats; integer or half-integer coordinates."""
        check_tensor(x, "x")
        if x.ndim == 0 or x.shape[-1] % self.n:
            raise ValueError(f"the last axis of x ({x.shape[-1]}) must be a multiple of n={self.n}")
        blocks = x.reshape(*x.shape[:-1], -1, self.n) / self.scale
        return _NEAREST[self.lattice](blocks).reshape(x.shape)

    @torch.no_grad()
    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """``a · nearest(x / a)`` blockwise along the last axis; same shape as ``x``."""
        return self.scale * self.points(x)

    def entropy_bits_per_dim(self, x: torch.Tensor) -> float:
        """Empirical entropy of the lattice points of ``x`` (rows of n coordinates), per dim."""
        pts = (2 * self.points(x)).round().long().reshape(-1, self.n)  # ×2: E8 half-integers
        _, counts = torch.unique(pts, dim=0, return_counts=True)
        p = counts.double() / counts.sum()
        return float(-(p * torch.log2(p)).sum()) / self.n


def granular_gain_db(lattice: str) -> float:
    """``10 log10(G(Z)/G(Λ))`` from the published values: 0.37 dB for D4, 0.65 dB for E8."""
    return 10.0 * math.log10(KNOWN_G["Z"] / KNOWN_G[_check_lattice(lattice)])
