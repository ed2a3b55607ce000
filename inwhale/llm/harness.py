"""The LLM test bench: perplexity, the linears to quantize, and their calibration inputs.

Everything here is architecture-agnostic. A model is any ``nn.Module`` that maps token ids of
shape ``(B, T)`` to logits ``(B, T, V)`` (a tensor, a tuple whose first item is the logits,
or an object with ``.logits`` as transformers returns); layers are found by *type*
(``nn.Linear``), never by architecture class names. LLM methods (GPTQ, AWQ, SmoothQuant, ...)
are written against the plain ``dict[str, nn.Linear]`` of :func:`find_linears` and the
``(norm, [linears])`` pairs of :func:`norm_linear_pairs`.

Perplexity
----------
For token ids :math:`x_1..x_N` and a causal model :math:`p`,

.. math::
    \\mathrm{NLL} = -\\frac{1}{n}\\sum_{t \\in S} \\log p(x_t \\mid x_{<t}),\\qquad
    \\mathrm{PPL} = e^{\\mathrm{NLL}},

where :math:`S` is the set of scored positions and the context :math:`x_{<t}` is truncated to
the window the model sees (``context_len`` tokens). By default the windows do not overlap:
window ``k`` covers tokens ``[k L, (k+1) L)`` and scores its last ``L - 1`` tokens (the first
has no context inside the window). With ``stride < L`` windows slide and every window after
the first scores only its last ``stride`` tokens, each of which then sees at least
``L - stride`` tokens of context — slower, and a slightly lower perplexity.

Example:
    >>> import torch
    >>> from inwhale.llm.harness import perplexity
    >>> class Uniform(torch.nn.Module):            # predicts every token with p = 1/4
    ...     def forward(self, ids):
    ...         return torch.zeros(*ids.shape, 4)
    >>> print(perplexity(Uniform(), torch.tensor([0, 1, 2, 3, 0, 1]), context_len=3,
    ...                  progress=False))
    ppl 4.00 on 4 tokens, context 3
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inwhale.core.checks import check_module, check_tensor

__all__ = [
    "BlockInputs",
    "GramAccumulator",
    "LastInputMemo",
    "NormLinears",
    "PerplexityResult",
    "QuantReport",
    "block_linears",
    "calibration_batches",
    "capture_linear_inputs",
    "decoder_blocks",
    "find_linears",
    "first_block_inputs",
    "for_each_linear_input",
    "intra_op_threads",
    "linear_input_absmax",
    "norm_linear_pairs",
    "perplexity",
    "run_block",
]


# ---------------------------------------------------------------------------------------------
# running a model
# ---------------------------------------------------------------------------------------------


def _model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _forward_logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Run ``model`` on ``ids`` ``(B, T)`` and return its logits ``(B, T, V)``.

    Transformers models get ``use_cache=False`` (no key/value cache is kept), and their
    ``.logits`` is returned; a plain module may return the tensor itself or a tuple.
    """
    config = getattr(model, "config", None)
    kwargs = {"use_cache": False} if hasattr(config, "use_cache") else {}
    out = model(ids, **kwargs)
    if hasattr(out, "logits"):
        return out.logits
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


class _EvalMode:
    """Context manager: put a module in eval mode and restore its previous mode afterwards."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.was_training = model, model.training

    def __enter__(self) -> nn.Module:
        return self.model.eval()

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)


def _as_1d_ids(ids: torch.Tensor, name: str = "ids") -> torch.Tensor:
    """Check token ids: an integer tensor of shape ``(N,)`` or ``(1, N)``; return ``(N,)``."""
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(ids).__name__}")
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
    if ids.ndim == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.ndim != 1:
        raise ValueError(f"{name} must have shape (N,) or (1, N), got {tuple(ids.shape)}")
    return ids.long()


def _check_batches(batches: object, model: nn.Module, name: str = "batches") -> torch.Tensor:
    """Check calibration batches: a non-empty ``(n_samples, seq_len)`` tensor of token ids in
    ``model``'s vocabulary; ``TypeError``/``ValueError`` naming ``name`` otherwise."""
    if not isinstance(batches, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {type(batches).__name__}")
    if batches.dtype.is_floating_point or batches.dtype.is_complex or batches.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {batches.dtype}")
    if batches.ndim != 2:
        raise ValueError(f"{name} must have shape (n_samples, seq_len), got {tuple(batches.shape)}")
    if batches.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(batches.shape)}): no tokens to run")
    return _check_vocab(batches, model, name)


def _check_batch_size(batch_size: object) -> None:
    """``ValueError`` unless ``batch_size`` (samples per forward pass) is a positive int."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


def _check_vocab(ids: torch.Tensor, model: nn.Module, name: str = "ids") -> torch.Tensor:
    """``ValueError`` if a token id lies outside ``[0, vocab)`` of ``model``'s input embedding
    (the embedding lookup would fail with a raw ``IndexError`` deep inside the model)."""
    get = getattr(model, "get_input_embeddings", None)
    emb = get() if callable(get) else None
    vocab = getattr(emb, "num_embeddings", None)
    if vocab is not None and ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
        raise ValueError(f"{name} must be token ids in [0, {vocab}) (the model's vocabulary), "
                         f"got values in [{int(ids.min())}, {int(ids.max())}]")
    return ids


# ---------------------------------------------------------------------------------------------
# perplexity
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerplexityResult:
    """Outcome of :func:`perplexity`.

    Attributes:
        ppl: perplexity, ``exp(nll)``.
        nll: mean negative log-likelihood in nats per scored token.
        n_tokens: number of tokens scored (the tail that fills no whole window is not scored).
        context_len: the window length actually used (``min(context_len, len(ids))``).
        token_nll: ``(n_tokens,)`` float32, the negative log-likelihood of every scored token
            in order, window after window: what paired comparisons of two models resample
            (:mod:`inwhale.llm.uncertainty`). ``None`` when built by hand.
        window_tokens: scored tokens per window, in order (they sum to ``n_tokens``).
    """

    ppl: float
    nll: float
    n_tokens: int
    context_len: int
    token_nll: torch.Tensor | None = field(default=None, repr=False, compare=False)
    window_tokens: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def __str__(self) -> str:
        return f"ppl {self.ppl:.2f} on {self.n_tokens:,} tokens, context {self.context_len}"


def _windows(n: int, context_len: int, stride: int) -> list[tuple[int, int]]:
    """``(begin, n_scored)`` for every full window of ``context_len`` tokens in ``n`` tokens."""
    begins = range(0, n - context_len + 1, stride)
    return [
        (b, context_len - 1 if i == 0 else min(stride, context_len - 1))
        for i, b in enumerate(begins)
    ]


@torch.no_grad()
def perplexity(
    model: nn.Module,
    ids: torch.Tensor,
    context_len: int = 512,
    stride: int | None = None,
    batch_size: int = 4,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> PerplexityResult:
    """Perplexity of a causal LM on a stream of token ids (see the module docstring).

    Args:
        model: maps ids ``(B, T)`` to logits ``(B, T, V)``; run in eval mode (its previous
            mode is restored afterwards), under ``torch.no_grad``.
        ids: token ids, shape ``(N,)`` or ``(1, N)``, ``N >= 2``.
        context_len: window length ``L``; shortened to ``N`` if ``N < L``.
        stride: distance between window starts, ``1 <= stride <= L``; ``None`` means ``L``
            (non-overlapping windows, the fast default).
        batch_size: windows per forward pass. Peak memory is about
            ``3 * batch_size * L * V * 4`` bytes of logits (~1.2 GB for SmolLM2, B=4, L=512).
        device: where the ids are sent; ``None`` means the device of the model's parameters.
        progress: show a ``tqdm`` bar over windows.

    Returns:
        A :class:`PerplexityResult`; ``print`` gives e.g. ``ppl 23.41 on 16,376 tokens,
        context 512``. Log-probabilities are computed in float32 and summed in float64.

    Raises:
        TypeError: if ``ids`` is not an integer tensor.
        ValueError: if ``ids`` has the wrong shape or fewer than 2 tokens, or ``context_len``,
            ``stride`` or ``batch_size`` is out of range.

    Example:
        >>> from inwhale.data.smollm2 import load_smollm2
        >>> from inwhale.data.text import token_ids
        >>> model, tok = load_smollm2(device="cpu")
        >>> result = perplexity(model, token_ids(tok)[:1024], context_len=512, progress=False)
        >>> result.n_tokens          # 2 windows x 511 scored tokens
        1022
        >>> round(result.ppl, 2)
        14.24
    """
    ids = _check_vocab(_as_1d_ids(ids), model)
    if ids.numel() < 2:
        raise ValueError(f"ids must hold at least 2 tokens, got {ids.numel()}")
    if context_len < 2:
        raise ValueError(f"context_len must be >= 2, got {context_len}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    length = min(context_len, ids.numel())
    stride = length if stride is None else stride
    if not 1 <= stride <= length:
        raise ValueError(f"stride must be in [1, context_len={length}], got {stride}")
    from inwhale._optional import tqdm

    device = _model_device(model) if device is None else torch.device(device)
    ids = ids.to(device)
    windows = _windows(ids.numel(), length, stride)
    total_nll, total_tokens, per_token = 0.0, 0, []
    with (
        _EvalMode(model),
        tqdm(total=len(windows), desc="perplexity", unit="window", disable=not progress) as bar,
    ):
        for start in range(0, len(windows), batch_size):
            chunk = windows[start : start + batch_size]
            x = torch.stack([ids[b : b + length] for b, _ in chunk])  # (B, L)
            logits = _forward_logits(model, x)[:, :-1].float()  # (B, L-1, V)
            nll = F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")  # (B, L-1)
            for row, (_, n_scored) in enumerate(chunk):
                total_nll += nll[row, -n_scored:].double().sum().item()
                total_tokens += n_scored
                per_token.append(nll[row, -n_scored:].cpu())
            bar.update(len(chunk))
    mean = total_nll / total_tokens
    return PerplexityResult(ppl=math.exp(mean), nll=mean, n_tokens=total_tokens, context_len=length,
                            token_nll=torch.cat(per_token),
                            window_tokens=tuple(n for _, n in windows))


# ---------------------------------------------------------------------------------------------
# which layers
# ---------------------------------------------------------------------------------------------


def _skipped(name: str, skip: tuple[str, ...]) -> bool:
    """True if a skip entry equals ``name``, or a dotted prefix or suffix of it."""
    return any(name == s or name.startswith(s + ".") or name.endswith("." + s) for s in skip)


def find_linears(
    model: nn.Module, skip: str | Iterable[str] = ("lm_head",)
) -> dict[str, nn.Linear]:
    """Return every ``nn.Linear`` of ``model`` by qualified name, in module order.

    Layers are found by type (subclasses of ``nn.Linear`` included), so the same call works for
    LLaMA, OPT, BERT or a hand-written MLP.

    Args:
        model: any module.
        skip: names to leave out. An entry matches a layer whose name equals it or has it as a
            whole dotted prefix or suffix: ``"lm_head"`` skips ``lm_head`` and
            ``model.lm_head``; ``"model.layers.0"`` skips all of block 0. A single string is
            treated as one name. ``()`` keeps everything.

    Returns:
        ``{name: module}``; for SmolLM2 210 entries (30 blocks x ``q k v o gate up down``).

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: ``model`` has no ``nn.Linear`` outside ``skip`` but keeps its weight
            matrices in other classes (GPT-2's ``Conv1D``, weight stored transposed): every
            LLM method would otherwise quantize nothing and report success.

    Example:
        >>> mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> list(find_linears(mlp, skip="2"))
        ['0']
    """
    check_module(model, "model")
    skip = (skip,) if isinstance(skip, str) else tuple(skip)
    found = {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and not _skipped(name, skip)
    }
    others = sorted({type(m).__name__ for m in model.modules()
                     if not isinstance(m, nn.Linear | nn.Embedding)
                     and isinstance(getattr(m, "weight", None), torch.Tensor)
                     and m.weight.ndim == 2})
    if not found and others:
        raise ValueError(
            f"model ({type(model).__name__}) has no torch.nn.Linear layer outside skip={skip}, "
            f"so there is nothing to quantize; its weight matrices live in: {', '.join(others)} "
            "(GPT-2 uses transformers' Conv1D, whose weight is stored transposed). Convert them "
            "to nn.Linear first, or pick a model such as OPT."
        )
    return found


@dataclass
class NormLinears:
    """A module with a per-channel weight and the linears that read its output directly.

    In a pre-norm block, ``input_layernorm -> q_proj, k_proj, v_proj`` and
    ``post_attention_layernorm -> gate_proj, up_proj``. SmoothQuant and AWQ fold a
    per-channel scale ``s`` into such a pair: ``norm.weight /= s`` and
    ``linear.weight *= s`` (columns) for every linear in the list.
    """

    norm_name: str
    norm: nn.Module
    linear_names: list[str]
    linears: list[nn.Linear]


@torch.no_grad()
def norm_linear_pairs(
    model: nn.Module,
    example_ids: torch.Tensor | None = None,
    skip: str | Iterable[str] = ("lm_head",),
) -> list[NormLinears]:
    """Find ``(norm, [linears])`` pairs by tracing one forward pass.

    A *norm* here is any leaf module that is not a linear and has a 1-D ``weight`` (RMSNorm,
    LayerNorm, ...). Forward hooks record every norm output tensor; a linear whose input *is*
    one of those tensors (the same object) is paired with that norm, provided the weight's
    length equals ``in_features``. No class names are involved.

    Args:
        model: a causal LM taking ids ``(B, T)``.
        example_ids: ids to trace with, ``(1, T)`` or ``(T,)``; default ``[[1, 2, ..., 8]]``.
        skip: linears to leave out, as in :func:`find_linears`.

    Returns:
        Pairs in the order the norms ran; for SmolLM2, 60 (two per block, with 3 and 2 linears).

    Edge cases:
        A linear fed a *view or slice* of the norm output is not paired: transformers'
        ``lm_head`` reads ``hidden_states[:, -k:]``, so ``model.norm -> lm_head`` is missing.
        The trace sees only *modules* consuming the norm output. In a post-norm model (BERT)
        the LayerNorm output also feeds the residual addition, so scaling that norm would
        change the residual stream too; check the architecture before folding scales.
    """
    check_module(model, "model")
    example_ids = torch.arange(1, 9) if example_ids is None else example_ids
    example_ids = _check_vocab(_as_1d_ids(example_ids, "example_ids"), model, "example_ids")
    example_ids = example_ids[None].to(_model_device(model))
    linear_name = {id(m): n for n, m in find_linears(model, skip).items()}
    norms = {
        name: m
        for name, m in model.named_modules()
        if not isinstance(m, nn.Linear)
        and next(m.children(), None) is None
        and isinstance(getattr(m, "weight", None), torch.Tensor)
        and m.weight.ndim == 1
    }
    produced: dict[int, tuple[str, torch.Tensor]] = {}  # id(output) -> (norm name, output)
    pairs: dict[str, list[str]] = {}

    def after_norm(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple, output: object) -> None:
            if isinstance(output, torch.Tensor):
                produced[id(output)] = (name, output)  # keep output alive: ids stay unique

        return hook

    def before_linear(module: nn.Module, inputs: tuple) -> None:
        entry = produced.get(id(inputs[0]))
        if entry is not None and norms[entry[0]].weight.numel() == module.in_features:
            names = pairs.setdefault(entry[0], [])
            if linear_name[id(module)] not in names:
                names.append(linear_name[id(module)])

    handles = [m.register_forward_hook(after_norm(n)) for n, m in norms.items()]
    handles += [
        m.register_forward_pre_hook(before_linear) for m in find_linears(model, skip).values()
    ]
    try:
        with _EvalMode(model):
            _forward_logits(model, example_ids)
    finally:
        for handle in handles:
            handle.remove()
    modules = dict(model.named_modules())
    return [
        NormLinears(n, norms[n], names, [modules[k] for k in names]) for n, names in pairs.items()
    ]


# ---------------------------------------------------------------------------------------------
# calibration data and activations
# ---------------------------------------------------------------------------------------------


def calibration_batches(ids: torch.Tensor, n_samples: int, seq_len: int) -> torch.Tensor:
    """Cut ``n_samples`` disjoint windows of ``seq_len`` tokens, evenly spaced over ``ids``.

    Deterministic (no random sampling): window ``i`` starts at
    ``i * (N - seq_len) // (n_samples - 1)``, so the windows cover the whole calibration text
    from its first to its last token.

    Args:
        ids: token ids, shape ``(N,)`` or ``(1, N)``.
        n_samples: number of windows, ``>= 1``.
        seq_len: tokens per window, ``>= 1``.

    Returns:
        A ``(n_samples, seq_len)`` long tensor on the device of ``ids``.

    Raises:
        ValueError: if ``n_samples * seq_len > N`` (windows would overlap) or a size is < 1.

    Example:
        >>> calibration_batches(torch.arange(10), n_samples=2, seq_len=3)
        tensor([[0, 1, 2],
                [7, 8, 9]])
    """
    ids = _as_1d_ids(ids)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (n_samples, seq_len)):
        raise TypeError(f"n_samples and seq_len must be ints, got {n_samples!r} and {seq_len!r}")
    if n_samples < 1 or seq_len < 1:
        raise ValueError(f"n_samples and seq_len must be >= 1, got {n_samples} and {seq_len}")
    n = ids.numel()
    if n_samples * seq_len > n:
        raise ValueError(
            f"n_samples * seq_len = {n_samples * seq_len} exceeds the {n} tokens in ids"
        )
    gap = n - seq_len
    starts = [0] if n_samples == 1 else [i * gap // (n_samples - 1) for i in range(n_samples)]
    return torch.stack([ids[s : s + seq_len] for s in starts])


def _resolve_linears(
    model: nn.Module, names: Iterable[str] | Mapping[str, nn.Module]
) -> dict[str, nn.Linear]:
    """Map each requested name to its ``nn.Linear``; ``ValueError`` naming any that is not one."""
    if isinstance(names, str):
        names = [names]
    modules = dict(model.named_modules())
    chosen = {n: modules.get(n) for n in names}
    bad = [n for n, m in chosen.items() if not isinstance(m, nn.Linear)]
    if bad:
        raise ValueError(
            f"names must name nn.Linear modules of the model; not found or not "
            f"linear: {bad[:5]}{' ...' if len(bad) > 5 else ''}"
        )
    return chosen  # type: ignore[return-value]


class LastInputMemo:
    """``f(x)``, recomputed only when ``x`` is not the tensor seen last.

    Linears that read the same input (q/k/v after one norm, gate/up after another) receive
    the same tensor one after the other; statistics such as ``xᵀx`` need computing once.
    The memo holds a reference to the last ``x``, so while it is alive no other tensor can
    share its storage address: equal ``data_ptr``, shape, stride and dtype mean the same data.

    >>> memo = LastInputMemo(lambda x: x.T @ x)
    >>> x = torch.ones(4, 2)
    >>> a, b = memo(x), memo(x.view(4, 2))        # the second call is served from the memo
    >>> a is b, memo.calls
    (True, 1)
    """

    def __init__(self, f: Callable[[torch.Tensor], Any]) -> None:
        self.f, self.x, self.value, self.calls = f, None, None, 0

    def __call__(self, x: torch.Tensor) -> Any:
        last = self.x
        if last is None or not (x.data_ptr() == last.data_ptr() and x.shape == last.shape
                                and x.stride() == last.stride() and x.dtype == last.dtype):
            self.x, self.value = x, self.f(x)
            self.calls += 1
        return self.value


def _hook_linear_inputs(
    linears: Mapping[str, nn.Module], fn: Callable[[str, torch.Tensor], None]
) -> list[torch.utils.hooks.RemovableHandle]:
    """Pre-hooks calling ``fn(name, x)`` with each linear's input as ``(B·T, in_features)``."""

    def hook_for(name: str) -> Callable[..., None]:
        def hook(module: nn.Linear, inputs: tuple) -> None:
            fn(name, inputs[0].reshape(-1, module.in_features))

        return hook

    return [m.register_forward_pre_hook(hook_for(n)) for n, m in linears.items()]


@torch.no_grad()
def for_each_linear_input(
    model: nn.Module,
    names: Iterable[str] | Mapping[str, nn.Module],
    batches: torch.Tensor,
    fn: Callable[[str, torch.Tensor], None],
    batch_size: int = 1,
) -> None:
    """Run ``batches`` through ``model`` and call ``fn(name, x)`` on each chosen linear's input.

    The building block for calibration statistics: ``x`` is the linear's input flattened to
    ``(B * T, in_features)``, on the model's device and in its dtype; ``fn`` must not keep a
    reference to ``x`` unless it means to (copy what it needs). Hooks are removed afterwards,
    also on error; the model's training mode is restored.

    Args:
        model: a causal LM taking ids ``(B, T)``.
        names: linear names (e.g. the keys or the dict of :func:`find_linears`).
        batches: ``(n_samples, seq_len)`` token ids, e.g. from :func:`calibration_batches`.
        fn: callback ``fn(name, x)``.
        batch_size: samples per forward pass.
    """
    check_module(model, "model")
    linears = _resolve_linears(model, names)
    batches = _check_batches(batches, model)
    _check_batch_size(batch_size)

    handles = _hook_linear_inputs(linears, fn)
    device = _model_device(model)
    try:
        with _EvalMode(model):
            for start in range(0, batches.shape[0], batch_size):
                _forward_logits(model, batches[start : start + batch_size].to(device))
    finally:
        for handle in handles:
            handle.remove()


def capture_linear_inputs(
    model: nn.Module,
    names: Iterable[str] | Mapping[str, nn.Module],
    batches: torch.Tensor,
    max_rows: int | None = 2048,
    batch_size: int = 1,
) -> dict[str, torch.Tensor]:
    """Collect the inputs (activations) of chosen linears over calibration batches.

    Memory is bounded by ``max_rows``: only the first ``max_rows`` token rows per layer are
    kept (deterministic), as float32 on the CPU. SmolLM2, all 210 linears, 2048 rows: ~1.6 GB.

    Args:
        model, names, batches, batch_size: as in :func:`for_each_linear_input`.
        max_rows: rows kept per layer; ``None`` keeps all ``n_samples * seq_len``.

    Returns:
        ``{name: X}`` with ``X`` of shape ``(min(max_rows, n_samples * seq_len), in_features)``.

    Example:
        >>> from inwhale.data.smollm2 import load_smollm2
        >>> from inwhale.data.text import token_ids
        >>> model, tok = load_smollm2(device="cpu")
        >>> calib = token_ids(tok)[20_000:24_096]
        >>> X = capture_linear_inputs(model, ["model.layers.0.self_attn.q_proj"],
        ...                           calibration_batches(calib, 4, 128))
        >>> X["model.layers.0.self_attn.q_proj"].shape     # 4 windows x 128 tokens, 576 inputs
        torch.Size([512, 576])
    """
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be >= 1 or None, got {max_rows}")
    chunks: dict[str, list[torch.Tensor]] = {}
    kept: dict[str, int] = {}

    def keep(name: str, x: torch.Tensor) -> None:
        room = x.shape[0] if max_rows is None else max_rows - kept.get(name, 0)
        if room > 0:
            chunks.setdefault(name, []).append(x[:room].float().cpu())
            kept[name] = kept.get(name, 0) + min(room, x.shape[0])

    for_each_linear_input(model, names, batches, keep, batch_size)
    return {name: torch.cat(parts) for name, parts in chunks.items()}


def linear_input_absmax(
    model: nn.Module,
    names: Iterable[str] | Mapping[str, nn.Module],
    batches: torch.Tensor,
    batch_size: int = 1,
) -> dict[str, torch.Tensor]:
    """Per-input-channel absolute maximum of each chosen linear's input, over all tokens.

    ``absmax[name][j] = max over tokens t of |X[t, j]|`` — the activation statistic of
    SmoothQuant and LLM.int8() outlier detection. Memory: one vector per layer.

    Returns:
        ``{name: (in_features,) float32 tensor}`` on the model's device.

    Example:
        >>> class Toy(nn.Module):                 # token id t -> features (t, 2t)
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.proj = nn.Linear(2, 3)
        ...     def forward(self, ids):
        ...         return self.proj(ids[..., None] * torch.tensor([1.0, 2.0]))
        >>> linear_input_absmax(Toy(), ["proj"], torch.tensor([[1, -3, 2]]))["proj"]
        tensor([3., 6.])
    """
    stats: dict[str, torch.Tensor] = {}

    def update(name: str, x: torch.Tensor) -> None:
        current = x.abs().amax(dim=0).float()  # (in_features,)
        stats[name] = current if name not in stats else torch.maximum(stats[name], current)

    for_each_linear_input(model, names, batches, update, batch_size)
    return stats


class GramAccumulator:
    """Running ``XᵀX`` and token count per layer: the second moment every OBS-style method needs.

    ``add(name, x)`` takes a linear's input ``x`` of shape ``(n, I)`` and adds ``xᵀx``
    (float32, ``(I, I)``) to that layer's sum; :meth:`mean` returns ``{name: XᵀX / n}`` over
    all tokens added. GPTQ's Hessian is ``2 XᵀX / n`` and AWQ's output-error matrix ``XᵀX / n``:
    both come from here. Layers that read the same input tensor one after the other (q/k/v)
    share one product through :class:`LastInputMemo`.

    >>> acc = GramAccumulator()
    >>> acc.add("a", torch.tensor([[1.0, 2.0]])); acc.add("a", torch.tensor([[3.0, 0.0]]))
    >>> acc.mean()["a"]                       # ([1,2]ᵀ[1,2] + [3,0]ᵀ[3,0]) / 2
    tensor([[5., 1.],
            [1., 2.]])
    """

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self._xtx = LastInputMemo(lambda x: x.float().T @ x.float())

    def add(self, name: str, x: torch.Tensor) -> None:
        """Add the rows of ``x`` (n, I) to layer ``name``."""
        check_tensor(x, "x")
        if x.ndim != 2:
            raise ValueError(f"x must be 2-D (n, I), got shape {tuple(x.shape)}")
        self.sums[name] = self.sums.get(name, 0) + self._xtx(x)
        self.counts[name] = self.counts.get(name, 0) + x.shape[0]

    def mean(self) -> dict[str, torch.Tensor]:
        """``{name: XᵀX / n}``, float32 (I, I)."""
        return {n: self.sums[n] / self.counts[n] for n in self.sums}


@dataclass
class QuantReport:
    """What an in-place ``*_quantize_`` method did to a model: one record for every method.

    Attributes:
        method: e.g. ``"gptq"``.
        layers: full names of the linears it changed, in model order.
        seconds: wall time of the call.
        settings: the arguments that define the result (``bits``, ``group_size``, ...).
        details: per-method measurements, e.g. GPTQ's ``loss`` per layer, AWQ's ``alpha`` per
            norm, RTN's relative ``errors`` per layer.

    ``report["key"]`` reads a field, a setting or a detail, so code written for the former
    plain-dict reports keeps working.

    >>> r = QuantReport("rtn", ["fc"], 0.1, {"bits": 4}, {"errors": {"fc": 0.05}})
    >>> r["bits"], r["errors"]["fc"], len(r.layers)
    (4, 0.05, 1)
    """

    method: str
    layers: list[str]
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        if key in ("method", "layers", "seconds"):
            return getattr(self, key)
        for part in (self.settings, self.details):
            if key in part:
                return part[key]
        raise KeyError(key)


# ---------------------------------------------------------------------------------------------
# the decoder blocks: which linears LLM methods quantize, and running the model block by block
# ---------------------------------------------------------------------------------------------


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
    check_module(model, "model")
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) > 0
             and any(isinstance(s, nn.Linear) for s in m.modules())]
    if not lists:
        find_linears(model)  # names GPT-2's Conv1D when the weights live in another class
        raise ValueError("model has no nn.ModuleList of blocks containing nn.Linear layers")
    return max(lists, key=len)


def block_linears(model: nn.Module, block: nn.Module | None = None) -> dict[str, nn.Linear]:
    """The ``nn.Linear`` layers inside the decoder blocks, by their full names in ``model``.

    These are the layers weight-quantization methods (GPTQ, AWQ, HQQ, rotation) change; the
    embedding and the (often tied) output head are outside the blocks. With ``block`` given,
    only that block's linears (still named from ``model``).

    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(2, 2)) for _ in range(2))
    ...         self.head = nn.Linear(2, 5)
    >>> net = Net()
    >>> list(block_linears(net)), list(block_linears(net, net.blocks[1]))
    (['blocks.0.0', 'blocks.1.0'], ['blocks.1.0'])
    """
    check_module(model, "model")
    inside = {id(m) for m in (decoder_blocks(model) if block is None else block).modules()}
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) and id(m) in inside}


BlockInputs = list[tuple[tuple, dict]]
"""The recorded ``(args, kwargs)`` of one block call per calibration chunk."""


class _StopForward(Exception):
    """Raised by the catcher hook once the first block's inputs are recorded."""


@torch.no_grad()
def first_block_inputs(
    model: nn.Module, batches: torch.Tensor, batch_size: int = 1
) -> BlockInputs:
    """The ``(args, kwargs)`` that the first decoder block receives, one per chunk of ``batches``.

    The model runs until the first block is called and is stopped there (an exception raised
    by a pre-hook), so only the embedding is computed. The records are what
    :func:`run_block` replays block by block.
    """
    blocks = decoder_blocks(model)
    batches = _check_batches(batches, model)
    _check_batch_size(batch_size)
    records: BlockInputs = []

    def catcher(module: nn.Module, args: tuple, kwargs: dict) -> None:
        records.append((args, kwargs))
        raise _StopForward

    handle = blocks[0].register_forward_pre_hook(catcher, with_kwargs=True)
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


@torch.no_grad()
def run_block(
    block: nn.Module,
    records: BlockInputs,
    linears: Mapping[str, nn.Linear] | None = None,
    fn: Callable[[str, torch.Tensor], None] | None = None,
    stop_after: str | None = None,
) -> BlockInputs:
    """Run ``block`` on every record; its outputs become the next block's inputs.

    With ``linears`` and ``fn``, ``fn(name, x)`` is called on each listed linear's input
    (flattened to ``(B·T, in_features)``) as in :func:`for_each_linear_input`. With
    ``stop_after`` (one of ``linears``), each record's run ends as soon as ``fn`` has seen
    that linear's input: when only the statistics are wanted, the rest of the block is not
    computed, and the result is ``[]``.

    Raises:
        ValueError: ``stop_after`` is not one of ``linears``, or ``fn`` is missing.
    """
    check_module(block, "block")
    if stop_after is not None and (fn is None or stop_after not in (linears or {})):
        raise ValueError(f"stop_after must name one of linears (with fn given), got "
                         f"{stop_after!r}")

    def seen(name: str, x: torch.Tensor) -> None:
        fn(name, x)
        if name == stop_after:
            raise _StopForward

    handles = [] if fn is None else _hook_linear_inputs(linears or {}, seen)
    out = []
    try:
        for args, kwargs in records:
            try:
                y = block(*args, **kwargs)
            except _StopForward:
                continue
            y = y[0] if isinstance(y, (tuple, list)) else y
            out.append(((y, *args[1:]), kwargs))
    finally:
        for h in handles:
            h.remove()
    return out


class intra_op_threads:
    """Context manager: run torch CPU ops on ``n`` threads, then restore the previous count.

    A loop of thousands of tiny ops (GPTQ's column loop) only pays for synchronization when
    each op is spread over several threads (10x slower on a busy 2-core machine); such loops
    run on one thread. Nothing changes on other devices.
    """

    def __init__(self, n: int, device: torch.device) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive int (threads), got {n!r}")
        self.n, self.active = n, device.type == "cpu"

    def __enter__(self) -> None:
        if self.active:
            self.previous = torch.get_num_threads()
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        if self.active:
            torch.set_num_threads(self.previous)
