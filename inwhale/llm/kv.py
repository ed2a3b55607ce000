"""Simulated KV-cache quantization: fake-quantize keys and values as they enter the cache.

During generation a decoder keeps, for every layer and every past token, one key and one value
vector per key/value head — the *KV cache*. Its size grows linearly with the context:

.. math::
    \\text{bytes per token} = 2\\ (K, V) \\times L \\times H_{kv} \\times d \\times
    \\frac{b}{8} \\;+\\; \\text{scale overhead},

with ``L`` layers, ``H_kv`` key/value heads of ``d`` channels and ``b`` bits per entry
(``b = 16`` for an fp16 cache). Quantizing the cache replaces each entry by

.. math::
    \\hat x = s\\,(\\operatorname{clamp}(\\lfloor x / s \\rceil + z,\\ q_{min},\\ q_{max}) - z)

where one ``(s, z)`` pair is shared along one of two axes of the ``(tokens, d)`` slab of a
head:

* **per token** (``axis="token"``): one pair per token per head, over its ``d`` channels (or
  over groups of ``group_size`` consecutive channels). A new token can be quantized on arrival.
* **per channel** (``axis="channel"``): one pair per channel, over the tokens. Keys have a few
  *outlier channels* whose magnitude is large for every token; a per-token scale lets them set
  the step for the whole token, a per-channel scale isolates them. KIVI (Liu et al., 2024,
  "KIVI: A Tuning-Free Asymmetric 2bit Quantization for KV Cache") and KVQuant (Hooper et
  al., 2024) quantize keys per channel and values per token.

What this module simulates, and what it does not
------------------------------------------------
The hooks sit on the outputs of the ``k_proj`` / ``v_proj`` linears (found by name suffix,
configurable), reshaped to ``(batch, tokens, heads, head_dim)``. So:

1. **Keys are quantized before RoPE.** The rotary embedding is applied to the already
   quantized keys, as in KVQuant's *pre-RoPE* key quantization (a cache that stores post-RoPE
   keys would quantize a different tensor: RoPE mixes channel pairs and smears the outlier
   channels over positions).
2. **Every token is quantized in one forward pass**, including the query's own key: there is
   no full-precision window of recent tokens (KIVI keeps the last ``R`` tokens in fp16).
3. **A per-channel scale is computed over the whole sequence** of each batch row, future
   tokens included. A real cache cannot see future tokens; it computes per-channel scales over
   *blocks* of tokens once a block is full (KIVI) or calibrates them offline (KVQuant). The
   byte count of :func:`kv_bytes_per_token` therefore takes ``tokens_per_scale`` as a
   separate, honest parameter. During cached generation each forward call holds one new
   token, so a per-channel scale over that call's tokens is (nearly) lossless: use these hooks
   for full-sequence evaluation such as perplexity.
4. Values are fake-quantized (quantize → dequantize), so attention itself runs in float: the
   result measures the *accuracy* of a quantized cache, not its speed or memory.

All scale and zero-point arithmetic is :func:`inwhale.core.choose_qparams` /
:func:`inwhale.core.fake_quantize` with ``PerToken``, ``PerGroup`` and ``PerAxis``.

Glossary: ``B`` batch, ``T`` tokens, ``H`` key/value heads, ``d`` head_dim, ``C = H d``
channels of a ``k_proj`` output, ``b`` bits, ``s`` scale, ``z`` zero point.

Example (SmolLM2 on its first 1,024 tokens of text: 4-bit keys per channel and values per
token cost about 3 % perplexity; the cache is float again after the ``with`` block):
    >>> from inwhale.data.smollm2 import load_smollm2
    >>> from inwhale.data.text import token_ids
    >>> from inwhale.llm.harness import perplexity
    >>> from inwhale.llm.kv import kv_quantize_
    >>> model, tok = load_smollm2(device="cpu")
    >>> ids = token_ids(tok)[:1024]
    >>> with kv_quantize_(model, bits=4, keys="channel", values="token"):
    ...     print(f"{perplexity(model, ids, progress=False).ppl:.2f}")
    14.63
    >>> print(f"{perplexity(model, ids, progress=False).ppl:.2f}")
    14.24
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from inwhale._deprecated import renamed
from inwhale.core import Granularity, PerAxis, PerGroup, PerToken, choose_qparams, fake_quantize
from inwhale.core.checks import check_bits, check_group_size, check_module, check_tensor

__all__ = [
    "KVHandle",
    "KVSpec",
    "capture_kv",
    "kv_bytes_per_token",
    "kv_dims",
    "kv_fake_quantize",
    "kv_quantize_",
    "kv_relative_error",
]

AXES = ("token", "channel")


@dataclass(frozen=True)
class KVSpec:
    """How one of K or V is quantized.

    Attributes:
        bits: code width ``b``, 2..16.
        axis: ``"token"`` (one scale per token per head, over head_dim) or ``"channel"``
            (one scale per channel, over the tokens of the sequence).
        group_size: ``axis="token"`` only: channels per scale within a head (must divide
            head_dim); ``None`` = the whole head.
        symmetric: symmetric signed narrow-range codes (``z = 0``, ``s = max|x| / (2^(b-1)-1)``)
            instead of asymmetric unsigned ones (``s = (max - min) / (2^b - 1)``).
    """

    bits: int = 4
    axis: str = "token"
    group_size: int | None = None
    symmetric: bool = False

    def __post_init__(self) -> None:
        check_bits(self.bits, lo=2)
        if self.axis not in AXES:
            raise ValueError(f"axis must be 'token' or 'channel', got {self.axis!r}")
        if check_group_size(self.group_size) is not None:
            if self.axis == "channel":
                raise ValueError("group_size applies to axis='token' only (groups along "
                                 "head_dim); a per-channel scale already has one channel")

    def params_per_scale(self) -> int:
        """Numbers stored per quantization group: 1 (scale) or 2 (scale and zero point)."""
        return 1 if self.symmetric else 2


def _check_head_dim(channels: int, head_dim: int) -> None:
    if not isinstance(head_dim, int) or head_dim < 1:
        raise ValueError(f"head_dim must be a positive int, got {head_dim!r}")
    if channels % head_dim:
        raise ValueError(f"head_dim={head_dim} does not divide the {channels} channels of the "
                         "k/v projection output")


@torch.no_grad()
def kv_fake_quantize(x: torch.Tensor, head_dim: int, spec: KVSpec) -> torch.Tensor:
    """Fake-quantize a key or value projection output ``x`` of shape ``(..., T, H*d)``.

    ``axis="token"``: view ``x`` as ``(..., T, H, d)``; one ``(s, z)`` per ``(..., t, h)``
    (``PerToken``) or per group of ``group_size`` channels (``PerGroup``).
    ``axis="channel"``: view ``x`` as rows ``(..., H*d)`` × ``T``; one ``(s, z)`` per channel of
    each sequence, over its ``T`` tokens (``PerAxis(0)`` on the ``(prod(...)·H·d, T)`` matrix).

    Returns a tensor of ``x``'s shape and dtype.

    Worked example (2 tokens, one head whose channel 0 is an outlier, 2-bit asymmetric).
    Per token, the outlier sets the step (``s = 1`` and ``1.1``) and channel 1 rounds to 0;
    per channel, channel 1 gets its own step ``s = 0.2`` and survives:

    >>> x = torch.tensor([[[3.0, 0.2], [2.9, -0.4]]])                 # (B=1, T=2, C=2)
    >>> kv_fake_quantize(x, 2, KVSpec(bits=2, axis="token"))
    tensor([[[3.0000, 0.0000],
             [3.3000, 0.0000]]])
    >>> kv_fake_quantize(x, 2, KVSpec(bits=2, axis="channel"))
    tensor([[[ 3.0000,  0.2000],
             [ 3.0000, -0.4000]]])
    """
    check_tensor(x, "x")
    if not isinstance(spec, KVSpec):
        raise TypeError(f"spec must be a KVSpec, got {type(spec).__name__}")
    if x.ndim < 2:
        raise ValueError(f"x must have shape (..., tokens, channels), got {tuple(x.shape)}")
    _check_head_dim(x.shape[-1], head_dim)
    if spec.group_size is not None and head_dim % spec.group_size:
        raise ValueError(f"group_size={spec.group_size} must divide head_dim={head_dim}")
    *lead, t, c = x.shape
    if spec.axis == "token":
        xv = x.reshape(*lead, t, c // head_dim, head_dim)  # (..., T, H, d)
        g: Granularity = PerToken() if spec.group_size is None else PerGroup(spec.group_size)
    else:
        xv = x.reshape(-1, t, c).transpose(1, 2).reshape(-1, t)  # (B·H·d, T)
        g = PerAxis(0)
    qp = choose_qparams(xv, bits=spec.bits, symmetric=spec.symmetric,
                        narrow_range=spec.symmetric, granularity=g)
    out = fake_quantize(xv, qp)
    if spec.axis == "channel":
        out = out.reshape(-1, c, t).transpose(1, 2)  # (B, T, C)
    return out.reshape(x.shape)


def _as_spec(axis: str | KVSpec | None, bits: int, group_size: int | None, symmetric: bool,
             name: str) -> KVSpec | None:
    if axis is None or isinstance(axis, KVSpec):
        return axis
    if axis not in AXES:
        raise ValueError(f"{name} must be 'token', 'channel', a KVSpec or None, got {axis!r}")
    return KVSpec(bits, axis, group_size if axis == "token" else None, symmetric)


def _default_head_dim(model: nn.Module) -> int:
    config = getattr(model, "config", None)
    head_dim = getattr(config, "head_dim", None)
    if head_dim is None and config is not None and hasattr(config, "num_attention_heads"):
        head_dim = config.hidden_size // config.num_attention_heads
    if head_dim is None:
        raise ValueError("the model has no config.head_dim; pass head_dim explicitly")
    return int(head_dim)


def _modules_ending(model: nn.Module, suffix: str, name: str) -> dict[str, nn.Module]:
    found = {n: m for n, m in model.named_modules() if n == suffix or n.endswith("." + suffix)}
    if not found:
        raise ValueError(f"{name}={suffix!r} matches no module of the model")
    return found


class KVHandle:
    """The hooks installed by :func:`kv_quantize_`; ``remove()`` them, or use it in ``with``.

    Attributes:
        keys, values: the :class:`KVSpec` applied (``None``: left in float).
        layers: names of the hooked modules.
    """

    def __init__(self, handles: list, keys: KVSpec | None, values: KVSpec | None,
                 layers: list[str]) -> None:
        self._handles, self.keys, self.values, self.layers = handles, keys, values, layers

    def remove(self) -> None:
        """Remove every hook; the model computes exactly what it did before. Idempotent."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> KVHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"KVHandle(keys={self.keys}, values={self.values}, {len(self.layers)} hooks)"


def kv_quantize_(
    model: nn.Module,
    bits: int = 4,
    keys: str | KVSpec | None = "channel",
    values: str | KVSpec | None = "token",
    *,
    group_size: int | None = None,
    symmetric: bool = False,
    head_dim: int | None = None,
    key_suffix: str = "k_proj",
    value_suffix: str = "v_proj",
) -> KVHandle:
    """Install forward hooks that fake-quantize every key and value projection output.

    Modifies ``model`` in place (hooks only, no weight changes) until ``handle.remove()`` or
    the end of a ``with`` block. See the module docstring for what is simulated (pre-RoPE
    keys, per-channel scales over the whole sequence, no fp16 window).

    Args:
        model: any causal LM whose key / value projections are modules named ``*.k_proj`` and
            ``*.v_proj`` with outputs ``(B, T, H*d)``.
        bits: code width for K and V (a :class:`KVSpec` passed as ``keys``/``values`` brings
            its own).
        keys, values: ``"token"``, ``"channel"``, a :class:`KVSpec`, or ``None`` (float).
        group_size: channels per scale for ``"token"`` axes (divides head_dim).
        symmetric: symmetric codes instead of asymmetric ones.
        head_dim: channels per head; default ``model.config.head_dim``
            (or ``hidden_size // num_attention_heads``).
        key_suffix, value_suffix: module-name suffixes of the key / value projections.

    Returns:
        A :class:`KVHandle`.

    Example (a toy "model" with one k_proj; 8 bits barely changes its output):
        >>> toy = nn.Sequential()
        >>> toy.k_proj = nn.Linear(4, 4)
        >>> x = torch.randn(1, 3, 4)
        >>> with kv_quantize_(toy, bits=8, keys="token", values=None, head_dim=2):
        ...     y = toy(x)
        >>> bool((y - toy(x)).abs().max() < 0.05), bool(torch.equal(toy(x), toy(x)))
        (True, True)
    """
    check_module(model, "model")
    key_spec = _as_spec(keys, bits, group_size, symmetric, "keys")
    value_spec = _as_spec(values, bits, group_size, symmetric, "values")
    head_dim = _default_head_dim(model) if head_dim is None else head_dim
    if not isinstance(head_dim, int) or head_dim < 1:
        raise ValueError(f"head_dim must be a positive int, got {head_dim!r}")
    targets: list[tuple[str, nn.Module, KVSpec]] = []
    for spec, suffix, name in ((key_spec, key_suffix, "key_suffix"),
                               (value_spec, value_suffix, "value_suffix")):
        if spec is not None:
            targets += [(n, m, spec) for n, m in _modules_ending(model, suffix, name).items()]
    for spec in (key_spec, value_spec):
        if spec is not None and spec.group_size is not None and head_dim % spec.group_size:
            raise ValueError(f"group_size={spec.group_size} must divide head_dim={head_dim}")
    for _, m, _ in targets:
        if isinstance(m, nn.Linear):
            _check_head_dim(m.out_features, head_dim)

    def hook_for(spec: KVSpec) -> Callable[..., torch.Tensor]:
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
            return kv_fake_quantize(output, head_dim, spec)

        return hook

    handles = [m.register_forward_hook(hook_for(spec)) for _, m, spec in targets]
    return KVHandle(handles, key_spec, value_spec, [n for n, _, _ in targets])


@torch.no_grad()
def capture_kv(
    model: nn.Module,
    ids: torch.Tensor,
    layers: Iterable[int] | None = None,
    head_dim: int | None = None,
    key_suffix: str = "k_proj",
    value_suffix: str = "v_proj",
) -> dict[str, torch.Tensor]:
    """Run ``ids`` ``(B, T)`` through ``model`` and return the key / value projection outputs.

    Returns ``{module name: tensor (B, T, H, d)}`` in float32 on the CPU, for the chosen
    layer indices (position in module order among the matching modules; ``None`` = all).
    Hooks are removed afterwards, also on error. Keys are pre-RoPE (see the module docstring).
    """
    from inwhale.llm.harness import _check_batches

    check_module(model, "model")
    ids = _check_batches(ids, model, "ids")
    head_dim = _default_head_dim(model) if head_dim is None else head_dim
    keys = list(_modules_ending(model, key_suffix, "key_suffix").items())
    values = list(_modules_ending(model, value_suffix, "value_suffix").items())
    chosen = range(len(keys)) if layers is None else list(layers)
    out: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            _check_head_dim(output.shape[-1], head_dim)
            out[name] = output.detach().float().cpu().unflatten(-1, (-1, head_dim))

        return hook

    handles = [m.register_forward_hook(keep(n)) for i in chosen for n, m in (keys[i], values[i])]
    try:
        model(ids)
    finally:
        for handle in handles:
            handle.remove()
    return out


def kv_relative_error(x: torch.Tensor, spec: KVSpec) -> float:
    """Relative error ``‖x − x̂‖_F / ‖x‖_F`` of fake-quantizing captured K or V ``(B, T, H, d)``.

    The keys of the :func:`kv_fake_quantize` example, 2 bits: per token 0.143, per channel 0.024.

    >>> x = torch.tensor([[[[3.0, 0.2]], [[2.9, -0.4]]]])            # (B=1, T=2, H=1, d=2)
    >>> round(kv_relative_error(x, KVSpec(2, "token")), 3)
    0.143
    >>> round(kv_relative_error(x, KVSpec(2, "channel")), 3)
    0.024
    """
    check_tensor(x, "x")
    if x.ndim != 4:
        raise ValueError(f"x must have shape (B, T, H, d), got {tuple(x.shape)}")
    xq = kv_fake_quantize(x.flatten(-2), x.shape[-1], spec).unflatten(-1, x.shape[-2:])
    return float((x - xq).norm() / x.norm().clamp_min(1e-30))


def kv_dims(config: object) -> tuple[int, int, int]:
    """``(layers, kv_heads, head_dim)`` of a transformers config.

    >>> from types import SimpleNamespace
    >>> kv_dims(SimpleNamespace(num_hidden_layers=30, num_key_value_heads=3, head_dim=64))
    (30, 3, 64)
    """
    if not hasattr(config, "num_hidden_layers"):
        raise TypeError(f"config must be a transformers config (num_hidden_layers, "
                        f"num_attention_heads, ...), got {type(config).__name__}")
    layers = config.num_hidden_layers
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return int(layers), int(heads), int(head_dim)


def _bytes_per_head_token(spec: KVSpec | None, head_dim: int, tokens_per_scale: int,
                          param_bytes: int) -> float:
    if spec is None:
        return 2.0 * head_dim  # fp16
    data = head_dim * spec.bits / 8
    params = spec.params_per_scale() * param_bytes
    if spec.axis == "token":
        return data + math.ceil(head_dim / (spec.group_size or head_dim)) * params
    return data + head_dim * params / tokens_per_scale


def kv_bytes_per_token(
    layers: int,
    kv_heads: int,
    head_dim: int,
    keys: KVSpec | None = None,
    values: KVSpec | None = None,
    tokens_per_scale: int = 128,
    param_bytes: int = 2,
) -> float:
    """Bytes of KV cache per token, scales and zero points included.

    Per layer and head, with ``p = 1`` (symmetric) or ``2`` (scale and zero point) numbers of
    ``param_bytes`` each:

    * float (``None``): ``2 d`` bytes (fp16);
    * per token: ``d b/8 + ceil(d / g) p · param_bytes``;
    * per channel: ``d b/8 + d p · param_bytes / tokens_per_scale`` — one pair per channel
      per block of ``tokens_per_scale`` tokens (KIVI's group of tokens).

    Total: ``layers · kv_heads · (bytes(K) + bytes(V))``. SmolLM2 in fp16:
    ``30 · 3 · 2 · 64 · 2 = 23,040`` bytes per token; 4-bit asymmetric per-token K and V:
    ``30 · 3 · 2 · (32 + 4) = 6,480``.

    >>> kv_bytes_per_token(30, 3, 64)
    23040.0
    >>> kv_bytes_per_token(30, 3, 64, KVSpec(4, "token"), KVSpec(4, "token"))
    6480.0
    """
    for value, name in ((layers, "layers"), (kv_heads, "kv_heads"), (head_dim, "head_dim"),
                        (tokens_per_scale, "tokens_per_scale"), (param_bytes, "param_bytes")):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    per_head = sum(_bytes_per_head_token(s, head_dim, tokens_per_scale, param_bytes)
                   for s in (keys, values))
    return float(layers * kv_heads * per_head)


# Old names (verb first), importable for one release; see inwhale._deprecated.
quantize_kv_ = renamed(kv_quantize_, "quantize_kv_")
fake_quantize_kv = renamed(kv_fake_quantize, "fake_quantize_kv")
