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
``group_size`` consecutive columns their own scale and zero point, computed when the
quantizer reaches the group, from the weights as the error updates have left them.

Glossary: ``W`` weight (rows = outputs, cols = inputs); ``X`` layer inputs; ``H = 2XXᵀ/n``
Hessian (averaged over n tokens); ``Hinv`` upper Cholesky factor of (H + λI)⁻¹; ``Q``
quantized weight; ``Err`` scaled errors of a block; ``Losses`` the per-weight OBS loss
``(w − q)² / Hinv_jj² / 2``; ``perm`` act-order permutation.

Scale and zero point always come from :func:`inwhale.choose_qparams` (per row, for the group or
the whole row), and every column is rounded with :func:`inwhale.fake_quantize`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from inwhale.core.affine import fake_quantize_view
from inwhale.core.granularity import PerAxis, PerGroup
from inwhale.core.qparams import QParams, choose_qparams
from inwhale.llm import rtn as _rtn
from inwhale.llm.harness import (
    LastInputMemo,
    _forward_logits,
    _model_device,
    calibration_batches,
    find_linears,
    for_each_linear_input,
)

__all__ = [
    "GPTQResult",
    "collect_hessians",
    "decoder_blocks",
    "gptq_quantize_",
    "gptq_quantize_weight",
    "gptq_quantize_weights",
    "rtn_quantize_",
    "rtn_weight",
]


def _check_bits_group(bits: int, group_size: int | None, in_features: int) -> None:
    if not isinstance(bits, int) or not 1 <= bits <= 16:
        raise ValueError(f"bits must be an int in [1, 16], got {bits!r}")
    if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
        raise ValueError(f"group_size must be a positive int or None, got {group_size!r}")
    if group_size is not None and group_size > in_features:
        raise ValueError(f"group_size={group_size} exceeds in_features={in_features}")


def rtn_weight(
    W: torch.Tensor, *, bits: int, group_size: int | None = 128, symmetric: bool = False
) -> torch.Tensor:
    """Round-to-nearest baseline: min–max qparams per row (``group_size=None``) or per group.

    ``Ŵ = fake_quantize(W, choose_qparams(W, granularity=PerGroup(g)))``; shape (O, I) kept.

    >>> W = torch.tensor([[0.0, 0.4, 1.0, -1.0]])
    >>> rtn_weight(W, bits=2, group_size=2)   # group 2: s = 2/3, z = round(1.5) = 2 (ties even)
    tensor([[ 0.0000,  0.4000,  0.6667, -1.3333]])
    """
    _check_bits_group(bits, group_size, W.shape[-1])
    return _rtn.rtn_weight(W, bits, group_size, axis=0, symmetric=symmetric)  # the one RTN


@dataclass
class GPTQResult:
    """Output of :func:`gptq_quantize_weight`.

    Attributes:
        Q: the quantized (fake-quantized, float) weight, shape (O, I), original column order.
        losses: OBS loss per weight ``(w − q)²/Hinv_jj²/2``, shape (O, I), original order.
        perm: the act-order permutation used (``None`` without act-order).
    """

    Q: torch.Tensor
    losses: torch.Tensor
    perm: torch.Tensor | None


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


def _column_qparams(
    W: torch.Tensor, bits: int, symmetric: bool
) -> QParams:
    """Per-row qparams of a block of columns ``W`` (L, O, k) from the core: scale (L, O, 1).

    Every row of every layer is one row for :func:`inwhale.choose_qparams` (``PerAxis(0)``
    on the ``(L·O, k)`` view); the result is shaped back to broadcast against ``(L, O, 1)``.
    """
    n_layers, n_rows, k = W.shape
    qp = choose_qparams(W.reshape(n_layers * n_rows, k), bits=bits, symmetric=symmetric,
                        granularity=PerAxis(0))
    shape = (n_layers, n_rows, 1)
    return QParams(qp.scale.view(shape), qp.zero_point.view(shape), qp.qmin, qp.qmax,
                   PerAxis(0), bits)


def _prepare(W: torch.Tensor, H: torch.Tensor, bits: int, group_size: int | None,
             percdamp: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate one layer's ``W`` (O, I) and ``H`` (I, I); float32 copies, dead columns fixed."""
    I = W.shape[1]  # noqa: E741
    _check_bits_group(bits, group_size, I)
    if H.shape != (I, I):
        raise ValueError(f"H must have shape ({I}, {I}) for W of shape {tuple(W.shape)}")
    if percdamp < 0:
        raise ValueError(f"percdamp must be >= 0, got {percdamp}")
    W, H = W.detach().clone().float(), H.detach().clone().float()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0                                    # dead inputs: no information
    W[:, dead] = 0.0
    return W, H


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
    name: str = "weight",
) -> GPTQResult:
    """Quantize one weight matrix with GPTQ (equations (1)–(3) of the module docstring).

    Args:
        W: weight (O, I) — rows are outputs, columns inputs (``nn.Linear.weight``).
        H: Hessian (I, I), e.g. ``2 X Xᵀ / n`` from :func:`collect_hessians`.
        bits, symmetric: the integer grid (asymmetric min–max by default, as in the paper).
        group_size: columns per scale/zero point; ``None`` = one per row (per-channel).
        percdamp: damping λ as a fraction of mean(diag H).
        blocksize: columns per lazy batch; with groups it must divide ``group_size`` or be a
            multiple of it (otherwise it is rounded to a multiple).
        act_order: quantize columns by decreasing ``diag H``. With groups, the group
            parameters are then fixed up front from the original weights ("static groups" of
            the reference code), so that groups stay contiguous in the original order.
        name: layer name used in error messages.

    Returns:
        :class:`GPTQResult` with ``Q`` in ``W``'s dtype and device.

    Edge cases: with ``H = c·I`` no error is propagated (``Hinv`` is diagonal) and GPTQ is
    exactly round-to-nearest. A column with ``H_jj = 0`` is zeroed (its input is always 0).

    >>> W = torch.tensor([[1.0, -0.3, 0.2, 0.7]])
    >>> torch.equal(gptq_quantize_weight(W, torch.eye(4), bits=2, group_size=None).Q,
    ...             rtn_weight(W, bits=2, group_size=None))
    True
    """
    W, H = _prepare(W, H, bits, group_size, percdamp)
    static = None
    if act_order and group_size is not None:              # static groups, original order
        static = choose_qparams(W, bits=bits, symmetric=symmetric,
                                granularity=PerGroup(group_size))
    perm = None
    if act_order:
        perm = torch.argsort(torch.diag(H), descending=True)
        W, H = W[:, perm], H[perm][:, perm]
    Hinv = _inverse_hessian_factor(H, percdamp, name)      # (I, I) upper triangular
    Q, Losses = _solve(W[None], Hinv[None], bits, group_size, symmetric, blocksize,
                       static, perm)
    Q, Losses = Q[0], Losses[0]
    if perm is not None:
        inv = torch.argsort(perm)
        Q, Losses = Q[:, inv], Losses[:, inv]
    return GPTQResult(Q, Losses, perm)


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
    last bit).

    >>> W = torch.tensor([[1.0, -0.3, 0.2, 0.7]])
    >>> H = torch.tensor([[2.0, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    >>> a, b = gptq_quantize_weights([W, 2 * W], [torch.eye(4), H], bits=2, group_size=None)
    >>> torch.equal(a.Q, gptq_quantize_weight(W, torch.eye(4), bits=2, group_size=None).Q)
    True
    """
    if len(Ws) != len(Hs) or not Ws:
        raise ValueError(f"Ws and Hs must be non-empty lists of equal length, got {len(Ws)} "
                         f"and {len(Hs)}")
    if len({tuple(W.shape) for W in Ws}) != 1:
        raise ValueError("all weights in Ws must have the same shape; got "
                         f"{sorted({tuple(W.shape) for W in Ws})}")
    names = names or [f"weight {k}" for k in range(len(Ws))]
    prepared = [_prepare(W, H, bits, group_size, percdamp) for W, H in zip(Ws, Hs, strict=True)]
    W = torch.stack([w for w, _ in prepared])                              # (L, O, I)
    Hinv = torch.stack([_inverse_hessian_factor(h, percdamp, n)
                        for (_, h), n in zip(prepared, names, strict=True)])  # (L, I, I)
    Q, Losses = _solve(W, Hinv, bits, group_size, symmetric, blocksize, None, None)
    return [GPTQResult(Q[k], Losses[k], None) for k in range(len(Ws))]


def _solve(W: torch.Tensor, Hinv: torch.Tensor, bits: int, group_size: int | None,
           symmetric: bool, blocksize: int, static: QParams | None,
           perm: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the column loop on ``W`` (L, O, I) with factors ``Hinv`` (L, I, I); (Q, Losses)."""
    if group_size is not None and group_size % blocksize and blocksize % group_size:
        blocksize = group_size * max(1, blocksize // group_size)   # groups must not straddle
    qp = None if group_size is not None else _column_qparams(W, bits, symmetric)
    Q, Losses = torch.zeros_like(W), torch.zeros_like(W)
    with _intra_op_threads(1, W.device):
        _column_loop(W, Hinv, Q, Losses, qp, static, perm, bits, group_size, symmetric, blocksize)
    return Q, Losses


def _column_loop(W: torch.Tensor, Hinv: torch.Tensor, Q: torch.Tensor, Losses: torch.Tensor,
                 qp: QParams | None, static: QParams | None, perm: torch.Tensor | None,
                 bits: int, group_size: int | None, symmetric: bool, blocksize: int) -> None:
    """Equation (3) with lazy batches; fills ``Q`` and ``Losses`` in place (permuted order).

    All tensors carry a leading layer axis ``L`` (1 for a single matrix): ``W`` (L, O, I),
    ``Hinv`` (L, I, I). The inner loop is a few small ops per column, so it is written for
    speed: the column is rounded by the core's unchecked
    :func:`~inwhale.core.fake_quantize_view` (same arithmetic as ``fake_quantize``), the rank-1
    update is a batched outer product, and the OBS losses ``(w − q)²/d²/2 = Err²/2`` are
    computed for the whole block at once.
    """
    I = W.shape[-1]  # noqa: E741
    for i1 in range(0, I, blocksize):
        i2 = min(i1 + blocksize, I)
        W1, Hinv1 = W[..., i1:i2].clone(), Hinv[:, i1:i2, i1:i2]   # (L, O, B), (L, B, B)
        Err1 = torch.zeros_like(W1)
        for i in range(i2 - i1):
            col = i1 + i
            if static is not None:                         # group of the original column
                g = int(perm[col]) // group_size
                qp = QParams(static.scale[None, :, g], static.zero_point[None, :, g],
                             static.qmin, static.qmax, PerAxis(0), bits)
            elif group_size is not None and col % group_size == 0:
                # The group's columns as the updates so far have left them: at a block start
                # they are in W (all lazy updates applied); inside a block, in W1.
                src = W[..., col : col + group_size] if i == 0 else W1[..., i : i + group_size]
                qp = _column_qparams(src, bits, symmetric)
            w = W1[..., i : i + 1]                           # (L, O, 1)
            q = fake_quantize_view(w, qp)                    # the core rounds the column
            Q[..., col : col + 1] = q
            err = Err1[..., i : i + 1]
            torch.div(w - q, Hinv1[:, i, i, None, None], out=err)          # Err_j of (3)
            W1[..., i + 1 :] -= err.bmm(Hinv1[:, i : i + 1, i + 1 :])      # later columns
        Losses[..., i1:i2] = Err1.square() / 2
        W[..., i2:] -= Err1.bmm(Hinv[:, i1:i2, i2:])        # lazy batch update


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
    """
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    xtx = LastInputMemo(lambda x: x.float().T @ x.float())   # q/k/v share one product

    def accumulate(name: str, x: torch.Tensor) -> None:
        sums[name] = sums.get(name, 0) + xtx(x)                # (I, I)
        counts[name] = counts.get(name, 0) + x.shape[0]

    for_each_linear_input(model, names, batches, accumulate, batch_size)
    return {n: 2 * sums[n] / counts[n] for n in sums}


def decoder_blocks(model: nn.Module) -> nn.ModuleList:
    """The model's stack of transformer blocks: the longest ``nn.ModuleList`` holding linears.

    Found by structure, not class names (``model.model.layers`` for LLaMA, ``transformer.h``
    for GPT-2, ``model.decoder.layers`` for OPT).

    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(2, 2)) for _ in range(3))
    >>> len(decoder_blocks(Net()))
    3
    """
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) > 0
             and any(isinstance(s, nn.Linear) for s in m.modules())]
    if not lists:
        raise ValueError("model has no nn.ModuleList of blocks containing nn.Linear layers")
    return max(lists, key=len)


class _intra_op_threads:
    """Context manager: run torch CPU ops on ``n`` threads, then restore the previous count.

    GPTQ's column loop is thousands of tiny ops; on a CPU, spreading each over several threads
    only adds synchronization (10x slower on a busy 2-core machine), so the loop runs on one.
    """

    def __init__(self, n: int, device: torch.device) -> None:
        self.n, self.active = n, device.type == "cpu"

    def __enter__(self) -> None:
        if self.active:
            self.previous = torch.get_num_threads()
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        if self.active:
            torch.set_num_threads(self.previous)


class _StopForward(Exception):
    """Raised by the catcher hook once the first block's inputs are recorded."""


def _first_block_inputs(
    model: nn.Module, block: nn.Module, batches: torch.Tensor, batch_size: int
) -> list[tuple[tuple, dict]]:
    """(args, kwargs) of ``block`` for each chunk of ``batches`` (the model stops there)."""
    records: list[tuple[tuple, dict]] = []

    def catcher(module: nn.Module, args: tuple, kwargs: dict) -> None:
        records.append((args, kwargs))
        raise _StopForward

    handle = block.register_forward_pre_hook(catcher, with_kwargs=True)
    device = _model_device(model)
    try:
        for start in range(0, batches.shape[0], batch_size):
            try:
                _forward_logits(model, batches[start : start + batch_size].to(device))
            except _StopForward:
                pass
    finally:
        handle.remove()
    return records


def _run_block(block: nn.Module, records: list[tuple[tuple, dict]]) -> list[tuple[tuple, dict]]:
    """Run ``block`` on every recorded chunk; its output becomes the next block's input."""
    out = []
    for args, kwargs in records:
        y = block(*args, **kwargs)
        y = y[0] if isinstance(y, (tuple, list)) else y
        out.append(((y, *args[1:]), kwargs))
    return out


def _block_hessians(block: nn.Module, linears: dict[str, nn.Linear],
                    records: list[tuple[tuple, dict]]) -> dict[str, torch.Tensor]:
    """Run the block on its inputs and accumulate ``2XXᵀ/n`` for each of its linears."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    xtx = LastInputMemo(lambda x: x.float().T @ x.float())   # q/k/v share one product

    def hook_for(name: str) -> Callable[..., None]:
        def hook(module: nn.Linear, inputs: tuple) -> None:
            x = inputs[0].reshape(-1, module.in_features)
            sums[name] = sums.get(name, 0) + xtx(x)
            counts[name] = counts.get(name, 0) + x.shape[0]
        return hook

    handles = [m.register_forward_pre_hook(hook_for(n)) for n, m in linears.items()]
    try:
        for args, kwargs in records:
            block(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return {n: 2 * sums[n] / counts[n] for n in sums}


def _shared_input_groups(linears: dict[str, nn.Linear],
                         Hs: dict[str, torch.Tensor]) -> list[list[str]]:
    """Group a block's linears whose Hessians are identical (they read the same input).

    In a LLaMA block that is ``[q, k, v], [o], [gate, up], [down]``; found by comparing the
    Hessians, not by names, so any architecture works.

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
    n_samples: int = 32,
    seq_len: int = 256,
    batch_size: int = 8,
    hessians: dict[str, torch.Tensor] | None = None,
    progress: bool = True,
) -> dict:
    """Quantize every ``nn.Linear`` of the model's blocks with GPTQ, **in place**.

    Sequential (the paper's procedure, ``hessians=None``): the inputs of block ``i`` are
    computed with blocks ``< i`` already quantized; each block is run once to collect its
    linears' Hessians and once more, quantized, to produce the next block's inputs.
    With precomputed ``hessians`` (from :func:`collect_hessians`) the calibration pass is
    skipped and each linear is solved from its float-model Hessian.

    Args:
        model: a causal LM (ids (B, T) -> logits); its blocks are :func:`decoder_blocks`.
        calib_ids: 1-D calibration token ids (cut by :func:`calibration_batches` into
            ``n_samples`` windows of ``seq_len``); may be ``None`` when ``hessians`` is given.
        bits, group_size, symmetric, percdamp, act_order: see :func:`gptq_quantize_weight`.
        batch_size: calibration windows per forward pass.
        progress: tqdm bar over blocks.

    Returns:
        ``{"method", "bits", "group_size", "act_order", "layers", "seconds", "loss"}`` where
        ``loss[name]`` is the summed OBS loss of that layer.
    """
    from tqdm.auto import tqdm

    blocks = decoder_blocks(model)
    t0 = time.perf_counter()
    report: dict = {"method": "gptq", "bits": bits, "group_size": group_size,
                    "act_order": act_order, "layers": [], "loss": {}}
    prefix = {id(m): n for n, m in model.named_modules()}
    records = None
    if hessians is None:
        if calib_ids is None:
            raise ValueError("calib_ids is required when hessians is None")
        batches = calibration_batches(calib_ids, n_samples, seq_len)
        records = _first_block_inputs(model, blocks[0], batches, batch_size)
    def write_back(names: list[str], linears: dict[str, nn.Linear], res: GPTQResult) -> None:
        rows = 0
        for n in names:
            lin = linears[n]
            out = lin.weight.shape[0]
            lin.weight.copy_(res.Q[rows : rows + out].to(lin.weight.dtype))
            report["layers"].append(n)
            report["loss"][n] = float(res.losses[rows : rows + out].sum())
            rows += out

    # Linears fed by the same input (q/k/v, gate/up) share H: GPTQ treats rows
    # independently, so one solve of their stacked rows equals separate solves.
    if records is None and not act_order:
        # Hessians given: every block is independent, so same-shape problems of all blocks
        # share one batched column loop (gptq_quantize_weights).
        buckets: dict[tuple, list[tuple[list[str], dict[str, nn.Linear]]]] = {}
        for block in blocks:
            base = prefix[id(block)]
            linears = {f"{base}.{n}": m for n, m in find_linears(block, skip=()).items()}
            for names in _shared_input_groups(linears, hessians):
                shape = (sum(linears[n].out_features for n in names),
                         linears[names[0]].in_features)
                buckets.setdefault(shape, []).append((names, linears))
        for problems in tqdm(buckets.values(), desc="GPTQ layer shapes", disable=not progress):
            Ws = [torch.cat([lins[n].weight for n in names]) for names, lins in problems]
            Hs = [hessians[names[0]].to(Ws[0].device) for names, _ in problems]
            results = gptq_quantize_weights(
                Ws, Hs, bits=bits, group_size=group_size, symmetric=symmetric,
                percdamp=percdamp, names=[" + ".join(names) for names, _ in problems])
            for (names, lins), res in zip(problems, results, strict=True):
                write_back(names, lins, res)
        report["seconds"] = time.perf_counter() - t0
        return report

    for block in tqdm(blocks, desc="GPTQ blocks", disable=not progress):
        base = prefix[id(block)]
        linears = {f"{base}.{n}": m for n, m in find_linears(block, skip=()).items()}
        Hs = hessians if records is None else _block_hessians(block, linears, records)
        for names in _shared_input_groups(linears, Hs):
            W = torch.cat([linears[n].weight for n in names])
            res = gptq_quantize_weight(W, Hs[names[0]].to(W.device), bits=bits,
                                       group_size=group_size, symmetric=symmetric,
                                       percdamp=percdamp, act_order=act_order,
                                       name=" + ".join(names))
            write_back(names, linears, res)
        if records is not None:
            records = _run_block(block, records)
    report["seconds"] = time.perf_counter() - t0
    return report


@torch.no_grad()
def rtn_quantize_(
    model: nn.Module,
    calib_ids: torch.Tensor | None = None,
    *,
    bits: int = 4,
    group_size: int | None = 128,
    symmetric: bool = False,
    progress: bool = True,
) -> dict:
    """Round-to-nearest every linear of the model's blocks, in place (the baseline).

    ``calib_ids`` is ignored (RTN needs no data); it is there so every method has the same
    signature. Returns ``{"method", "bits", "group_size", "layers", "seconds"}``.
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    blocks = decoder_blocks(model)
    inside = {id(m) for m in blocks.modules()}
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and id(m) in inside]
    modules = dict(model.named_modules())
    for name in tqdm(names, desc="RTN", disable=not progress):
        w = modules[name].weight
        w.copy_(rtn_weight(w.float(), bits=bits, group_size=group_size,
                           symmetric=symmetric).to(w.dtype))
    return {"method": "rtn", "bits": bits, "group_size": group_size, "layers": names,
            "seconds": time.perf_counter() - t0}
