"""One table for Part VI: every method of the part, run on the same model, data and metric.

:func:`results_table` quantizes fresh copies of a float model with each method of
:mod:`inwhale.llm` and measures the perplexity of each on the same evaluation tokens. The
book's closing chapter calls it with a small evaluation set (it must run in minutes on a
laptop CPU); ``benchmarks/llm_table.py`` calls the *same function* with more tokens.

Rows (``b`` = each weight bit width asked for, groups of ``g`` input columns):

* ``baseline`` — the float model as loaded;
* weight-only at ``W{b} g{g}``: RTN, GPTQ, AWQ, HQQ, and a Hadamard-style rotation followed by
  RTN. GPTQ and AWQ share one calibration pass: AWQ's statistics hold ``XᵀX/n``, and GPTQ's
  Hessian is twice that;
* W8A8 with per-channel int8 weights: activations per tensor (naive), per token, SmoothQuant
  (α = 0.5, per-tensor activations after smoothing) and LLM.int8() (τ = 6);
* KV cache at each ``kv_bits``: keys per channel, values per token (the KIVI layout), weights
  and activations left in float.

Bits per weight count what a file would store for the quantized linears: the code plus fp16
scale and zero point per group (:func:`inwhale.llm.rtn.bits_per_weight`), averaged over the
linears weighted by size. The baseline is float32 as held in memory (32); the embedding / tied
output head is never quantized by these methods and is not counted.

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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inwhale.llm.act_quant import w8a8_quantize_
from inwhale.llm.awq import awq_quantize_, collect_awq_stats
from inwhale.llm.gptq import decoder_blocks, gptq_quantize_, rtn_quantize_
from inwhale.llm.harness import calibration_batches, find_linears, perplexity
from inwhale.llm.hqq import hqq_quantize_
from inwhale.llm.kv import KVSpec, kv_bytes_per_token, kv_dims, quantize_kv_
from inwhale.llm.llm_int8 import llm_int8_quantize_
from inwhale.llm.rotation import rotate_model_
from inwhale.llm.rtn import bits_per_weight
from inwhale.llm.smoothquant import smoothquant_quantize_

__all__ = [
    "FAMILIES",
    "WEIGHT_METHODS",
    "ResultRow",
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
            needs first: the calibration pass that GPTQ and AWQ share (counted in full for
            each), and the rotation of the weights for ``rotation + RTN``.
    """

    family: str
    method: str
    setting: str
    ppl: float
    bits_per_weight: float
    seconds: float
    n_tokens: int
    context_len: int


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
    inside = {id(m) for m in decoder_blocks(model).modules()}
    total = weighted = 0.0
    for lin in (m for m in model.modules() if isinstance(m, nn.Linear) and id(m) in inside):
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


class _Store:
    """One JSON file per measured row, named by a hash of everything the number depends on:
    the code, the model's weights, the token ids, and the row's own settings."""

    def __init__(self, enabled: bool, model: nn.Module, calib_ids: torch.Tensor,
                 eval_ids: torch.Tensor, settings: dict) -> None:
        self.enabled = enabled
        if enabled:
            h = hashlib.sha256()
            for part in (code_fingerprint(), model_fingerprint(model),
                         json.dumps(settings, sort_keys=True)):
                h.update(part.encode())
            for ids in (calib_ids, eval_ids):
                h.update(ids.detach().cpu().numpy().astype("int64").tobytes())
            self.base = h.hexdigest()
            self.dir = results_dir()

    def _path(self, family: str, method: str, setting: str) -> Path:
        key = hashlib.sha256(f"{self.base}|{family}|{method}|{setting}".encode()).hexdigest()
        return self.dir / f"{key[:32]}.json"

    def get(self, family: str, method: str, setting: str) -> ResultRow | None:
        if not self.enabled:
            return None
        path = self._path(family, method, setting)
        return ResultRow(**json.loads(path.read_text())) if path.exists() else None

    def put(self, row: ResultRow) -> None:
        if not self.enabled:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self._path(row.family, row.method, row.setting)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(row)))
        tmp.replace(path)                        # atomic: parallel chapters may write it too


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

    Every row is stored on disk (:func:`results_dir`) under a hash of the code, the model's
    weights, the token ids and the settings, and reused when asked for again with exactly
    those. The method chapters call this function for their own rows; the closing chapter
    then finds them already measured, and computes only what is missing (the numbers are
    the same either way: the same function computes them).

    Args:
        model: the float causal LM; it is never modified (each method gets a deep copy).
        calib_ids: 1-D calibration token ids, cut into ``n_samples`` windows of ``seq_len``.
        eval_ids: 1-D evaluation token ids, disjoint from ``calib_ids``.
        bits: weight bit widths for the weight-only rows.
        group_size: input columns per scale and zero point for the weight-only rows.
        kv_bits: bit widths for the KV-cache rows.
        context_len: evaluation window.
        families: which families of rows to measure (the baseline always comes first).
        methods: if given, only rows whose method is listed (e.g. ``("RTN", "GPTQ")``).
        store: read and write stored rows; ``False`` always recomputes and writes nothing.
        progress: tqdm bars inside the methods.
        on_row: called with each row as soon as it is available (e.g. ``print``).

    Returns:
        The rows in the order listed in the module docstring.
    """
    _check_args(tuple(bits), tuple(kv_bits), group_size)
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"families must be a subset of {FAMILIES}, got {sorted(unknown)}")
    settings = dict(group_size=group_size, context_len=context_len, n_samples=n_samples,
                    seq_len=seq_len)
    db = _Store(store, model, calib_ids, eval_ids, settings)
    rows: list[ResultRow] = []
    lazy: dict[str, tuple[Any, float]] = {}  # shared work: (value, seconds)

    def wanted(method: str) -> bool:
        return methods is None or method in methods

    def measure(family: str, method: str, setting: str, bpw: float,
                build: Callable[[], tuple[nn.Module, float]]) -> None:
        row = db.get(family, method, setting)
        if row is None:
            m, seconds = build()
            r = perplexity(m, eval_ids, context_len=context_len, progress=False)
            row = ResultRow(family, method, setting, r.ppl, bpw, seconds, r.n_tokens,
                            r.context_len)
            db.put(row)
        rows.append(row)
        if on_row is not None:
            on_row(row)

    def make_stats() -> dict:         # one calibration pass, shared by GPTQ and AWQ
        batches = calibration_batches(calib_ids, n_samples, seq_len)
        return collect_awq_stats(model, list(find_linears(model)), batches)

    def make_rotated() -> nn.Module:
        m = copy.deepcopy(model)
        rotate_model_(m, seed=0)
        return m

    shared: dict[str, Callable[[], object]] = {"stats": make_stats, "rotated": make_rotated}

    def once(key: str) -> tuple[Any, float]:
        """``(shared[key](), its seconds)``, computed on the first call only."""
        if key not in lazy:
            t0 = time.perf_counter()
            value = shared[key]()
            lazy[key] = (value, time.perf_counter() - t0)
        return lazy[key]

    def copy_and(method: Callable[..., object], base: str | None = None,
                 needs: str | None = None,
                 **kw: object) -> Callable[[], tuple[nn.Module, float]]:
        """A build step: copy the model (or the shared model ``base``), quantize it in place.

        ``needs`` names shared work the method depends on (done once for all methods); its
        seconds, and those of ``base``, are added to this method's time.
        """
        def build() -> tuple[nn.Module, float]:
            before = sum(once(k)[1] for k in (base, needs) if k is not None)
            m = copy.deepcopy(model if base is None else once(base)[0])
            t0 = time.perf_counter()
            method(m, **kw)
            return m, before + time.perf_counter() - t0
        return build

    measure("baseline", "float", "as loaded (float32)", 32.0, lambda: (model, 0.0))

    if "weight-only" in families:
        for b in bits:
            bpw = block_linear_bits(model, b, group_size)
            setting = f"W{b} g{group_size}"
            common = dict(bits=b, group_size=group_size, progress=progress)

            def gptq(m: nn.Module, **kw: object) -> None:
                hessians = {n: 2 * h for n, (h, _) in once("stats")[0].items()}
                gptq_quantize_(m, None, hessians=hessians, **kw)

            def awq(m: nn.Module, **kw: object) -> None:
                awq_quantize_(m, None, stats=once("stats")[0], **kw)

            for name, build in (
                ("RTN", copy_and(rtn_quantize_, calib_ids=None, **common)),
                ("GPTQ", copy_and(gptq, needs="stats", **common)),
                ("AWQ", copy_and(awq, needs="stats", **common)),
                ("HQQ", copy_and(hqq_quantize_, **common)),
                ("rotation + RTN", copy_and(rtn_quantize_, base="rotated", calib_ids=None,
                                            **common)),
            ):
                if wanted(name):
                    measure("weight-only", name, setting, bpw, build)

    if "W8A8" in families:
        w8 = block_linear_bits(model, 8, None, symmetric=True)
        for label, method, kw in (
            ("naive (per-tensor acts)", w8a8_quantize_, dict(act_granularity="tensor")),
            ("per-token acts", w8a8_quantize_, dict(act_granularity="token")),
            ("SmoothQuant α=0.5", smoothquant_quantize_,
             dict(calib_ids=calib_ids, alpha=0.5, n_samples=n_samples, seq_len=seq_len)),
            ("LLM.int8() τ=6", llm_int8_quantize_, dict(threshold=6.0)),
        ):
            if wanted(label):
                measure("W8A8", label, "W8 per-channel, A8", w8,
                        copy_and(method, progress=progress, **kw))

    if "KV cache" in families:
        layers, kv_heads, head_dim = kv_dims(model.config)
        fp16 = kv_bytes_per_token(layers, kv_heads, head_dim)
        for b in kv_bits:
            label = f"K per-channel, V per-token, {b} bits"
            if not wanted(label):
                continue
            per_token = kv_bytes_per_token(layers, kv_heads, head_dim, KVSpec(b, "channel"),
                                           KVSpec(b, "token"))

            def with_kv(b: int = b) -> tuple[nn.Module, float]:
                m = copy.deepcopy(model)
                quantize_kv_(m, bits=b, keys="channel", values="token")
                return m, 0.0

            measure("KV cache", label, f"{per_token:,.0f} bytes/token (fp16: {fp16:,.0f})",
                    32.0, with_kv)
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


def rows_as_dicts(rows: list[ResultRow]) -> list[dict]:
    """The rows as plain dicts (for JSON)."""
    return [asdict(r) for r in rows]
