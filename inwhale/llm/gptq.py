"""GPTQ: second-order, error-compensating weight quantization (Frantar et al., 2022).

Paper: E. Frantar, S. Ashkboos, T. Hoefler, D. Alistarh, "GPTQ: Accurate Post-Training
Quantization for Generative Pre-trained Transformers", ICLR 2023 (arXiv:2210.17323).

The problem, per linear layer with weight ``W`` (d_row x d_col) and calibration inputs
``X`` (d_col x n), is the layer-wise reconstruction

    argmin_Q ‖W X − Q X‖²_F                                      (1)

whose Hessian w.r.t. any row of W is ``H = 2 X Xᵀ`` (d_col x d_col), the same for every row.
Optimal Brain Quantization (OBQ, from Optimal Brain Surgeon) quantizes one weight ``w_q`` at a
time and moves the not-yet-quantized weights ``F`` to compensate:

    δ_F = − (w_q − quant(w_q)) / [H_F⁻¹]_qq · (H_F⁻¹)_{:,q}          (2)

GPTQ's three changes make this fast enough for LLMs:

1. **Fixed column order.** All rows quantize column ``j`` at the same step, so one inverse
   Hessian serves every row, and removing column ``j`` from ``H_F⁻¹`` is a Gaussian
   elimination step. The rows of the **upper Cholesky factor** ``U`` of ``H⁻¹``
   (``H⁻¹ = Uᵀ U``) hold exactly those successive eliminations, so (2) becomes

       Err_j = (w_j − q_j) / U_jj,        W_{:, j:} −= Err_j · U_{j, j:}       (3)

2. **Lazy batch updates.** (3) is applied inside a block of ``B`` columns only; the
   block's accumulated ``Err`` updates the rest of the matrix once, ``W_{:, B:} −= Err ·
   U_{block, B:}``, a matmul instead of ``B`` rank-1 updates. The paper uses ``B = 128`` (on a
   GPU); here the default is 32, because on a CPU the rank-1 updates inside a block are
   memory-bound and touch ``B/2`` columns on average (the result is the same up to float
   rounding: the updates are only regrouped).
3. **Damping.** ``H + λ I`` with ``λ = percdamp · mean(diag H)`` keeps the Cholesky stable.

Options kept from the reference code: *dead columns* (``H_jj = 0``: the input is always zero)
get ``H_jj = 1`` and ``W_{:, j} = 0``; *act-order* quantizes columns by decreasing ``H_jj``
(the most active inputs first) and undoes the permutation at the end; *groups* give every
``group_size`` consecutive columns (of the loop's order) their own scale and zero point,
computed when the quantizer reaches the group, from the weights as the error updates have left
them. With act-order such a group is a scattered set of original columns; the result's
``g_idx`` says which group rounded each column (``scale[:, g_idx]``), as GPTQ's storage formats
do. *Static groups* instead fix contiguous groups up front from the float weights.
*True-sequential* (model level) quantizes the linears of a block in data-flow order,
recollecting each one's Hessian with the earlier ones already quantized.

Glossary: ``W`` weight (rows = outputs, cols = inputs); ``X`` layer inputs; ``H = 2XXᵀ/n``
Hessian (averaged over n tokens); ``Hinv`` upper Cholesky factor of (H + λI)⁻¹; ``Q``
quantized weight; ``Err`` scaled errors of a block; ``Losses`` the per-weight OBS loss
``(w − q)² / Hinv_jj² / 2``; ``perm`` act-order permutation.

Scale and zero point always come from :func:`inwhale.choose_qparams` (per row, for the group or
the whole row), and every column is rounded with :func:`inwhale.fake_quantize`.

Layout: :func:`gptq_quantize_weight` is the algorithm for one matrix, written as (3) reads.
:func:`gptq_quantize_weights` is a speed-up only: the same column loop run on a stack of
same-shape matrices at once (each with its own Hessian), so that a CPU pays the Python loop
over columns once for all 30 ``o_proj`` layers of SmolLM2 instead of 30 times; a test checks it
against the one-matrix solver. :func:`gptq_quantize_` applies either to a whole model; the
block-by-block plumbing it needs (finding the blocks, recording the first block's inputs,
replaying a block) lives in :mod:`inwhale.llm.harness`, and round-to-nearest, the baseline, in
:mod:`inwhale.llm.rtn`.
"""

from __future__ import annotations

import dataclasses
import time

import torch
from torch import nn

from inwhale.core.affine import fake_quantize_view, quantize
from inwhale.core.checks import check_bits, check_group_size, check_tensor
from inwhale.core.granularity import PerAxis, PerGroup
from inwhale.core.qparams import QParams, choose_qparams
from inwhale.llm.harness import (
    BlockInputs,
    GramAccumulator,
    QuantReport,
    _as_1d_ids,
    _check_vocab,
    block_linears,
    calibration_batches,
    decoder_blocks,
    first_block_inputs,
    for_each_linear_input,
    intra_op_threads,
    run_block,
)

__all__ = [
    "GPTQResult",
    "collect_hessians",
    "gptq_quantize_",
    "gptq_quantize_weight",
    "gptq_quantize_weights",
]


@dataclasses.dataclass
class GPTQResult:
    """Output of :func:`gptq_quantize_weight`.

    Attributes:
        Q: the quantized (fake-quantized) weight, float32, shape (O, I), original column order.
        losses: OBS loss per weight ``(w − q)²/Hinv_jj²/2``, shape (O, I), original order.
        perm: the act-order permutation used (``None`` without act-order): step ``j`` of the
            column loop quantized original column ``perm[j]``.
        qparams: the group parameters, from :func:`inwhale.choose_qparams`: ``scale`` and
            ``zero_point`` of shape (O, G), one column per group (G = 1 without groups).
        g_idx: int64 (I,): the group of every original column, so column ``c`` was rounded
            with ``qparams.scale[:, g_idx[c]]`` and ``qparams.zero_point[:, g_idx[c]]``.
            ``c // group_size`` except with act-order and dynamic groups, where groups are
            runs of ``group_size`` columns *in the permuted order*.
    """

    Q: torch.Tensor
    losses: torch.Tensor
    perm: torch.Tensor | None
    qparams: QParams
    g_idx: torch.Tensor

    def column_qparams(self) -> QParams:
        """The parameters of every column, ``scale[:, g_idx]`` (O, I): what a kernel reads.

        >>> W, H = torch.tensor([[1.0, -0.3, 0.2, 0.7]]), torch.diag(torch.tensor([1., 4, 2, 3]))
        >>> r = gptq_quantize_weight(W, H, bits=2, group_size=2, act_order=True)
        >>> r.perm.tolist(), r.g_idx.tolist(), tuple(r.column_qparams().scale.shape)
        ([1, 3, 2, 0], [1, 0, 1, 0], (1, 4))
        """
        qp = self.qparams
        return dataclasses.replace(qp, scale=qp.scale[:, self.g_idx],
                                   zero_point=qp.zero_point[:, self.g_idx])

    def codes(self) -> torch.Tensor:
        """Integer codes (O, I) of ``Q`` (:func:`inwhale.quantize` with :meth:`column_qparams`);
        ``inwhale.dequantize(r.codes(), r.column_qparams())`` gives ``r.Q`` back exactly."""
        return quantize(self.Q, self.column_qparams())


def _concat_groups(groups: list[QParams]) -> QParams:
    """The per-group parameters (each scale (…, O, 1)) side by side: scale (…, O, G)."""
    return dataclasses.replace(groups[0], scale=torch.cat([g.scale for g in groups], -1),
                               zero_point=torch.cat([g.zero_point for g in groups], -1))


def _group_index(I: int, group_size: int | None, perm: torch.Tensor | None) -> torch.Tensor:  # noqa: E741
    """``g_idx`` (I,): the group of each original column. Groups are runs of ``group_size``
    loop steps; with a dynamic act-order, step ``j`` is original column ``perm[j]``.

    >>> _group_index(4, 2, torch.tensor([3, 0, 2, 1])).tolist()   # steps 0,1 -> group 0
    [0, 1, 1, 0]
    """
    if group_size is None:
        return torch.zeros(I, dtype=torch.long)
    step_group = torch.arange(I) // group_size
    if perm is None:
        return step_group
    g_idx = torch.empty(I, dtype=torch.long)
    g_idx[perm.cpu()] = step_group
    return g_idx


# ---------------------------------------------------------------------------------------------
# one matrix
# ---------------------------------------------------------------------------------------------


def _inverse_hessian_factor(H: torch.Tensor, percdamp: float, name: str) -> torch.Tensor:
    """Upper Cholesky factor U of (H + λI)⁻¹, λ = percdamp·mean(diag H); clear error on failure.

    One Cholesky and one triangular inverse, no explicit inverse: with ``J`` the reversal
    permutation, ``J Hd J = M Mᵀ`` (lower ``M``) gives ``Hd = R Rᵀ`` with ``R = J M J``
    upper triangular, so ``Hd⁻¹ = R⁻ᵀ R⁻¹`` and ``U = R⁻¹`` (upper, positive diagonal).

    >>> H = torch.tensor([[4.0, 2.0], [2.0, 3.0]])
    >>> U = _inverse_hessian_factor(H, 0.0, "w")
    >>> torch.allclose(U.T @ U, torch.linalg.inv(H)), bool(torch.all(torch.diag(U) > 0))
    (True, True)
    """
    damp = percdamp * torch.mean(torch.diag(H))
    Hd = H + damp * torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
    try:
        M = torch.linalg.cholesky(Hd.flip(0, 1))            # J Hd J = M Mᵀ
    except torch.linalg.LinAlgError as err:  # torch raises this subclass of RuntimeError
        raise RuntimeError(
            f"GPTQ: the Cholesky factorization of the damped Hessian of layer {name!r} "
            f"failed (percdamp={percdamp}); the Hessian is not positive definite. Raise "
            "percdamp (e.g. 0.1) or use more calibration tokens."
        ) from err
    R = M.flip(0, 1)                                        # Hd = R Rᵀ, R upper
    eye = torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
    return torch.linalg.solve_triangular(R, eye, upper=True)


def _prepare(W: torch.Tensor, H: torch.Tensor, bits: int, group_size: int | None,
             percdamp: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate one layer's ``W`` (O, I) and ``H`` (I, I); float32 copies, dead columns fixed."""
    check_tensor(W, "W"), check_tensor(H, "H")
    if W.ndim != 2:
        raise ValueError(f"W must be 2-D (out, in), got shape {tuple(W.shape)}")
    I = W.shape[1]  # noqa: E741
    check_bits(bits)
    check_group_size(group_size, I)
    if H.shape != (I, I):
        raise ValueError(f"H must have shape ({I}, {I}) for W of shape {tuple(W.shape)}")
    if percdamp < 0:
        raise ValueError(f"percdamp must be >= 0, got {percdamp}")
    W, H = W.detach().clone().float(), H.detach().clone().float()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0                                    # dead inputs: no information
    W[:, dead] = 0.0
    return W, H


def _fit_blocksize(blocksize: int, group_size: int | None) -> int:
    """A lazy batch must not straddle a group: round ``blocksize`` to a multiple of the group
    size unless one divides the other."""
    if group_size is not None and group_size % blocksize and blocksize % group_size:
        return group_size * max(1, blocksize // group_size)
    return blocksize


def _row_qparams(W: torch.Tensor, bits: int, symmetric: bool) -> QParams:
    """One scale and zero point per row of ``W`` (O, k), from the core: scale (O, 1)."""
    return choose_qparams(W, bits=bits, symmetric=symmetric, granularity=PerAxis(0))


def _gptq_columns(W: torch.Tensor, U: torch.Tensor, *, bits: int, group_size: int | None,
                  symmetric: bool, blocksize: int, static: QParams | None = None,
                  perm: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, QParams]:
    """Equation (3) with lazy batches on one matrix ``W`` (O, I), updated in place.

    ``U`` (I, I) is the upper Cholesky factor of the damped inverse Hessian. Column ``j`` is
    rounded with its row's scale and zero point (the whole row's, fixed up front; or its
    group's, computed when ``j`` starts the group, from the columns ``j … j+group_size−1`` as
    the updates have left them; or, with ``static``, the group of its original index
    ``perm[j]``); its scaled error ``Err_j`` is spread over the later columns of the lazy batch
    at once and over the rest of the matrix at the end of the batch.
    Returns ``(Q, Losses, groups)``: Q and Losses (O, I) in ``W``'s (possibly permuted) column
    order, and the parameters of every group in the order they were used, scale (O, G).
    """
    O, I = W.shape  # noqa: E741
    Q, Losses = torch.zeros_like(W), torch.zeros_like(W)
    qp = _row_qparams(W, bits, symmetric) if group_size is None else None
    groups = [qp] if qp is not None else []
    for i1 in range(0, I, blocksize):
        i2 = min(i1 + blocksize, I)
        Err = torch.zeros(O, i2 - i1, dtype=W.dtype, device=W.device)
        for j in range(i1, i2):
            if static is not None:
                g = int(perm[j]) // group_size
                qp = dataclasses.replace(static, scale=static.scale[:, g],
                                         zero_point=static.zero_point[:, g],
                                         granularity=PerAxis(0))
            elif group_size is not None and j % group_size == 0:
                qp = _row_qparams(W[:, j : j + group_size], bits, symmetric)
                groups.append(qp)
            q = fake_quantize_view(W[:, j : j + 1], qp)      # (O, 1): the core rounds column j
            Q[:, j : j + 1] = q
            err = (W[:, j : j + 1] - q) / U[j, j]             # Err_j of (3)
            W[:, j:i2] -= err * U[j, j:i2]                    # W[:, j:] −= Err_j ⊗ U[j, j:]
            Err[:, j - i1 : j - i1 + 1] = err
        W[:, i2:] -= Err @ U[i1:i2, i2:]                      # the lazy batch's update, at once
        Losses[:, i1:i2] = Err.square() / 2                   # (w − q)² / U_jj² / 2
    if static is not None:                                    # (O, G, 1) -> (O, G)
        groups = [dataclasses.replace(static, scale=static.scale[..., 0],
                                      zero_point=static.zero_point[..., 0],
                                      granularity=PerAxis(0))]
    return Q, Losses, _concat_groups(groups)


@torch.no_grad()
def gptq_quantize_weight(
    W: torch.Tensor,
    H: torch.Tensor,
    *,
    bits: int = 4,
    group_size: int | None = 128,
    symmetric: bool = False,
    percdamp: float = 0.01,
    blocksize: int = 32,
    act_order: bool = False,
    static_groups: bool = False,
    name: str = "weight",
) -> GPTQResult:
    """Quantize one weight matrix with GPTQ (equations (1)–(3) of the module docstring).

    Args:
        W: weight (O, I) — rows are outputs, columns inputs (``nn.Linear.weight``).
        H: Hessian (I, I), e.g. ``2 X Xᵀ / n`` from :func:`collect_hessians`.
        bits: the code width (asymmetric min–max by default, as in the paper).
        group_size: columns per scale/zero point; ``None`` = one per row (per-channel).
        symmetric: symmetric grid instead of min–max.
        percdamp: damping λ as a fraction of mean(diag H).
        blocksize: columns per lazy batch; with groups it must divide ``group_size`` or be a
            multiple of it (otherwise it is rounded to a multiple).
        act_order: quantize columns by decreasing ``diag H`` (the most active inputs first).
        static_groups: with groups, fix every group's parameters up front from the original
            weights, groups contiguous in the original order (the reference's
            ``--static-groups``; also used without act-order). ``False``, the default and the
            reference's default with ``--act-order``: a group's parameters are computed when
            the loop reaches it, from the next ``group_size`` columns *in the loop's order*
            as the error updates have left them; with act-order a group is then a set of
            scattered original columns, recorded in ``g_idx`` of the result.
        name: layer name used in error messages.

    Returns:
        :class:`GPTQResult` (``Q`` float32, on ``W``'s device; ``qparams`` and ``g_idx`` say
        which scale and zero point rounded each column).

    Raises:
        ValueError: ``bits``/``group_size`` out of range, ``H`` of the wrong shape, or
            ``percdamp < 0``.
        RuntimeError: the damped Hessian is not positive definite (names ``name``).

    Edge cases: with ``H = c·I`` no error is propagated (``Hinv`` is diagonal) and GPTQ is
    exactly round-to-nearest. A column with ``H_jj = 0`` is zeroed (its input is always 0).

    >>> from inwhale.llm.rtn import rtn_weight
    >>> W = torch.tensor([[1.0, -0.3, 0.2, 0.7]])
    >>> torch.equal(gptq_quantize_weight(W, torch.eye(4), bits=2, group_size=None).Q,
    ...             rtn_weight(W, bits=2, group_size=None))
    True
    """
    W, H = _prepare(W, H, bits, group_size, percdamp)
    static = None
    if static_groups and group_size is not None:          # fixed up front, original order
        static = choose_qparams(W, bits=bits, symmetric=symmetric,
                                granularity=PerGroup(group_size))
    perm = torch.argsort(torch.diag(H), descending=True) if act_order else None
    if perm is not None:
        W, H = W[:, perm], H[perm][:, perm]
    loop_perm = perm if perm is not None else torch.arange(W.shape[1], device=W.device)
    U = _inverse_hessian_factor(H, percdamp, name)         # (I, I) upper triangular
    with intra_op_threads(1, W.device):
        Q, Losses, qp = _gptq_columns(W, U, bits=bits, group_size=group_size,
                                      symmetric=symmetric,
                                      blocksize=_fit_blocksize(blocksize, group_size),
                                      static=static, perm=loop_perm)
    if perm is not None:
        inv = torch.argsort(perm)
        Q, Losses = Q[:, inv], Losses[:, inv]
    g_idx = _group_index(W.shape[1], group_size, None if static is not None else perm)
    return GPTQResult(Q, Losses, perm, qp, g_idx.to(W.device))


# ---------------------------------------------------------------------------------------------
# a speed-up: many same-shape matrices through one column loop
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def gptq_quantize_weights(
    Ws: list[torch.Tensor],
    Hs: list[torch.Tensor],
    *,
    bits: int = 4,
    group_size: int | None = 128,
    symmetric: bool = False,
    percdamp: float = 0.01,
    blocksize: int = 32,
    names: list[str] | None = None,
) -> list[GPTQResult]:
    """GPTQ of several same-shape layers at once (no act-order): one column loop for all.

    Each layer keeps its own Hessian and its own result — the batch only shares the Python
    loop over columns, which is what costs time on a CPU: quantizing SmolLM2's 30 ``o_proj``
    layers this way runs 576 loop steps instead of 30 × 576. The arithmetic per layer is that
    of :func:`gptq_quantize_weight` (batched matrix products may round differently in the
    last bit, so a rare weight can land on the neighbouring grid point).

    Args:
        Ws: weights, all of shape (O, I).
        Hs: their Hessians, each (I, I).
        bits, group_size, symmetric, percdamp, blocksize: as in :func:`gptq_quantize_weight`.
        names: layer names for error messages.

    Returns:
        One :class:`GPTQResult` per layer (``perm`` is ``None``).

    >>> W = torch.tensor([[1.0, -0.3, 0.2, 0.7]])
    >>> H = torch.tensor([[2.0, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    >>> a, b = gptq_quantize_weights([W, 2 * W], [torch.eye(4), H], bits=2, group_size=None)
    >>> torch.equal(a.Q, gptq_quantize_weight(W, torch.eye(4), bits=2, group_size=None).Q)
    True
    """
    if len(Ws) != len(Hs) or not Ws:
        raise ValueError(f"Ws and Hs must be non-empty lists of equal length, got {len(Ws)} "
                         f"and {len(Hs)}")
    for k, W in enumerate(Ws):
        check_tensor(W, f"Ws[{k}]")
        if W.ndim != 2:
            raise ValueError(f"Ws[{k}] must be 2-D (O, I), got shape {tuple(W.shape)}")
    if len({tuple(W.shape) for W in Ws}) != 1:
        raise ValueError("all weights in Ws must have the same shape; got "
                         f"{sorted({tuple(W.shape) for W in Ws})}")
    names = names or [f"weight {k}" for k in range(len(Ws))]
    prepared = [_prepare(W, H, bits, group_size, percdamp) for W, H in zip(Ws, Hs, strict=True)]
    W = torch.stack([w for w, _ in prepared])                              # (L, O, I)
    U = torch.stack([_inverse_hessian_factor(h, percdamp, n)
                     for (_, h), n in zip(prepared, names, strict=True)])  # (L, I, I)
    with intra_op_threads(1, W.device):
        Q, Losses, qp = _stacked_gptq_columns(W, U, bits, group_size, symmetric,
                                              _fit_blocksize(blocksize, group_size))
    g_idx = _group_index(W.shape[-1], group_size, None).to(W.device)
    return [GPTQResult(Q[k], Losses[k], None,
                       dataclasses.replace(qp, scale=qp.scale[k], zero_point=qp.zero_point[k]),
                       g_idx) for k in range(len(Ws))]


def _stacked_row_qparams(W: torch.Tensor, bits: int, symmetric: bool) -> QParams:
    """:func:`_row_qparams` for a stack ``W`` (L, O, k): every row of every layer is one row
    for the core (the ``(L·O, k)`` view); scale and zero point shaped (L, O, 1)."""
    n_layers, n_rows, k = W.shape
    qp = _row_qparams(W.reshape(n_layers * n_rows, k), bits, symmetric)
    shape = (n_layers, n_rows, 1)
    return dataclasses.replace(qp, scale=qp.scale.view(shape),
                               zero_point=qp.zero_point.view(shape))


def _stacked_gptq_columns(W: torch.Tensor, U: torch.Tensor, bits: int, group_size: int | None,
                          symmetric: bool, blocksize: int
                          ) -> tuple[torch.Tensor, torch.Tensor, QParams]:
    """:func:`_gptq_columns` on a stack ``W`` (L, O, I) with factors ``U`` (L, I, I).

    The same steps with a leading layer axis, written for speed: the lazy batch is a copy
    ``W1``, the rank-1 update a batched outer product, and only later columns are updated.
    The group parameters come back with scale (L, O, G).
    """
    I = W.shape[-1]  # noqa: E741
    qp = None if group_size is not None else _stacked_row_qparams(W, bits, symmetric)
    groups = [qp] if qp is not None else []
    Q, Losses = torch.zeros_like(W), torch.zeros_like(W)
    for i1 in range(0, I, blocksize):
        i2 = min(i1 + blocksize, I)
        W1, U1 = W[..., i1:i2].clone(), U[:, i1:i2, i1:i2]     # (L, O, B), (L, B, B)
        Err1 = torch.zeros_like(W1)
        for i in range(i2 - i1):
            col = i1 + i
            if group_size is not None and col % group_size == 0:
                # The group's columns as the updates so far have left them: at a block start
                # they are in W (all lazy updates applied); inside a block, in W1.
                src = W[..., col : col + group_size] if i == 0 else W1[..., i : i + group_size]
                qp = _stacked_row_qparams(src, bits, symmetric)
                groups.append(qp)
            w = W1[..., i : i + 1]                               # (L, O, 1)
            q = fake_quantize_view(w, qp)
            Q[..., col : col + 1] = q
            err = Err1[..., i : i + 1]
            torch.div(w - q, U1[:, i, i, None, None], out=err)            # Err_j of (3)
            W1[..., i + 1 :] -= err.bmm(U1[:, i : i + 1, i + 1 :])        # later columns
        Losses[..., i1:i2] = Err1.square() / 2
        W[..., i2:] -= Err1.bmm(U[:, i1:i2, i2:])                 # lazy batch update
    return Q, Losses, _concat_groups(groups)


# ---------------------------------------------------------------------------------------------
# a whole model
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def collect_hessians(
    model: nn.Module,
    names: list[str] | dict[str, nn.Linear],
    batches: torch.Tensor,
    batch_size: int = 4,
) -> dict[str, torch.Tensor]:
    """``H = 2 X Xᵀ / n`` (float32, (I, I)) for every named linear, from one pass over ``batches``.

    All layers see the float model's activations (no sequential quantization): cheap, and
    the Hessians can be reused for several bit widths. Memory: one (I, I) matrix per layer.
    The sums are those of :class:`~inwhale.llm.harness.GramAccumulator`.
    """
    gram = GramAccumulator()
    for_each_linear_input(model, names, batches, gram.add, batch_size)
    return {n: 2 * xtx for n, xtx in gram.mean().items()}


def _shared_input_groups(linears: dict[str, nn.Linear],
                         Hs: dict[str, torch.Tensor]) -> list[list[str]]:
    """Group a block's linears whose Hessians are identical (they read the same input).

    In a LLaMA block that is ``[q, k, v], [o], [gate, up], [down]``; found by comparing the
    Hessians, not by names, so any architecture works. GPTQ treats rows independently, so one
    solve of a group's stacked rows equals separate solves.

    >>> lins = {n: nn.Linear(2, 2) for n in "abc"}
    >>> _shared_input_groups(lins, {"a": torch.eye(2), "b": torch.ones(2, 2), "c": torch.eye(2)})
    [['a', 'c'], ['b']]
    """
    groups: list[list[str]] = []
    for name in linears:
        for g in groups:
            if Hs[g[0]].shape == Hs[name].shape and torch.equal(Hs[g[0]], Hs[name]):
                g.append(name)
                break
        else:
            groups.append([name])
    return groups


def _write_back(linears: dict[str, nn.Linear], names: list[str], res: GPTQResult,
                report: QuantReport) -> None:
    """Copy the stacked rows of ``res`` back into the linears ``names``; record their losses."""
    rows = 0
    for n in names:
        weight = linears[n].weight
        out = weight.shape[0]
        weight.copy_(res.Q[rows : rows + out].to(weight.dtype))
        report.layers.append(n)
        report.details["loss"][n] = float(res.losses[rows : rows + out].sum())
        rows += out


def _data_flow_groups(block: nn.Module, records: BlockInputs,
                      linears: dict[str, nn.Linear]) -> list[list[str]]:
    """The block's linears in the order its forward pass calls them, those that read the same
    input tensor together: ``[q, k, v], [o], [gate, up], [down]`` in a LLaMA block.

    Found by running the block on the first record with input hooks, not by names. A tensor is
    recognised by its storage address, shape, strides and dtype; every input seen is held until
    the end, so no later tensor can reuse an address (the rule of
    :class:`~inwhale.llm.harness.LastInputMemo`).

    Raises:
        RuntimeError: a linear of the block is never called (it would stay unquantized).
    """
    seen: list[tuple[torch.Tensor, list[str]]] = []

    def note(name: str, x: torch.Tensor) -> None:
        if any(name in names for _, names in seen):        # a linear called twice
            return
        for x0, names in seen:
            if (x0.data_ptr(), x0.shape, x0.stride(), x0.dtype) == (
                    x.data_ptr(), x.shape, x.stride(), x.dtype):
                names.append(name)
                return
        seen.append((x, [name]))

    run_block(block, records[:1], linears, note)
    groups = [names for _, names in seen]
    missing = [n for n in linears if not any(n in g for g in groups)]
    if missing:
        raise RuntimeError(f"true-sequential GPTQ: the block never calls {missing}")
    return groups


def _block_hessians(block: nn.Module, records: BlockInputs, linears: dict[str, nn.Linear],
                    stop_after: str | None = None) -> dict[str, torch.Tensor]:
    """``H = 2 XᵀX / n`` of the given linears, from one run of ``block`` over ``records``
    (cut short once linear ``stop_after`` has been reached: the rest is not needed)."""
    gram = GramAccumulator()
    run_block(block, records, linears, gram.add, stop_after)
    return {n: 2 * xtx for n, xtx in gram.mean().items()}


def _solve_groups(linears: dict[str, nn.Linear], groups: list[list[str]],
                  Hs: dict[str, torch.Tensor], solve: dict, report: QuantReport) -> None:
    """GPTQ on each group of linears that share a Hessian (their rows stacked), written back."""
    for names in groups:
        W = torch.cat([linears[n].weight for n in names])
        res = gptq_quantize_weight(W, Hs[names[0]].to(W.device), name=" + ".join(names),
                                   **solve)
        _write_back(linears, names, res, report)


def _gptq_block_by_block_(model: nn.Module, records: BlockInputs | None,
                          hessians: dict[str, torch.Tensor] | None, solve: dict,
                          report: QuantReport, progress: bool,
                          true_sequential: bool = False) -> None:
    """The paper's procedure: per block, Hessians from its inputs (unless given), solve each
    group of linears, then run the quantized block to get the next block's inputs.

    ``true_sequential``: the groups are solved in data-flow order, each group's Hessian
    collected from a fresh run of the block in which the earlier groups are already quantized
    (``records`` required)."""
    from inwhale._optional import tqdm

    for block in tqdm(decoder_blocks(model), desc="GPTQ blocks", disable=not progress):
        linears = block_linears(model, block)
        if true_sequential:
            for names in _data_flow_groups(block, records, linears):
                subset = {n: linears[n] for n in names}
                Hs = _block_hessians(block, records, subset, stop_after=names[-1])
                _solve_groups(subset, [names], Hs, solve, report)
        else:
            Hs = hessians if records is None else _block_hessians(block, records, linears)
            _solve_groups(linears, _shared_input_groups(linears, Hs), Hs, solve, report)
        if records is not None:
            records = run_block(block, records)


def _gptq_batched_(model: nn.Module, hessians: dict[str, torch.Tensor], solve: dict,
                   report: QuantReport, progress: bool) -> None:
    """Hessians given, no act-order: every block is independent, so the same-shape problems
    of all blocks share one column loop (:func:`gptq_quantize_weights`)."""
    from inwhale._optional import tqdm

    buckets: dict[tuple[int, int], list[tuple[list[str], dict[str, nn.Linear]]]] = {}
    for block in decoder_blocks(model):
        linears = block_linears(model, block)
        for names in _shared_input_groups(linears, hessians):
            shape = (sum(linears[n].out_features for n in names),
                     linears[names[0]].in_features)
            buckets.setdefault(shape, []).append((names, linears))
    for problems in tqdm(buckets.values(), desc="GPTQ layer shapes", disable=not progress):
        Ws = [torch.cat([lins[n].weight for n in names]) for names, lins in problems]
        Hs = [hessians[names[0]].to(Ws[0].device) for names, _ in problems]
        results = gptq_quantize_weights(Ws, Hs, names=[" + ".join(n) for n, _ in problems],
                                        **solve)
        for (names, lins), res in zip(problems, results, strict=True):
            _write_back(lins, names, res, report)


def _calibration_records(model: nn.Module, calib_ids: torch.Tensor | None, n_samples: int,
                         seq_len: int, batch_size: int) -> BlockInputs:
    """The first block's inputs for the calibration windows cut from ``calib_ids``."""
    if calib_ids is None:
        raise TypeError("calib_ids must be a tensor of token ids when hessians is None")
    calib_ids = _check_vocab(_as_1d_ids(calib_ids, "calib_ids"), model, "calib_ids")
    batches = calibration_batches(calib_ids, n_samples, seq_len)
    return first_block_inputs(model, batches, batch_size)


@torch.no_grad()
def gptq_quantize_(
    model: nn.Module,
    calib_ids: torch.Tensor | None,
    *,
    bits: int = 4,
    group_size: int | None = 128,
    symmetric: bool = False,
    percdamp: float = 0.01,
    act_order: bool = False,
    static_groups: bool = False,
    true_sequential: bool = False,
    n_samples: int = 32,
    seq_len: int = 256,
    batch_size: int = 8,
    hessians: dict[str, torch.Tensor] | None = None,
    progress: bool = True,
) -> QuantReport:
    """Quantize every ``nn.Linear`` of the model's blocks with GPTQ, **in place**.

    Sequential (the paper's procedure, ``hessians=None``): the inputs of block ``i`` are
    computed with blocks ``< i`` already quantized; each block is run once to collect its
    linears' Hessians and once more, quantized, to produce the next block's inputs.
    With ``true_sequential=True`` (the reference's ``--true-sequential``) the linears *inside*
    a block are sequential too: they are solved in the order the block calls them, in groups
    that read the same input (``[q, k, v], [o], [gate, up], [down]`` in LLaMA, found by
    running the block, not by names), and each group's Hessian is collected from a new run of
    the block with the earlier groups quantized (four runs, not one, per LLaMA block).
    With precomputed ``hessians`` (from :func:`collect_hessians`) each linear is solved from
    its float-model Hessian (all blocks at once by :func:`gptq_quantize_weights` if it can).

    Only the fake-quantized weights stay in the model. :mod:`inwhale.llm.storage` has no
    ``g_idx`` (it recomputes contiguous groups), so it cannot store exactly a layer quantized
    with act-order and dynamic groups (scattered columns, see :class:`GPTQResult`).

    Args:
        model: a causal LM (ids (B, T) -> logits); its blocks are
            :func:`~inwhale.llm.harness.decoder_blocks`.
        calib_ids: 1-D calibration token ids (cut by :func:`calibration_batches` into
            ``n_samples`` windows of ``seq_len``); may be ``None`` when ``hessians`` is given.
        bits, group_size, symmetric, percdamp, act_order, static_groups: see
            :func:`gptq_quantize_weight`.
        true_sequential: quantize the linears of a block group by group in data-flow order,
            recollecting each group's Hessian (needs ``hessians=None``).
        n_samples, seq_len: calibration windows.
        batch_size: calibration windows per forward pass.
        hessians: ``{linear name: H}`` to skip the calibration pass.
        progress: tqdm bar over blocks.

    Returns:
        :class:`~inwhale.llm.harness.QuantReport` with method ``"gptq"``, the layers in model
        order, settings ``bits``, ``group_size``, ``act_order``, ``static_groups``,
        ``true_sequential`` and details ``loss`` (``loss[name]``: the summed OBS loss of that
        layer).

    Raises:
        ValueError: bad ``bits``/``group_size``, neither ``calib_ids`` nor ``hessians``, or
            ``true_sequential`` with ``hessians``.
    """
    check_bits(bits)
    check_group_size(group_size)
    if true_sequential and hessians is not None:
        raise ValueError("true_sequential=True recollects every Hessian from the calibration "
                         "data; pass hessians=None (and calib_ids)")
    t0 = time.perf_counter()
    report = QuantReport("gptq", [], 0.0, dict(
        bits=bits, group_size=group_size, act_order=act_order, static_groups=static_groups,
        true_sequential=true_sequential), {"loss": {}})
    solve = dict(bits=bits, group_size=group_size, symmetric=symmetric, percdamp=percdamp)
    if hessians is not None and not act_order and not static_groups:
        _gptq_batched_(model, hessians, solve, report, progress)
    else:
        records = None if hessians is not None else _calibration_records(
            model, calib_ids, n_samples, seq_len, batch_size)
        solve.update(act_order=act_order, static_groups=static_groups)
        _gptq_block_by_block_(model, records, hessians, solve, report, progress,
                              true_sequential)
    order = {n: k for k, n in enumerate(block_linears(model))}
    report.layers.sort(key=order.__getitem__)
    report.seconds = time.perf_counter() - t0
    return report
