"""Predictive quantization: delta modulation and closed-loop DPCM.

Quantize what the decoder could not predict. Cutler's DPCM patent (US 2,605,361, 1952); de
Jager's delta modulation (Philips Res. Rep. 7, 1952); Jayant & Noll, *Digital Coding of
Waveforms* (1984), ch. 6–8.

**DPCM** (closed loop): the encoder runs a copy of the decoder, so both predict from the
*reconstructed* past:

    p[n] = Σ_{k=1..P} a_k x̂[n−k],    q[n] = Q(x[n] − p[n]),    x̂[n] = p[n] + Q⁻¹(q[n]).

The reconstruction error equals the quantization error of the residual,
``x[n] − x̂[n] = r[n] − Q⁻¹(Q(r[n]))``, so it never accumulates; the gain over PCM at equal
bits is the *prediction gain* ``G_p = σ_x² / σ_r²`` (for an AR(1) source with correlation
``ρ`` and the optimal ``a_1 = ρ``: ``G_p = 1 / (1 − ρ²)``). The predictor ``a`` solves the
Yule–Walker normal equations ``R a = r`` with ``R_{ij} = φ(|i − j|)``, ``r_i = φ(i)``
(``φ`` = autocorrelation).

**Delta modulation** is 1-bit DPCM with ``a_1 = 1``: ``b[n] = sign(x[n] − x̂[n−1])``,
``x̂[n] = x̂[n−1] + δ b[n]``. It can climb at most ``δ`` per sample (*slope overload* when
``|x[n] − x[n−1]| > δ``) and hunts ±δ around a flat signal (*granular noise*).

Glossary: ``a`` predictor taps, ``P`` order, ``r`` residual, ``δ`` delta-modulation step,
``b`` bits (±1), ``x̂`` reconstruction.
"""

from __future__ import annotations

import torch

from inwhale.core import QParams
from inwhale.core.checks import check_codes, check_tensor
from inwhale.signal._scalar import scalar_codec

__all__ = ["delta_demodulate", "delta_modulate", "dpcm_decode", "dpcm_encode", "lpc"]


def _check_1d(x: object, name: str, codes: tuple[int, int] | None = None) -> torch.Tensor:
    """A finite, non-empty 1-D float signal; or, with ``codes=(low, high)``, 1-D integer codes
    in that range (empty allowed: nothing to decode)."""
    if codes is None:
        check_tensor(x, name)
    else:
        check_codes(x, name, *codes)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D tensor, got shape {tuple(x.shape)}")
    return x


def delta_modulate(x: torch.Tensor, step: float, x0: float = 0.0) -> torch.Tensor:
    """Encode ``x`` (1-D) into ±1 bits (int8); the decoder starts from ``x0``.

    Ties (``x[n] = x̂[n−1]``) send +1.

    >>> delta_modulate(torch.tensor([0.3, 0.9, 1.0, 1.0]), 0.5)
    tensor([ 1,  1,  1, -1], dtype=torch.int8)
    """
    _check_1d(x, "x")
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step}")
    xhat, bits = float(x0), []
    for xn in x.double().cpu().tolist():
        b = 1 if xn >= xhat else -1
        xhat += step * b
        bits.append(b)
    return torch.tensor(bits, dtype=torch.int8, device=x.device)


def delta_demodulate(bits: torch.Tensor, step: float, x0: float = 0.0) -> torch.Tensor:
    """Decode: ``x̂[n] = x0 + δ Σ_{m≤n} b[m]`` (a running sum; float64).

    >>> delta_demodulate(torch.tensor([1, 1, 1, -1], dtype=torch.int8), 0.5)
    tensor([0.5000, 1.0000, 1.5000, 1.0000], dtype=torch.float64)
    """
    _check_1d(bits, "bits", codes=(-1, 1))
    return x0 + step * torch.cumsum(bits.double(), 0)


def lpc(x: torch.Tensor, order: int) -> torch.Tensor:
    """Predictor taps ``a`` (order,) from the Yule–Walker equations on the mean-free ``x``.

    >>> g = torch.Generator().manual_seed(0); w = torch.randn(50_000, generator=g)
    >>> x = torch.zeros(50_000)
    >>> for n in range(1, 50_000): x[n] = 0.9 * x[n - 1] + w[n]
    >>> round(float(lpc(x, 1)[0]), 2)
    0.9
    """
    _check_1d(x, "x")
    if not isinstance(order, int) or not 1 <= order < x.numel():
        raise ValueError(f"order must be an int in [1, len(x)), got {order}")
    x = x.double() - x.double().mean()
    phi = torch.stack([(x[: x.numel() - k] * x[k:]).sum() for k in range(order + 1)])  # (P+1,)
    idx = torch.arange(order)
    R = phi[(idx[:, None] - idx[None, :]).abs()]  # (P, P) Toeplitz
    return torch.linalg.solve(R, phi[1:])


def dpcm_encode(x: torch.Tensor, a: torch.Tensor, qp: QParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-loop DPCM of the 1-D ``x`` with taps ``a`` and residual quantizer ``qp``.

    Returns ``(codes, x̂)``: int64 codes (N,) and the encoder's own reconstruction (N,) float64,
    which :func:`dpcm_decode` reproduces exactly. The past before ``n = 0`` is zero.
    """
    _check_1d(x, "x")
    q, dq = scalar_codec(qp)
    taps = _check_1d(a, "a").double().tolist()
    hist = [0.0] * len(taps)  # x̂[n−1], x̂[n−2], …
    codes, recon = [], []
    for xn in x.double().cpu().tolist():
        p = sum(ak * h for ak, h in zip(taps, hist, strict=True))
        c = q(xn - p)
        xhat = p + dq(c)
        codes.append(c)
        recon.append(xhat)
        hist = [xhat, *hist[:-1]]
    return torch.tensor(codes, device=x.device), torch.tensor(
        recon, dtype=torch.float64, device=x.device
    )


def dpcm_decode(codes: torch.Tensor, a: torch.Tensor, qp: QParams) -> torch.Tensor:
    """Invert :func:`dpcm_encode`: ``x̂[n] = Σ a_k x̂[n−k] + Q⁻¹(q[n])`` (float64).

    >>> from inwhale import qparams_from_range
    >>> qp = qparams_from_range(
    ...     torch.tensor(-1.0), torch.tensor(1.0), bits=4, symmetric=True, narrow_range=True)
    >>> x = torch.sin(torch.linspace(0, 6, 50)); a = torch.tensor([1.0])
    >>> codes, xhat = dpcm_encode(x, a, qp)
    >>> err = (x - xhat).abs().max()
    >>> torch.equal(dpcm_decode(codes, a, qp), xhat), bool(err <= qp.scale / 2 + 1e-7)
    (True, True)
    """
    _, dq = scalar_codec(qp)
    _check_1d(codes, "codes", codes=(qp.qmin, qp.qmax))
    taps = _check_1d(a, "a").double().tolist()
    hist = [0.0] * len(taps)
    recon = []
    for c in codes.cpu().tolist():
        xhat = sum(ak * h for ak, h in zip(taps, hist, strict=True)) + dq(c)
        recon.append(xhat)
        hist = [xhat, *hist[:-1]]
    return torch.tensor(recon, dtype=torch.float64, device=codes.device)
