"""Low-rank decompositions of layers, with quantized factors: SVD, Tucker-2 and CP.

Quantization shrinks every weight; a low-rank decomposition shrinks the *number* of weights.
The two compose: factor a layer into a few thin layers, then quantize each factor. This
module implements three classic factorizations and builds each into a chain of ordinary
``nn.Linear`` / ``nn.Conv2d`` layers (no nonlinearity between them), so the factored layer
runs anywhere a normal one does.

=====================  ===================================================  ==================
method                 kernel model                                         layers built
=====================  ===================================================  ==================
SVD, Linear            ``W ≈ A B``, ``A = U_r √S_r``, ``B = √S_r V_rᵀ``      Linear → Linear
SVD, Conv2d            ``K_(O, C·k·k) ≈ A B`` (Denton et al. 2014)           k×k (r out) → 1×1
Tucker-2, Conv2d       ``K ≈ G ×₁ U_out ×₂ U_in`` (Kim et al. 2016)          1×1 → k×k core → 1×1
CP, Conv2d             ``K ≈ Σ_r a_r ∘ b_r ∘ c_r ∘ d_r`` (Lebedev et al.)    1×1 → k×1 → 1×k → 1×1
=====================  ===================================================  ==================

By the Eckart–Young theorem the truncated SVD is the best rank-``r`` approximation of a
matrix in Frobenius norm. Tucker-2 (HOSVD start, optional HOOI sweeps) compresses only the
two channel modes and keeps the k×k spatial extent in a small core. CP is computed by
alternating least squares (ALS) from a seeded random start for a fixed number of sweeps; it
is not unique, ALS can stall, and its rank-1 terms can nearly cancel (large factors whose
difference is the kernel, which rounding then destroys: the chapter shows this).

Each factor is fake-quantized with :func:`~inwhale.core.affine.fake_quantize`, symmetric, one
scale per output channel of the layer that holds it (:func:`quantize_weights_`). The SVD factors
are split as ``U√S`` and ``√S Vᵀ``, so that component ``i`` has norm ``√σ_i`` in both (a
common default; the chapter's exercise compares the other splits).

Glossary
--------
``O, C``            output, input channels (``out_features``, ``in_features`` for Linear)
``k_h, k_w``        kernel height and width; ``K`` the kernel (O, C, k_h, k_w)
``r``               rank (SVD, CP); ``(r_out, r_in)`` the Tucker-2 ranks
``U, S, V``         SVD factors, ``W = U S Vᵀ``
``U_out, U_in, G``  Tucker-2 factors (O, r_out), (C, r_in) and core (r_out, r_in, k_h, k_w)
``a, b, c, d``      CP factors over out, in, height, width: (O, r), (C, r), (k_h, r), (k_w, r)
``bits``            bit width of every factor; ``None`` keeps float32

References: E. Denton et al., "Exploiting linear structure within convolutional networks for
efficient evaluation", NeurIPS 2014. Y.-D. Kim et al., "Compression of deep convolutional
neural networks for fast and low power mobile applications", ICLR 2016. V. Lebedev et al.,
"Speeding-up convolutional neural networks using fine-tuned CP-decomposition", ICLR 2015.
L. De Lathauwer, B. De Moor, J. Vandewalle, "On the best rank-1 and rank-(R1,...,RN)
approximation of higher-order tensors" (HOOI), SIAM J. Matrix Anal. Appl. 21(4), 2000.
T. Kolda, B. Bader, "Tensor decompositions and applications", SIAM Review 51(3), 2009 (ALS).
"""

from __future__ import annotations

import torch
from torch import nn

from inwhale.core import PerAxis, choose_qparams, fake_quantize
from inwhale.core.checks import check_bits, check_tensor

__all__ = [
    "Factored",
    "count_params",
    "cp_als",
    "cp_conv2d",
    "cp_kernel",
    "quantize_weights_",
    "svd_conv2d",
    "svd_factors",
    "svd_linear",
    "tucker2",
    "tucker2_conv2d",
    "tucker2_kernel",
    "weight_bytes",
]


# ----------------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------------


def _check_rank(rank: object, max_rank: int | None, name: str = "rank") -> int:
    """``rank`` must be an int in ``1..max_rank`` (no upper bound when ``max_rank`` is None)."""
    if not isinstance(rank, int) or isinstance(rank, bool):
        raise TypeError(f"{name} must be an int, got {type(rank).__name__}")
    if rank < 1:
        raise ValueError(f"{name} must be >= 1, got {rank}")
    if max_rank is not None and rank > max_rank:
        raise ValueError(f"{name} must be <= {max_rank} (the smallest dimension), got {rank}")
    return rank


def _check_bits(bits: object) -> int | None:
    """``bits`` is ``None`` (float factors) or an int in 2..16 (symmetric signed codes)."""
    return None if bits is None else check_bits(bits, lo=2)


def _check_conv(layer: object) -> nn.Conv2d:
    if not isinstance(layer, nn.Conv2d):
        raise TypeError(f"layer must be an nn.Conv2d, got {type(layer).__name__}")
    if layer.groups != 1:
        raise ValueError(f"layer must have groups=1 to be factored, got groups={layer.groups}")
    if not isinstance(layer.padding, tuple):
        raise ValueError(f"layer.padding must be numeric, got {layer.padding!r}")
    return layer


def _check_kernel(kernel: object) -> torch.Tensor:
    check_tensor(kernel, "kernel")
    if kernel.ndim != 4:
        raise ValueError(f"kernel must be 4-D (O, C, k_h, k_w), got {kernel.ndim}-D")
    return kernel


# ----------------------------------------------------------------------------------------
# the factorizations (pure tensor functions)
# ----------------------------------------------------------------------------------------


@torch.no_grad()
def svd_factors(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced rank-``r`` factors of a matrix: ``W ≈ A B``, ``A = U_r √S_r``, ``B = √S_r V_rᵀ``.

    .. math::  W = U S V^\\top, \\qquad A B = \\sum_{i \\le r} \\sigma_i u_i v_i^\\top,
               \\qquad \\lVert W - AB \\rVert_F^2 = \\sum_{i > r} \\sigma_i^2

    (Eckart–Young: no rank-``r`` matrix is closer to ``W`` in Frobenius norm.)

    Args:
        weight: (O, I) floating matrix.
        rank: ``r`` in ``1..min(O, I)``.

    Returns:
        ``A`` (O, r) and ``B`` (r, I), in ``weight``'s dtype and device.

    Worked example: ``diag(3, 1)`` at rank 1 keeps ``σ₁ = 3``; ``A = [√3, 0]ᵀ``,
    ``B = [√3, 0]`` (signs as LAPACK returns them), and ``AB = diag(3, 0)``:

    >>> A, B = svd_factors(torch.diag(torch.tensor([3.0, 1.0])), 1)
    >>> (A @ B).abs().tolist()
    [[3.0, 0.0], [0.0, 0.0]]

    Raises:
        TypeError/ValueError: ``weight`` not a finite 2-D float tensor; ``rank`` not an int
        in ``1..min(O, I)``.
    """
    check_tensor(weight, "weight")
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-D (O, I), got {weight.ndim}-D")
    r = _check_rank(rank, min(weight.shape))
    U, S, Vh = torch.linalg.svd(weight.double(), full_matrices=False)  # (O,m), (m,), (m,I)
    root = S[:r].sqrt()
    A = U[:, :r] * root  # (O, r)
    B = root[:, None] * Vh[:r]  # (r, I)
    return A.to(weight.dtype), B.to(weight.dtype)


def _leading_left_vectors(m: torch.Tensor, r: int) -> torch.Tensor:
    """The ``r`` leading left singular vectors of a matrix (rows, r)."""
    return torch.linalg.svd(m, full_matrices=False)[0][:, :r]


@torch.no_grad()
def tucker2(
    kernel: torch.Tensor, ranks: tuple[int, int], hooi_iters: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tucker-2 decomposition of a conv kernel over its two channel modes.

    .. math::  K_{ochw} \\approx \\sum_{a \\le r_{out}} \\sum_{b \\le r_{in}}
               U^{out}_{oa} \\, G_{abhw} \\, U^{in}_{cb},
               \\qquad G = K \\times_1 U^{out\\top} \\times_2 U^{in\\top}

    **HOSVD** start: ``U_out`` = the ``r_out`` leading left singular vectors of the mode-1
    unfolding ``K_(1)`` (O, C·k_h·k_w), ``U_in`` those of ``K_(2)`` (C, O·k_h·k_w). Each
    **HOOI** sweep then recomputes ``U_out`` from ``K ×₂ U_inᵀ`` and ``U_in`` from
    ``K ×₁ U_outᵀ``, which never increases the error (De Lathauwer et al. 2000). With full
    ranks ``U_out`` and ``U_in`` are square orthogonal and the reconstruction is exact.

    Args:
        kernel: (O, C, k_h, k_w).
        ranks: ``(r_out, r_in)``, ``r_out ≤ min(O, C·k_h·k_w)``, ``r_in ≤ min(C, O·k_h·k_w)``.
        hooi_iters: number of HOOI sweeps after the HOSVD start (≥ 0).

    Returns:
        ``(core, u_out, u_in)``: (r_out, r_in, k_h, k_w), (O, r_out), (C, r_in).

    Worked example: a kernel that is already rank (1, 1) is recovered exactly:

    >>> K = torch.einsum("o,c,hw->ochw", torch.tensor([1.0, 2.0]), torch.tensor([3.0, -1.0]),
    ...                  torch.ones(3, 3))
    >>> G, Uo, Ui = tucker2(K, (1, 1))
    >>> G.shape, bool(torch.allclose(tucker2_kernel(G, Uo, Ui), K, atol=1e-5))
    (torch.Size([1, 1, 3, 3]), True)
    """
    _check_kernel(kernel)
    n_out, n_in, kh, kw = kernel.shape
    if not isinstance(ranks, tuple | list) or len(ranks) != 2:
        raise ValueError(f"ranks must be a pair (r_out, r_in), got {ranks!r}")
    r_out = _check_rank(ranks[0], min(n_out, n_in * kh * kw), "ranks[0] (r_out)")
    r_in = _check_rank(ranks[1], min(n_in, n_out * kh * kw), "ranks[1] (r_in)")
    if not isinstance(hooi_iters, int) or hooi_iters < 0:
        raise ValueError(f"hooi_iters must be an int >= 0, got {hooi_iters!r}")
    K = kernel.double()
    u_out = _leading_left_vectors(K.reshape(n_out, -1), r_out)  # (O, r_out)
    u_in = _leading_left_vectors(K.transpose(0, 1).reshape(n_in, -1), r_in)  # (C, r_in)
    for _ in range(hooi_iters):
        Y = torch.einsum("ochw,cb->obhw", K, u_in)  # K ×₂ U_inᵀ   (O, r_in, kh, kw)
        u_out = _leading_left_vectors(Y.reshape(n_out, -1), r_out)
        Z = torch.einsum("ochw,oa->cahw", K, u_out)  # K ×₁ U_outᵀ  (C, r_out, kh, kw)
        u_in = _leading_left_vectors(Z.reshape(n_in, -1), r_in)
    core = torch.einsum("ochw,oa,cb->abhw", K, u_out, u_in)  # (r_out, r_in, kh, kw)
    return tuple(t.to(kernel.dtype) for t in (core, u_out, u_in))


def tucker2_kernel(core: torch.Tensor, u_out: torch.Tensor, u_in: torch.Tensor) -> torch.Tensor:
    """Rebuild ``K = G ×₁ U_out ×₂ U_in``: (O, C, k_h, k_w) from the three Tucker-2 factors.

    >>> tucker2_kernel(torch.ones(1, 1, 1, 1), torch.tensor([[2.0]]), torch.tensor([[3.0]]))
    tensor([[[[6.]]]])
    """
    return torch.einsum("abhw,oa,cb->ochw", core, u_out, u_in)


def cp_kernel(factors: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Rebuild ``K_ochw = Σ_r a_or b_cr c_hr d_wr`` from CP factors ``(a, b, c, d)``.

    >>> ones = torch.ones(1, 1)
    >>> cp_kernel((2 * ones, 3 * ones, ones, ones))
    tensor([[[[6.]]]])
    """
    a, b, c, d = factors
    return torch.einsum("or,cr,hr,wr->ochw", a, b, c, d)


@torch.no_grad()
def cp_als(
    kernel: torch.Tensor, rank: int, iters: int = 50, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rank-``r`` CP decomposition of a conv kernel by alternating least squares.

    .. math::  K_{ochw} \\approx \\sum_{r} a_{or}\\, b_{cr}\\, c_{hr}\\, d_{wr}

    Each sweep solves, for one factor at a time with the other three fixed, the linear
    least-squares problem in closed form (Kolda and Bader 2009, §3.4); for ``a``:

    .. math::  a \\leftarrow K_{(1)} (b \\odot c \\odot d)\\,
               \\big(b^\\top b * c^\\top c * d^\\top d\\big)^{+}

    (``⊙`` the Khatri–Rao product, ``*`` element-wise, ``+`` the pseudo-inverse), written with
    ``einsum`` so no unfolding order has to be remembered. After its update each factor's
    columns are scaled to unit norm and the norms kept in ``λ``; at the end ``λ`` is shared
    equally, ``λ_r^{1/4}`` per factor, so the four factors have balanced ranges (which is
    what per-channel quantization wants). The start is seeded Gaussian noise and the number
    of sweeps is fixed: the result is deterministic but, CP being non-convex, not
    necessarily the best rank-``r`` fit. ``rank`` may exceed every dimension (a tensor's CP
    rank can).

    Args:
        kernel: (O, C, k_h, k_w).
        rank: ``r ≥ 1``.
        iters: ALS sweeps (≥ 1).
        seed: seed of the random start.

    Returns:
        ``(a, b, c, d)``: (O, r), (C, r), (k_h, r), (k_w, r), in ``kernel``'s dtype.

    Worked example: a kernel made of two rank-1 terms is found to float precision:

    >>> g = torch.Generator().manual_seed(1)
    >>> true = [torch.randn(n, 2, generator=g, dtype=torch.float64) for n in (4, 3, 3, 3)]
    >>> K = cp_kernel(true)
    >>> from inwhale.metrics import relative_error
    >>> relative_error(K, cp_kernel(cp_als(K, 2, iters=100))) < 1e-6
    True
    """
    _check_kernel(kernel)
    r = _check_rank(rank, None)
    if not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters must be an int >= 1, got {iters!r}")
    K = kernel.double()
    gen = torch.Generator().manual_seed(seed)
    f = [torch.randn(n, r, generator=gen, dtype=torch.float64).to(K.device) for n in K.shape]
    lam = torch.ones(r, dtype=torch.float64, device=K.device)
    subs = ["or", "cr", "hr", "wr"]
    for _ in range(iters):
        for n in range(4):
            others = [m for m in range(4) if m != n]
            # right-hand side K_(n) (Khatri-Rao of the others): (dim_n, r)
            rhs = torch.einsum(f"ochw,{','.join(subs[m] for m in others)}->{subs[n]}",
                               K, *(f[m] for m in others))
            gram = torch.ones(r, r, dtype=torch.float64, device=K.device)  # (r, r)
            for m in others:
                gram = gram * (f[m].T @ f[m])
            f[n] = rhs @ torch.linalg.pinv(gram)  # carries the scale λ
            lam = f[n].norm(dim=0).clamp_min(1e-300)
            f[n] = f[n] / lam
    share = lam ** 0.25
    return tuple((fn * share).to(kernel.dtype) for fn in f)


# ----------------------------------------------------------------------------------------
# quantization and size of factored (or plain) layers
# ----------------------------------------------------------------------------------------


def _weighted(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.Linear | nn.Conv2d)]


@torch.no_grad()
def quantize_weights_(module: nn.Module, bits: int | None) -> nn.Module:
    """Fake-quantize, in place, the weight of every ``Linear``/``Conv2d`` inside ``module``.

    Symmetric signed codes, one scale per output channel (``PerAxis(0)``), from
    :func:`~inwhale.core.qparams.choose_qparams` and
    :func:`~inwhale.core.affine.fake_quantize`. Biases stay float. ``bits=None`` leaves the
    weights unchanged. Returns ``module``.

    Worked example: at 2 bits the codes are {−2, −1, 0, 1} and ``s = max|w| / 1.5``; the row
    [0.3, −0.6, 0.1] has ``s = 0.4``, ``w/s = [0.75, −1.5, 0.25]`` → codes [1, −2, 0]:

    >>> lin = nn.Linear(3, 1, bias=False)
    >>> with torch.no_grad():
    ...     _ = lin.weight.copy_(torch.tensor([[0.3, -0.6, 0.1]]))
    >>> [round(v, 4) for v in quantize_weights_(lin, 2).weight[0].tolist()]
    [0.4, -0.8, 0.0]
    """
    bits = _check_bits(bits)
    if bits is None:
        return module
    for m in _weighted(module):
        qp = choose_qparams(m.weight, bits=bits, symmetric=True, granularity=PerAxis(0))
        m.weight.copy_(fake_quantize(m.weight, qp))
    return module


def count_params(module: nn.Module) -> int:
    """Number of weights and biases of the ``Linear``/``Conv2d`` layers in ``module``.

    >>> count_params(nn.Linear(64, 10))
    650
    """
    return sum(p.numel() for m in _weighted(module) for p in m.parameters(recurse=False))


def weight_bytes(module: nn.Module, bits: int | None, scale_bits: int = 16) -> float:
    """Bytes to store ``module``'s ``Linear``/``Conv2d`` layers with ``bits``-bit weights.

    .. math::  \\text{bytes} = \\sum_{\\text{layers}} \\Big( \\frac{n_w \\, b}{8}
               + \\frac{O \\cdot s}{8} + 4 n_{bias} \\Big)

    with ``n_w`` weights, ``O`` output channels, one ``s``-bit scale per channel
    (``scale_bits``, default 16: an fp16 scale; symmetric codes need no zero point) and
    float32 biases. ``bits=None`` counts float32 weights and no scales.

    Worked example: ``Linear(64, 10)`` at 4 bits: 640·4/8 = 320 bytes of codes, 10 scales of
    2 bytes, 10 float32 biases = 40 bytes, 380 in all; float32 is 650·4 = 2,600:

    >>> weight_bytes(nn.Linear(64, 10), 4), weight_bytes(nn.Linear(64, 10), None)
    (380.0, 2600.0)
    """
    bits = _check_bits(bits)
    total = 0.0
    for m in _weighted(module):
        n_bias = 0 if m.bias is None else m.bias.numel()
        if bits is None:
            total += 4 * (m.weight.numel() + n_bias)
        else:
            total += m.weight.numel() * bits / 8 + m.weight.shape[0] * scale_bits / 8
            total += 4 * n_bias
    return total


# ----------------------------------------------------------------------------------------
# factored layers
# ----------------------------------------------------------------------------------------


class Factored(nn.Sequential):
    """A chain of linear layers that together compute one factored ``Linear`` or ``Conv2d``.

    ``method`` is ``"svd"``, ``"tucker2"`` or ``"cp"``; :meth:`dense_weight` multiplies the
    stages back into the one weight they stand for (from the stages' current, possibly
    quantized, weights), so the factored layer can be checked against ``F.linear`` /
    ``F.conv2d`` with that weight.
    """

    def __init__(self, method: str, *stages: nn.Module) -> None:
        super().__init__(*stages)
        self.method = method

    @torch.no_grad()
    def dense_weight(self) -> torch.Tensor:
        """The (O, I) or (O, C, k_h, k_w) weight of the equivalent single layer."""
        w = [m.weight for m in self]
        if self.method == "svd" and isinstance(self[0], nn.Linear):
            return w[1] @ w[0]  # (O, r) @ (r, I)
        if self.method == "svd":
            r = w[0].shape[0]
            return (w[1].reshape(-1, r) @ w[0].reshape(r, -1)).reshape(-1, *w[0].shape[1:])
        if self.method == "tucker2":
            return tucker2_kernel(w[1], w[2][:, :, 0, 0], w[0][:, :, 0, 0].T)
        # cp: stages hold b (r, C, 1, 1), c (r, 1, kh, 1), d (r, 1, 1, kw), a (O, r, 1, 1)
        return cp_kernel((w[3][:, :, 0, 0], w[0][:, :, 0, 0].T, w[1][:, 0, :, 0].T,
                          w[2][:, 0, 0, :].T))

    def extra_repr(self) -> str:
        return f"method={self.method!r}"


def _along(values: tuple[int, int], axis: int | None, neutral: int) -> tuple[int, int]:
    """``values`` (height, width), with the other axis than ``axis`` set to ``neutral``."""
    return tuple(v if axis is None or i == axis else neutral for i, v in enumerate(values))


def _conv(cin: int, cout: int, kernel: tuple[int, int], weight: torch.Tensor,
          layer: nn.Conv2d | None = None, bias: torch.Tensor | None = None,
          groups: int = 1, axis: int | None = None) -> nn.Conv2d:
    """A conv with the given weight; stride/padding/dilation of ``layer`` along ``axis``
    (0 = height only, 1 = width only, None = both) when ``layer`` is given."""
    stride, padding, dilation = (1, 1), (0, 0), (1, 1)
    if layer is not None:
        stride = _along(layer.stride, axis, 1)
        padding = _along(layer.padding, axis, 0)
        dilation = _along(layer.dilation, axis, 1)
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, dilation=dilation,
                     groups=groups, bias=bias is not None,
                     padding_mode=layer.padding_mode if layer is not None else "zeros")
    conv = conv.to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
    return conv


def _bias(layer: nn.Module) -> torch.Tensor | None:
    return None if layer.bias is None else layer.bias.detach()


@torch.no_grad()
def svd_linear(layer: nn.Linear, rank: int, bits: int | None = None) -> Factored:
    """``Linear(I, O)`` → ``Linear(I, r, bias=False)`` → ``Linear(r, O)`` with ``W ≈ A B``.

    ``B = √S_r V_rᵀ`` is the first layer's weight, ``A = U_r √S_r`` the second's (which keeps
    the bias); both are quantized to ``bits`` per output channel. Weights:
    ``r (I + O)`` instead of ``I·O`` (fewer when ``r < I·O / (I + O)``).

    >>> lin = nn.Linear(64, 10)
    >>> f = svd_linear(lin, 4)
    >>> [tuple(m.weight.shape) for m in f], count_params(f), count_params(lin)
    ([(4, 64), (10, 4)], 306, 650)
    """
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"layer must be an nn.Linear, got {type(layer).__name__}")
    A, B = svd_factors(layer.weight.detach(), rank)  # (O, r), (r, I)
    first = nn.Linear(layer.in_features, rank, bias=False).to(B)
    second = nn.Linear(rank, layer.out_features, bias=layer.bias is not None).to(A)
    first.weight.copy_(B)
    second.weight.copy_(A)
    if layer.bias is not None:
        second.bias.copy_(layer.bias)
    return quantize_weights_(Factored("svd", first, second), bits)


@torch.no_grad()
def svd_conv2d(layer: nn.Conv2d, rank: int, bits: int | None = None) -> Factored:
    """SVD of the kernel reshaped to (O, C·k_h·k_w): a k×k conv to ``r`` channels, then 1×1.

    .. math::  K_{(O,\\,C k_h k_w)} \\approx A B: \\quad
               y = \\underbrace{A}_{1\\times1,\\ r\\to O} *
                   \\big(\\underbrace{B}_{k\\times k,\\ C\\to r} * x\\big)

    The k×k stage keeps the layer's stride, padding and dilation. Weights:
    ``r (C k_h k_w + O)`` instead of ``O C k_h k_w`` (Denton et al. 2014, "monochromatic"
    and bi-clustering aside, this is their plain SVD of the filter matrix).

    >>> conv = nn.Conv2d(8, 16, 3, padding=1)
    >>> f = svd_conv2d(conv, 4)
    >>> [tuple(m.weight.shape) for m in f], count_params(f), count_params(conv)
    ([(4, 8, 3, 3), (16, 4, 1, 1)], 368, 1168)
    """
    _check_conv(layer)
    n_out, n_in, kh, kw = layer.weight.shape
    A, B = svd_factors(layer.weight.detach().reshape(n_out, -1), rank)  # (O, r), (r, C·kh·kw)
    first = _conv(n_in, rank, (kh, kw), B.reshape(rank, n_in, kh, kw), layer)
    second = _conv(rank, n_out, (1, 1), A[:, :, None, None], bias=_bias(layer))
    return quantize_weights_(Factored("svd", first, second), bits)


@torch.no_grad()
def tucker2_conv2d(layer: nn.Conv2d, ranks: tuple[int, int], bits: int | None = None,
                   hooi_iters: int = 0) -> Factored:
    """Tucker-2 factored conv (Kim et al. 2016): 1×1 (C → r_in), k×k core, 1×1 (r_out → O).

    .. math::  y = U_{out} * \\big( G * (U_{in}^\\top * x) \\big)

    The core keeps the stride, padding and dilation. Weights:
    ``C r_in + r_out r_in k_h k_w + r_out O``. See :func:`tucker2` for the factors.

    >>> f = tucker2_conv2d(nn.Conv2d(8, 16, 3, padding=1), (8, 4))
    >>> [tuple(m.weight.shape) for m in f], count_params(f)
    ([(4, 8, 1, 1), (8, 4, 3, 3), (16, 8, 1, 1)], 464)
    """
    _check_conv(layer)
    n_out, n_in, kh, kw = layer.weight.shape
    core, u_out, u_in = tucker2(layer.weight.detach(), ranks, hooi_iters)
    r_out, r_in = core.shape[:2]
    first = _conv(n_in, r_in, (1, 1), u_in.T[:, :, None, None])
    middle = _conv(r_in, r_out, (kh, kw), core, layer)
    last = _conv(r_out, n_out, (1, 1), u_out[:, :, None, None], bias=_bias(layer))
    return quantize_weights_(Factored("tucker2", first, middle, last), bits)


@torch.no_grad()
def cp_conv2d(layer: nn.Conv2d, rank: int, bits: int | None = None, iters: int = 50,
              seed: int = 0) -> Factored:
    """CP factored conv, the four-stage pipeline of Lebedev et al. (2015).

    .. math::  y_o = \\sum_r a_{or} \\Big( d_{\\cdot r} *_w \\big( c_{\\cdot r} *_h
               \\textstyle\\sum_c b_{cr} x_c \\big) \\Big)

    1×1 conv ``C → r`` (weights ``b``), a depthwise ``k_h × 1`` conv per component (``c``),
    a depthwise ``1 × k_w`` conv (``d``), and a 1×1 conv ``r → O`` (``a``, with the bias).
    Height stride/padding/dilation go to the vertical stage, width ones to the horizontal.
    Weights: ``r (C + k_h + k_w + O)``. The factors come from :func:`cp_als` with
    ``iters`` sweeps from seed ``seed`` (no fine-tuning, unlike the paper).

    >>> f = cp_conv2d(nn.Conv2d(8, 16, 3, padding=1), 8, iters=5)
    >>> [tuple(m.weight.shape) for m in f], count_params(f)
    ([(8, 8, 1, 1), (8, 1, 3, 1), (8, 1, 1, 3), (16, 8, 1, 1)], 256)
    """
    _check_conv(layer)
    n_out, n_in, kh, kw = layer.weight.shape
    a, b, c, d = cp_als(layer.weight.detach(), rank, iters, seed)
    stages = (
        _conv(n_in, rank, (1, 1), b.T[:, :, None, None]),
        _conv(rank, rank, (kh, 1), c.T[:, None, :, None], layer, groups=rank, axis=0),
        _conv(rank, rank, (1, kw), d.T[:, None, None, :], layer, groups=rank, axis=1),
        _conv(rank, n_out, (1, 1), a[:, :, None, None], bias=_bias(layer)),
    )
    return quantize_weights_(Factored("cp", *stages), bits)
