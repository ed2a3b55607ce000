"""One table for Part VI: every method of the part, run on the same model, data and metric.

:func:`results_table` quantizes fresh copies of a float model with each method of
:mod:`inwhale.llm` and measures the perplexity of each on the same evaluation tokens. The
book's closing chapter calls it with a small evaluation set (it must run in minutes on a
laptop CPU); ``benchmarks/llm_table.py`` calls the *same function* with more tokens.

Rows (``b`` = each weight bit width asked for, groups of ``g`` input columns):

* ``baseline`` — the float model as loaded;
* weight-only at ``W{b} g{g}``: RTN, GPTQ, AWQ, HQQ, and a Hadamard-style rotation followed by
  RTN. GPTQ runs as published (block by block: block ``i``'s Hessians come from the outputs
  of blocks ``0..i-1`` already quantized, :func:`~inwhale.llm.gptq.gptq_quantize_`); AWQ reads
  one calibration pass over the float model;
* W8A8 with per-channel int8 weights: activations per tensor (naive), per token, SmoothQuant
  (α = 0.5, per-tensor activations after smoothing) and LLM.int8() (τ = 6);
* KV cache at each ``kv_bits``: keys per channel, values per token (the KIVI layout), weights
  and activations left in float.

Bits per weight count what a file would store for the quantized linears: the code plus fp16
scale and zero point per group (:func:`inwhale.llm.rtn.bits_per_weight`), averaged over the
linears weighted by size. The baseline is float32 as held in memory (32); the embedding / tied
output head is never quantized by these methods and is not counted.

Every row keeps the NLL of each scored token, so any two rows can be compared paired, with
an interval (:meth:`ResultRow.as_perplexity`, :mod:`inwhale.llm.uncertainty`).

Cost: one perplexity evaluation per row (19 rows), one calibration pass, two GPTQ, AWQ and
HQQ runs each — several minutes on a laptop CPU. Rows are therefore stored on disk
(:func:`results_dir`), keyed by a hash of the code, the model's weights, the token ids and the
settings: the method chapters measure their own rows with this function, and the closing
chapter reuses them. A stored row is only ever reused for identical inputs and code.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inwhale.core.checks import check_bits, check_module
from inwhale.llm.act_quant import w8a8_quantize_
from inwhale.llm.awq import awq_quantize_, collect_awq_stats
from inwhale.llm.gptq import gptq_quantize_
from inwhale.llm.harness import (
    PerplexityResult,
    _as_1d_ids,
    _check_vocab,
    block_linears,
    calibration_batches,
    find_linears,
    perplexity,
)
from inwhale.llm.hqq import hqq_quantize_
from inwhale.llm.kv import KVSpec, kv_bytes_per_token, kv_dims, kv_quantize_
from inwhale.llm.llm_int8 import llm_int8_quantize_
from inwhale.llm.rotation import rotate_model_
from inwhale.llm.rtn import bits_per_weight, rtn_quantize_
from inwhale.llm.smoothquant import smoothquant_quantize_

__all__ = [
    "FAMILIES",
    "WEIGHT_METHODS",
    "ResultRow",
    "RowCache",
    "RowSpec",
    "block_linear_bits",
    "code_fingerprint",
    "format_table",
    "model_fingerprint",
    "results_dir",
    "results_table",
    "rows_as_dicts",
]


@dataclass
class ResultRow:
    """One line of the results table.

    Attributes:
        family: ``"baseline"``, ``"weight-only"``, ``"W8A8"`` or ``"KV cache"``.
        method: e.g. ``"GPTQ"``.
        setting: e.g. ``"W3 g128"`` or ``"K per-channel / V per-token, 4 bits"``.
        ppl: perplexity on ``n_tokens`` scored tokens in windows of ``context_len``.
        bits_per_weight: stored bits per weight of the block linears (codes + fp16 scales).
        seconds: wall time of the quantization (not the evaluation), including the work it
            needs first: GPTQ's own block-by-block calibration passes, the calibration pass
            AWQ reads, and the rotation of the weights for ``rotation + RTN``.
        token_nll: the negative log-likelihood of every scored token (rounded to 1e-5 nats),
            so that two rows on the same tokens can be compared *paired*
            (:meth:`as_perplexity` and :func:`inwhale.llm.uncertainty.compare_perplexity`).
        window_tokens: scored tokens per evaluation window.
    """

    family: str
    method: str
    setting: str
    ppl: float
    bits_per_weight: float
    seconds: float
    n_tokens: int
    context_len: int
    token_nll: list[float] = field(default_factory=list, repr=False)
    window_tokens: list[int] = field(default_factory=list, repr=False)

    def as_perplexity(self) -> PerplexityResult:
        """The row's perplexity as a :class:`~inwhale.llm.harness.PerplexityResult`, with its
        per-token NLLs, ready for :func:`~inwhale.llm.uncertainty.compare_perplexity`.

        >>> row = ResultRow("baseline", "float", "fp32", 2.0, 32.0, 0.0, 2, 3,
        ...                 [0.5, 0.886294], [2])
        >>> r = row.as_perplexity()
        >>> r.token_nll.shape, r.window_tokens
        (torch.Size([2]), (2,))
        """
        import math

        nll = torch.tensor(self.token_nll, dtype=torch.float32) if self.token_nll else None
        return PerplexityResult(self.ppl, math.log(self.ppl), self.n_tokens, self.context_len,
                                token_nll=nll, window_tokens=tuple(self.window_tokens))


def block_linear_bits(model: nn.Module, bits: int, group_size: int | None,
                      symmetric: bool = False) -> float:
    """Size-weighted mean of :func:`~inwhale.llm.rtn.bits_per_weight` over the block linears.

    For SmolLM2 at 4 bits with groups of 128, a 576-column layer stores 5 groups per row (the
    last one has 64 columns), a 1536-column layer 12, so the mean is a little above
    ``4 + 32/128 = 4.25``.

    >>> net = nn.Sequential(nn.ModuleList([nn.Linear(256, 8), nn.Linear(256, 8)]))
    >>> block_linear_bits(net, 4, 128)
    4.25
    """
    check_bits(bits)
    total = weighted = 0.0
    for lin in block_linears(model).values():
        n = lin.weight.numel()
        g = group_size if group_size is None or group_size <= lin.in_features else None
        weighted += n * bits_per_weight(bits, g, tuple(lin.weight.shape), symmetric=symmetric)
        total += n
    return weighted / total


def _check_args(bits: tuple[int, ...], kv_bits: tuple[int, ...], group_size: int) -> None:
    for name, values in (("bits", bits), ("kv_bits", kv_bits)):
        if not all(isinstance(b, int) and 2 <= b <= 8 for b in values):
            raise ValueError(f"{name} must be ints in [2, 8], got {values!r}")
    if not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive int, got {group_size!r}")


WEIGHT_METHODS = ("RTN", "GPTQ", "AWQ", "HQQ", "rotation + RTN")
FAMILIES = ("weight-only", "W8A8", "KV cache")


def code_fingerprint() -> str:
    """SHA-256 of every ``inwhale/**/*.py`` file: stored rows are reused only for this code."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer (names, shapes and values, as float32 bytes)."""
    check_module(model, "model")
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}{tuple(t.shape)}".encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def results_dir() -> Path:
    """Where measured rows are stored: ``$INWHALE_RESULTS`` or ``<cache>/results``."""
    if os.environ.get("INWHALE_RESULTS"):
        return Path(os.environ["INWHALE_RESULTS"]).expanduser()
    from inwhale.data.smollm2 import cache_root

    return cache_root() / "results"


class RowCache:
    """The disk cache of measured rows: one JSON file per row, named by a hash of everything
    its number depends on — the code, the model's weights, the token ids, the table's settings
    and the row's own (family, method, setting).

    A stored row is only ever reused for identical inputs and code. Writes are atomic (a
    temporary file renamed), so chapters running in parallel may write the same row.
    """

    def __init__(self, directory: Path, model: nn.Module, calib_ids: torch.Tensor,
                 eval_ids: torch.Tensor, settings: dict) -> None:
        h = hashlib.sha256()
        for part in (code_fingerprint(), model_fingerprint(model),
                     json.dumps(settings, sort_keys=True)):
            h.update(part.encode())
        for ids in (calib_ids, eval_ids):
            h.update(ids.detach().cpu().numpy().astype("int64").tobytes())
        self.base, self.dir = h.hexdigest(), directory

    def _path(self, family: str, method: str, setting: str) -> Path:
        key = hashlib.sha256(f"{self.base}|{family}|{method}|{setting}".encode()).hexdigest()
        return self.dir / f"{key[:32]}.json"

    def get(self, family: str, method: str, setting: str) -> ResultRow | None:
        """The stored row, or ``None`` if it was never measured with these inputs."""
        path = self._path(family, method, setting)
        return ResultRow(**json.loads(path.read_text())) if path.exists() else None

    def put(self, row: ResultRow) -> None:
        """Store ``row`` (atomically)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self._path(row.family, row.method, row.setting)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(row)))
        tmp.replace(path)


class _SharedWork:
    """Work several rows need, done once on first use and timed: ``get(key)`` -> value."""

    def __init__(self, makers: dict[str, Callable[[], Any]]) -> None:
        self.makers, self.done = makers, {}

    def get(self, key: str) -> Any:
        if key not in self.done:
            t0 = time.perf_counter()
            value = self.makers[key]()
            self.done[key] = (value, time.perf_counter() - t0)
        return self.done[key][0]

    def seconds(self, key: str) -> float:
        return self.done[key][1]


def _shared_work(model: nn.Module, calib_ids: torch.Tensor, n_samples: int,
                 seq_len: int) -> _SharedWork:
    """``"stats"``: one calibration pass on the float model, shared by GPTQ and AWQ (AWQ's
    statistics hold ``XᵀX/n``; GPTQ's Hessian is twice that); ``"rotated"``: the model
    after the Hadamard-style rotation."""

    def calibration_stats() -> dict:
        batches = calibration_batches(calib_ids, n_samples, seq_len)
        return collect_awq_stats(model, list(find_linears(model)), batches)

    def rotated() -> nn.Module:
        m = copy.deepcopy(model)
        rotate_model_(m, seed=0)
        return m

    return _SharedWork({"stats": calibration_stats, "rotated": rotated})


@dataclass
class RowSpec:
    """One row to measure: which method runs on which copy, and the shared work it needs.

    Attributes:
        family, method, setting, bits_per_weight: the row's labels (see :class:`ResultRow`).
        run: ``run(model_copy, shared, **kwargs)`` quantizes the copy in place; ``None``
            measures the float model as loaded.
        kwargs: the method's settings.
        base: shared work whose model is copied instead of the float model (``"rotated"``).
        needs: shared work the method reads (``"stats"``: the calibration pass).
        timed: whether the row's seconds are measured (the KV rows only install hooks).
    """

    family: str
    method: str
    setting: str
    bits_per_weight: float
    run: Callable[..., None] | None
    kwargs: dict = field(default_factory=dict)
    base: str | None = None
    needs: tuple[str, ...] = ()
    timed: bool = True


def _plain(method: Callable[..., object]) -> Callable[..., None]:
    """A method that needs no shared work, as a ``run``."""
    def run(m: nn.Module, shared: _SharedWork, **kw: object) -> None:
        method(m, **kw)
    return run


def _gptq(m: nn.Module, shared: _SharedWork, **kw: object) -> None:
    """GPTQ as published: block by block, each block calibrated on the outputs of the blocks
    before it, already quantized (its own calibration passes, timed in its row)."""
    gptq_quantize_(m, **kw)


def _awq(m: nn.Module, shared: _SharedWork, **kw: object) -> None:
    awq_quantize_(m, None, stats=shared.get("stats"), **kw)


def _kv(m: nn.Module, shared: _SharedWork, **kw: object) -> None:
    kv_quantize_(m, keys="channel", values="token", **kw)


def _row_specs(model: nn.Module, calib_ids: torch.Tensor, *, bits: tuple[int, ...],
               group_size: int, kv_bits: tuple[int, ...], families: tuple[str, ...],
               n_samples: int, seq_len: int, progress: bool) -> list[RowSpec]:
    """Every row of the table, in order (see the module docstring)."""
    specs = [RowSpec("baseline", "float", "as loaded (float32)", 32.0, None)]
    if "weight-only" in families:
        for b in bits:
            bpw, setting = block_linear_bits(model, b, group_size), f"W{b} g{group_size}"
            kw = dict(bits=b, group_size=group_size, progress=progress)
            specs += [
                RowSpec("weight-only", "RTN", setting, bpw, _plain(rtn_quantize_), kw),
                RowSpec("weight-only", "GPTQ", setting, bpw, _gptq,
                        dict(kw, calib_ids=calib_ids, n_samples=n_samples, seq_len=seq_len)),
                RowSpec("weight-only", "AWQ", setting, bpw, _awq, kw, needs=("stats",)),
                RowSpec("weight-only", "HQQ", setting, bpw, _plain(hqq_quantize_), kw),
                RowSpec("weight-only", "rotation + RTN", setting, bpw, _plain(rtn_quantize_), kw,
                        base="rotated"),
            ]
    if "W8A8" in families:
        w8, setting = block_linear_bits(model, 8, None, symmetric=True), "W8 per-channel, A8"
        smooth = dict(calib_ids=calib_ids, alpha=0.5, n_samples=n_samples, seq_len=seq_len)
        for label, method, kw in (
            ("naive (per-tensor acts)", w8a8_quantize_, dict(act_granularity="tensor")),
            ("per-token acts", w8a8_quantize_, dict(act_granularity="token")),
            ("SmoothQuant α=0.5", smoothquant_quantize_, smooth),
            ("LLM.int8() τ=6", llm_int8_quantize_, dict(threshold=6.0)),
        ):
            specs.append(RowSpec("W8A8", label, setting, w8, _plain(method),
                                 dict(progress=progress, **kw)))
    if "KV cache" in families:
        layers, kv_heads, head_dim = kv_dims(model.config)
        fp16 = kv_bytes_per_token(layers, kv_heads, head_dim)
        for b in kv_bits:
            per_token = kv_bytes_per_token(layers, kv_heads, head_dim, KVSpec(b, "channel"),
                                           KVSpec(b, "token"))
            specs.append(RowSpec("KV cache", f"K per-channel, V per-token, {b} bits",
                                 f"{per_token:,.0f} bytes/token (fp16: {fp16:,.0f})", 32.0,
                                 _kv, dict(bits=b), timed=False))
    return specs


def _quantized_copy(model: nn.Module, spec: RowSpec,
                    shared: _SharedWork) -> tuple[nn.Module, float]:
    """The model ``spec`` measures and its quantization seconds (shared work included)."""
    if spec.run is None:
        return model, 0.0
    before = [*spec.needs, *([spec.base] if spec.base else [])]
    for key in before:
        shared.get(key)                                     # done (and timed) once, first
    m = copy.deepcopy(model if spec.base is None else shared.get(spec.base))
    t0 = time.perf_counter()
    spec.run(m, shared, **spec.kwargs)
    seconds = sum(shared.seconds(k) for k in before) + time.perf_counter() - t0
    return m, seconds if spec.timed else 0.0


@torch.no_grad()
def results_table(
    model: nn.Module,
    calib_ids: torch.Tensor,
    eval_ids: torch.Tensor,
    *,
    bits: tuple[int, ...] = (4, 3),
    group_size: int = 128,
    kv_bits: tuple[int, ...] = (8, 4, 2),
    context_len: int = 512,
    n_samples: int = 8,
    seq_len: int = 256,
    families: tuple[str, ...] = FAMILIES,
    methods: tuple[str, ...] | None = None,
    store: bool = True,
    progress: bool = False,
    on_row: Callable[[ResultRow], None] | None = None,
) -> list[ResultRow]:
    """Run Part VI's methods on copies of ``model`` and measure each one's perplexity.

    Every row is stored on disk (:func:`results_dir`, :class:`RowCache`) under a hash of the
    code, the model's weights, the token ids and the settings, and reused when asked for
    again with exactly those. The method chapters call this function for their own rows; the
    closing chapter then finds them already measured, and computes only what is missing (the
    numbers are the same either way: the same function computes them).

    Args:
        model: the float causal LM; it is never modified (each method gets a deep copy).
        calib_ids: 1-D calibration token ids, cut into ``n_samples`` windows of ``seq_len``.
        eval_ids: 1-D evaluation token ids, disjoint from ``calib_ids``.
        bits: weight bit widths for the weight-only rows.
        group_size: input columns per scale and zero point for the weight-only rows.
        kv_bits: bit widths for the KV-cache rows.
        context_len: evaluation window.
        n_samples, seq_len: calibration windows (GPTQ, AWQ, SmoothQuant).
        families: which families of rows to measure (the baseline always comes first).
        methods: if given, only rows whose method is listed (e.g. ``("RTN", "GPTQ")``).
        store: read and write stored rows; ``False`` always recomputes and writes nothing.
        progress: tqdm bars inside the methods.
        on_row: called with each row as soon as it is available (e.g. ``print``).

    Returns:
        The rows in the order listed in the module docstring.

    Raises:
        ValueError: bad ``bits``, ``kv_bits``, ``group_size`` or ``families``.
    """
    _check_args(tuple(bits), tuple(kv_bits), group_size)
    check_module(model, "model")
    for ids, name in ((calib_ids, "calib_ids"), (eval_ids, "eval_ids")):
        _check_vocab(_as_1d_ids(ids, name), model, name)
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"families must be a subset of {FAMILIES}, got {sorted(unknown)}")
    settings = dict(group_size=group_size, context_len=context_len, n_samples=n_samples,
                    seq_len=seq_len)
    cache = RowCache(results_dir(), model, calib_ids, eval_ids, settings) if store else None
    shared = _shared_work(model, calib_ids, n_samples, seq_len)
    specs = _row_specs(model, calib_ids, bits=tuple(bits), group_size=group_size,
                       kv_bits=tuple(kv_bits), families=families, n_samples=n_samples,
                       seq_len=seq_len, progress=progress)
    rows: list[ResultRow] = []
    for spec in specs:
        if spec.run is not None and methods is not None and spec.method not in methods:
            continue
        row = cache.get(spec.family, spec.method, spec.setting) if cache else None
        if row is None:
            m, seconds = _quantized_copy(model, spec, shared)
            r = perplexity(m, eval_ids, context_len=context_len, progress=False)
            row = ResultRow(spec.family, spec.method, spec.setting, r.ppl,
                            spec.bits_per_weight, seconds, r.n_tokens, r.context_len,
                            [round(v, 5) for v in r.token_nll.tolist()],
                            list(r.window_tokens))
            if cache:
                cache.put(row)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def format_table(rows: list[ResultRow]) -> str:
    """A Markdown table of ``rows`` (perplexity to 2 decimals, bits per weight to 2).

    >>> print(format_table([ResultRow("baseline", "float", "fp32", 13.381, 32.0, 0.0, 511, 512)]))
    | family | method | setting | ppl | bits/weight | quantize s |
    | --- | --- | --- | ---: | ---: | ---: |
    | baseline | float | fp32 | 13.38 | 32.00 | 0.0 |
    """
    lines = ["| family | method | setting | ppl | bits/weight | quantize s |",
             "| --- | --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r.family} | {r.method} | {r.setting} | {r.ppl:.2f} | "
                     f"{r.bits_per_weight:.2f} | {r.seconds:.1f} |")
    return "\n".join(lines)


def rows_as_dicts(rows: list[ResultRow], per_token: bool = False) -> list[dict]:
    """The rows as plain dicts (for JSON); ``per_token=False`` leaves out ``token_nll``."""
    return [{k: v for k, v in asdict(r).items() if per_token or k != "token_nll"}
            for r in rows]
