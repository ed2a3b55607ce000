"""QLoRA: a frozen NF4 base weight plus small trainable low-rank adapters (LoRA).

References: Hu, Shen, Wallis, Allen-Zhu, Li, Wang, Wang, Chen, "LoRA: Low-Rank Adaptation of
Large Language Models", ICLR 2022 (arXiv 2021); Dettmers, Pagnoni, Holtzman, Zettlemoyer,
"QLoRA: Efficient Finetuning of Quantized LLMs", NeurIPS 2023.

**LoRA.** A pre-trained linear layer ``y = x Wᵀ + b`` is frozen and a low-rank update
``ΔW = B A`` is learned instead, with ``A`` of shape ``(r, I)`` and ``B`` of shape ``(O, r)``:

    y = x Wᵀ + b + (α / r) · (x Aᵀ) Bᵀ

``A`` starts random (Kaiming-uniform as in the reference code, or Gaussian), ``B`` starts at
zero, so training starts *exactly* at the pre-trained model. Only ``r (I + O)`` numbers train
instead of ``O · I``; ``α / r`` keeps the update's size comparable when ``r`` changes.

**QLoRA.** The frozen ``W`` is stored in 4-bit NormalFloat (:mod:`inwhale.formats.nf4`):
blocks of ``B = 64`` consecutive weights (flattened row-major) share one absmax ``c``, each
weight keeps a 4-bit code, ``Ŵ = c · NF[code]``. Here the codes are *packed* two per byte
with :func:`inwhale.core.pack_codes` (code ``2k`` in the low nibble of byte ``k``), so the
module really holds ``O·I/2`` bytes of codes, not a float copy. Every forward pass
dequantizes ``Ŵ`` on the fly; gradients flow through ``Ŵ`` to ``x`` (and so to adapters of
earlier layers) but never into ``Ŵ``:

    y = x Ŵᵀ + b + (α / r) · (x Aᵀ) Bᵀ,     Ŵ = c ⊙ NF[unpack(codes)]

Storage of the base weight: 4 + 32/64 = 4.5 bits per weight, or 4 + 8/64 + 32/(64·256) ≈
4.127 with double quantization (the block constants themselves in FP8, blocks of 256).

Glossary: ``W`` weight ``(O, I)``; ``Ŵ`` its NF4 dequantization; ``A`` ``(r, I)``, ``B``
``(O, r)`` adapters; ``r`` rank; ``α`` (``alpha``) LoRA scale numerator; ``B`` also the NF4
block size (64) where the context says so; ``c`` block absmax.

Example — a layer whose adapter is still zero computes exactly the NF4 linear:

>>> lin = nn.Linear(64, 32)
>>> q = QLoRALinear.from_linear(lin, rank=4, alpha=8)
>>> x = torch.randn(5, 64)
>>> bool(torch.equal(q(x), F.linear(x, q.dequantize_weight(), lin.bias)))
True
>>> q.weight_nbytes            # 2048 codes in 1024 bytes + 32 float32 block constants
1152
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from inwhale.core import pack_codes
from inwhale.core.checks import check_module, check_tensor
from inwhale.formats.minifloat import FP8_E4M3, minifloat_decode
from inwhale.formats.nf4 import nf4_quantize, nf4_values

__all__ = ["NF4Linear", "QLoRALinear", "lora_parameters", "prepare_qlora_", "train_lora"]


def _byte_pair_table(values: torch.Tensor) -> torch.Tensor:
    """``(256, 2)`` table: byte ``b`` holds codes ``(b & 15, b >> 4)`` → their two values.

    One gather on the packed bytes then decodes two weights at once (the layout is the one of
    :func:`inwhale.core.pack_codes`: the first code in the low bits).
    """
    b = torch.arange(256)
    return torch.stack([values[b & 15], values[b >> 4]], dim=1)


class NF4Linear(nn.Module):
    """A frozen linear layer whose weight is stored as packed NF4 codes (no adapter).

    Buffers (they move with ``.to(device)`` and are saved in the ``state_dict``):
        ``packed``: uint8 ``(ceil(O·I/2),)``, two 4-bit codes per byte;
        ``absmax``: float32 ``(n_blocks,)`` block constants ``c`` — or, with
        ``double_quant``, ``absmax_q8`` (FP8 E4M3 codes of ``c − μ``), ``absmax_c2`` (one
        float32 per 256 blocks) and ``absmax_mu`` (one float32) instead;
        ``bias``: the float bias (frozen), or ``None``.

    Args:
        weight: ``(O, I)`` float weight to quantize (not kept).
        bias: ``(O,)`` or ``None``.
        block_size: NF4 block ``B`` (64 in QLoRA).
        double_quant: quantize the block constants too (QLoRA's double quantization).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 block_size: int = 64, double_quant: bool = False) -> None:
        super().__init__()
        check_tensor(weight, "weight")
        if weight.ndim != 2:
            raise ValueError("weight must be a 2-D tensor (out_features, in_features)")
        self.out_features, self.in_features = weight.shape
        self.block_size, self.double_quant = block_size, double_quant
        self.block_size2 = 256  # QLoRA's second-level block (double quantization)
        nf = nf4_quantize(weight.detach(), block_size=block_size, double_quant=double_quant,
                          block_size2=self.block_size2)
        self.register_buffer("packed", pack_codes(nf.codes, bits=4))
        if nf.dq is None:
            self.register_buffer("absmax", nf.absmax.clone())
        else:
            q8, c2, mu = nf.dq
            n_blocks = nf.absmax.numel()  # q8 is padded to whole blocks of 256: trim it
            self.register_buffer("absmax_q8", q8.flatten()[:n_blocks].to(torch.uint8))
            self.register_buffer("absmax_c2", c2.float())
            self.register_buffer("absmax_mu", mu.float().reshape(()))
        table = _byte_pair_table(nf4_values()).to(weight.device)
        self.register_buffer("pair_table", table, persistent=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(),
                                                          requires_grad=False)

    @classmethod
    def from_linear(cls, linear: nn.Linear, block_size: int = 64,
                    double_quant: bool = False, **kwargs: object) -> NF4Linear:
        """Build from an ``nn.Linear`` (its weight is quantized, its bias copied)."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
        return cls(linear.weight, linear.bias, block_size=block_size,
                   double_quant=double_quant, **kwargs)

    def block_absmax(self) -> torch.Tensor:
        """The block constants ``c`` (float32), decoded from FP8 under double quantization:
        ``ĉ = decode(q8) / 448 · c₂ + μ`` (the inverse of
        :func:`inwhale.formats.nf4.double_quantize_absmax`)."""
        if not self.double_quant:
            return self.absmax
        scaled = minifloat_decode(self.absmax_q8, FP8_E4M3) / FP8_E4M3.max_finite  # (n_blocks,)
        c2 = self.absmax_c2.repeat_interleave(self.block_size2)[: scaled.numel()]  # one per block
        return scaled * c2 + self.absmax_mu

    def dequantize_weight(self) -> torch.Tensor:
        """``Ŵ = c · NF[code]`` as a float32 ``(O, I)`` tensor, rebuilt from the packed bytes."""
        n = self.out_features * self.in_features
        pairs = self.pair_table.index_select(0, self.packed.int())  # (n_bytes, 2) NF values
        w = pairs.flatten()[:n]  # (n,) in the original (row-major) order, a fresh tensor
        if n % self.block_size:  # a short last block: pad it with zeros
            w = F.pad(w, (0, -n % self.block_size))
        w.view(-1, self.block_size).mul_(self.block_absmax()[:, None])  # (n_blocks, B) · c
        return w[:n].view(self.out_features, self.in_features)

    @property
    def weight_nbytes(self) -> int:
        """Bytes stored for the base weight: packed codes plus the block constants."""
        if not self.double_quant:
            return self.packed.numel() + 4 * self.absmax.numel()
        return self.packed.numel() + self.absmax_q8.numel() + 4 * self.absmax_c2.numel() + 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x Ŵᵀ + b`` with ``Ŵ`` dequantized now (in ``x``'s dtype)."""
        return F.linear(x, self.dequantize_weight().to(x.dtype), self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"block_size={self.block_size}, double_quant={self.double_quant}")


class QLoRALinear(NF4Linear):
    """:class:`NF4Linear` plus trainable LoRA adapters ``A`` ``(r, I)`` and ``B`` ``(O, r)``.

    ``y = x Ŵᵀ + b + (α/r)·(x Aᵀ) Bᵀ``. Only ``lora_A`` and ``lora_B`` are parameters that
    require grad.

    Args:
        weight, bias, block_size, double_quant: as in :class:`NF4Linear`.
        rank: ``r >= 1``.
        alpha: ``α > 0``; the update is scaled by ``α / r``.
        init: ``"kaiming"`` (``A`` Kaiming-uniform with ``a = √5``, as ``nn.Linear`` and
            the LoRA reference code) or ``"gaussian"`` (``A ~ N(0, 1/r²)``).
        generator: optional CPU ``torch.Generator`` for a reproducible ``A``.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 block_size: int = 64, double_quant: bool = False, rank: int = 8,
                 alpha: float = 16.0, init: str = "kaiming",
                 generator: torch.Generator | None = None) -> None:
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
            raise ValueError(f"rank must be an int >= 1, got {rank!r}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        if init not in ("kaiming", "gaussian"):
            raise ValueError(f"init must be 'kaiming' or 'gaussian', got {init!r}")
        super().__init__(weight, bias, block_size=block_size, double_quant=double_quant)
        self.rank, self.alpha, self.scaling = rank, float(alpha), float(alpha) / rank
        a = torch.empty(rank, self.in_features)  # drawn on the CPU (generator), then moved
        if init == "kaiming":
            nn.init.kaiming_uniform_(a, a=math.sqrt(5), generator=generator)
        else:
            nn.init.normal_(a, std=1 / rank, generator=generator)
        self.lora_A = nn.Parameter(a.to(weight.device))  # (r, I)
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, device=weight.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x Ŵᵀ + b + (α/r)·(x Aᵀ) Bᵀ``."""
        update = F.linear(F.linear(x, self.lora_A), self.lora_B)  # (..., r) → (..., O)
        return super().forward(x) + self.scaling * update

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rank={self.rank}, alpha={self.alpha}"


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    """True if a pattern equals ``name`` or is a whole dotted prefix or suffix of it."""
    return any(name == p or name.startswith(p + ".") or name.endswith("." + p)
               for p in patterns)


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The adapter parameters (``lora_A``, ``lora_B``) of every :class:`QLoRALinear`."""
    check_module(model, "model")
    return [p for m in model.modules() if isinstance(m, QLoRALinear)
            for p in (m.lora_A, m.lora_B)]


@torch.no_grad()
def prepare_qlora_(model: nn.Module, rank: int = 8, alpha: float = 16.0,
                   targets: str | Iterable[str] = ("q_proj", "v_proj"),
                   skip: str | Iterable[str] = ("lm_head",), block_size: int = 64,
                   double_quant: bool = False, init: str = "kaiming", seed: int = 0) -> dict:
    """Turn ``model`` into a QLoRA model, in place.

    Every ``nn.Linear`` found by :func:`inwhale.llm.harness.find_linears` (minus ``skip``)
    is replaced: those matching ``targets`` by a :class:`QLoRALinear`, the others by a frozen
    :class:`NF4Linear`. Then *every* parameter of the model is frozen except the adapters.
    A target matches a layer whose name equals it or has it as a dotted suffix or prefix
    (``"q_proj"``; ``"model.layers.29"`` for all of block 29).

    Returns:
        ``{"nf4_layers", "lora_layers", "trainable_params", "frozen_params", "base_nbytes",
        "float32_nbytes", "adapter_nbytes"}``: the bytes are those of the replaced weights as
        stored now (NF4), as float32 before, and of the adapters (float32).

    Raises:
        ValueError: if no linear matches ``targets`` (the message lists a few names).

    Example:
        >>> net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))
        >>> rep = prepare_qlora_(net, rank=4, targets=("0",), skip=())
        >>> type(net[0]).__name__, type(net[2]).__name__, rep["trainable_params"]
        ('QLoRALinear', 'NF4Linear', 512)
    """
    from inwhale.llm.harness import find_linears

    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    linears = find_linears(model, skip)
    chosen = [n for n in linears if _matches(n, targets)]
    if not chosen:
        raise ValueError(f"targets {targets} match none of the linears, e.g. "
                         f"{list(linears)[:3]}")
    gen = torch.Generator().manual_seed(seed)
    report = {"nf4_layers": 0, "lora_layers": 0, "base_nbytes": 0, "float32_nbytes": 0}
    for name, lin in linears.items():
        if name == "":
            raise ValueError("model itself is an nn.Linear; wrap it in a module first")
        if name in chosen:
            new = QLoRALinear.from_linear(lin, block_size, double_quant, rank=rank,
                                          alpha=alpha, init=init, generator=gen)
            report["lora_layers"] += 1
        else:
            new = NF4Linear.from_linear(lin, block_size, double_quant)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, new)
        report["nf4_layers"] += 1
        report["base_nbytes"] += new.weight_nbytes
        report["float32_nbytes"] += 4 * lin.weight.numel()
    for p in model.parameters():
        p.requires_grad_(False)
    adapters = lora_parameters(model)
    for p in adapters:
        p.requires_grad_(True)
    report["trainable_params"] = sum(p.numel() for p in adapters)
    report["frozen_params"] = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    report["adapter_nbytes"] = 4 * report["trainable_params"]
    return report


def train_lora(model: nn.Module, batches: torch.Tensor, steps: int, lr: float = 1e-3,
               batch_size: int = 2, weight_decay: float = 0.0) -> list[float]:
    """Train the parameters that require grad with AdamW on next-token prediction.

    Loss per step: mean cross-entropy of ``logits[:, t]`` against ``ids[:, t + 1]``. Step ``k``
    uses rows ``k·batch_size …`` of ``batches`` (cycling). The model is in train mode during
    the loop and its previous mode is restored afterwards.

    Args:
        model: a causal LM ``(B, T) → logits``, e.g. after :func:`prepare_qlora_`.
        batches: ``(n, T)`` token ids, e.g. from
            :func:`inwhale.llm.harness.calibration_batches`.
        steps: optimizer steps, ``>= 1``.
        lr, weight_decay: AdamW settings.
        batch_size: sequences per step.

    Returns:
        The training loss of every step (floats, before that step's update).
    """
    from inwhale.llm.harness import _check_batches, _forward_logits, _model_device

    check_module(model, "model")
    batches = _check_batches(batches, model)
    if not isinstance(steps, int) or not isinstance(batch_size, int):
        raise TypeError(f"steps and batch_size must be ints, got {steps!r} and {batch_size!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameter that requires grad; call prepare_qlora_ first")
    if batches.ndim != 2 or batches.shape[1] < 2:
        raise ValueError(f"batches must have shape (n, T) with T >= 2, got {tuple(batches.shape)}")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    device, was_training, losses = _model_device(model), model.training, []
    model.train()
    try:
        for k in range(steps):
            rows = torch.arange(k * batch_size, (k + 1) * batch_size) % batches.shape[0]
            ids = batches[rows].to(device)  # (b, T)
            logits = _forward_logits(model, ids)[:, :-1]  # (b, T-1, V)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        model.train(was_training)
    return losses
