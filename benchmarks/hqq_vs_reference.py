"""HQQ: inwhale against the authors' ``hqq`` package on the whole of SmolLM2 (issue 14 §2).

Every block linear of SmolLM2-135M (the offline GGUF model, dequantized Q4_1 as the float
baseline) is quantized at W4 g128 and W3 g128, asymmetric, and the perplexity is measured
with :func:`inwhale.llm.harness.perplexity` on ``ids[:8192]`` (``ids = token_ids(tok)``) in
non-overlapping windows of 512. Rows:

* ``RTN`` — :func:`inwhale.llm.rtn.rtn_quantize_`, min–max, groups of 128 columns per row.
* ``inwhale HQQ`` — :func:`inwhale.llm.hqq.hqq_quantize_` with its defaults (the published
  method: exact min–max start, ``β ← 1.01 β``, keep the best zero point), groups of 128
  columns per row (the last group of a 576-column row has 64).
* ``inwhale HQQ (round_zero)`` — the same, started from the core's whole-code zero point
  (inwhale's behaviour before issue 14 §2).
* ``inwhale HQQ (package settings)`` — inwhale's solver with the package's choices:
  ``round_zero`` as in ``hqq_base_quant_config`` (on at 4 bits, off at 3), constant ``β``
  (``kappa=1``), the last zero point (``keep="last"``), and the package's flat groups
  (128 consecutive elements of the flattened matrix, ``W.reshape(-1, 128)``).
* ``hqq package axis=1`` — ``Quantizer.quantize`` with ``hqq_base_quant_config``'s
  settings (``axis=1``, the package README's recommendation), on the CPU (float32; the
  package computes in float16 only on CUDA), dequantized in float32 and written into a copy
  of the model.
* ``hqq package axis=0`` — the same with ``axis=0``, ``Quantizer.quantize``'s own default:
  groups of 128 elements strided through the flattened matrix (``W.reshape(128, -1)``), not
  along the input dimension. A diagnostic for the earlier, far-apart comparison.

It also writes the weight-space error of every linear for RTN and inwhale HQQ: relative
Frobenius ``‖W − Ŵ‖_F / ‖W‖_F``, mean ``|W − Ŵ|`` and the ``ℓ_0.7`` error ``mean|W − Ŵ|^0.7``.

    .venv/bin/python benchmarks/hqq_vs_reference.py              # W4 and W3, ~10 min
    .venv/bin/python benchmarks/hqq_vs_reference.py --bits 3 --methods RTN "inwhale HQQ"

Writes ``benchmarks/hqq_vs_reference.json``. Not a pass/fail test.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from inwhale.data.smollm2 import load_smollm2
from inwhale.data.text import token_ids
from inwhale.llm.harness import block_linears, perplexity
from inwhale.llm.hqq import hqq_quantize_, hqq_weight
from inwhale.llm.rtn import rtn_quantize_

ROOT = Path(__file__).resolve().parents[1]
GROUP, WINDOW, EVAL_TOKENS = 128, 512, 8192


def package_weight(W: torch.Tensor, bits: int, axis: int) -> torch.Tensor:
    """The ``hqq`` package's dequantized weight, float32, with its base config's settings."""
    from hqq.core.quantize import Quantizer, hqq_base_quant_config

    cfg = hqq_base_quant_config(nbits=bits, group_size=GROUP, axis=axis)["weight_quant_params"]
    codes, meta = Quantizer.quantize(W.float(), bitpack=False, device="cpu",
                                     compute_dtype=torch.float32, **cfg)
    meta["compute_dtype"] = torch.float32
    return Quantizer.dequantize(codes, meta).reshape(W.shape)


def per_layer(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[nn.Module, int], None]:
    """A whole-model method that replaces every block linear's weight by ``fn(W)``."""
    @torch.no_grad()
    def apply(model: nn.Module, bits: int) -> None:
        for lin in block_linears(model).values():
            lin.weight.copy_(fn(lin.weight, bits).to(lin.weight.dtype))
    return apply


def package_settings(W: torch.Tensor, bits: int) -> torch.Tensor:
    """inwhale's solver with the package's settings and flat group layout."""
    flat = hqq_weight(W.reshape(-1, GROUP), bits=bits, group_size=GROUP, kappa=1.0,
                      keep="last", round_zero=bits == 4)
    return flat.reshape(W.shape)


METHODS: dict[str, Callable[[nn.Module, int], object]] = {   # --methods takes these keys
    "RTN": lambda m, b: rtn_quantize_(m, bits=b, group_size=GROUP, progress=False),
    "inwhale HQQ": lambda m, b: hqq_quantize_(m, bits=b, group_size=GROUP, progress=False),
    "inwhale HQQ (round_zero)": lambda m, b: hqq_quantize_(m, bits=b, group_size=GROUP,
                                                           round_zero=True, progress=False),
    "inwhale HQQ (package settings)": per_layer(package_settings),
    "hqq package axis=1": per_layer(lambda W, b: package_weight(W, b, axis=1)),
    "hqq package axis=0": per_layer(lambda W, b: package_weight(W, b, axis=0)),
}


@torch.no_grad()
def weight_errors(ref: nn.Module, model: nn.Module) -> dict[str, dict[str, float]]:
    """Per block linear: relative Frobenius, mean-abs and l0.7 error of the weight."""
    out = {}
    quant = block_linears(model)
    for name, lin in block_linears(ref).items():
        W, E = lin.weight.float(), lin.weight.float() - quant[name].weight.float()
        out[name] = {"rel_fro": float(E.norm() / W.norm()), "l1": float(E.abs().mean()),
                     "lp07": float(E.abs().pow(0.7).mean())}
    return out


def summarize(errs: dict[str, dict[str, dict[str, float]]], bits: int) -> dict[str, object]:
    """HQQ/RTN ratios of each weight error, over all layers and per projection kind."""
    rtn, hqq = errs[f"RTN W{bits}"], errs[f"inwhale HQQ W{bits}"]
    out: dict[str, object] = {}
    for metric in ("rel_fro", "l1", "lp07"):
        ratios = {n: hqq[n][metric] / rtn[n][metric] for n in rtn}
        kinds: dict[str, list[float]] = {}
        for n, r in ratios.items():
            kinds.setdefault(n.rsplit(".", 1)[-1], []).append(r)
        out[metric] = {
            "median": statistics.median(ratios.values()), "min": min(ratios.values()),
            "max": max(ratios.values()), "hqq_worse": sum(r > 1 for r in ratios.values()),
            "layers": len(ratios),
            "median_by_kind": {k: statistics.median(v) for k, v in sorted(kinds.items())},
        }
    return out


def save(path: Path, rows: list[dict], errs: dict[str, dict[str, dict[str, float]]],
         bits: list[int]) -> None:
    """Write the rows so far, the weight-error summary and the per-layer errors."""
    summary = {f"W{b}": summarize(errs, b) for b in bits
               if f"RTN W{b}" in errs and f"inwhale HQQ W{b}" in errs}
    path.write_text(json.dumps({
        "protocol": f"SmolLM2-135M GGUF (dequantized Q4_1), ids[:{EVAL_TOKENS}], windows of "
                    f"{WINDOW}, every block linear, asymmetric, groups of {GROUP}",
        "machine": platform.processor() or platform.machine(), "threads": 2,
        "torch": torch.__version__, "rows": rows, "weight_error_summary": summary,
        "weight_errors": errs}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bits", type=int, nargs="+", default=[4, 3])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "hqq_vs_reference.json")
    ap.add_argument("--no-float", action="store_true", help="skip the float model's row")
    ap.add_argument("--no-eval", action="store_true", help="weight errors only, no perplexity")
    args = ap.parse_args()
    torch.set_num_threads(2)
    model, tok = load_smollm2()
    ids = token_ids(tok)[:EVAL_TOKENS]
    rows: list[dict] = []
    if not (args.no_float or args.no_eval):
        t0 = time.perf_counter()
        rows.append({"method": "float", "setting": "-", "ppl": perplexity(
            model, ids, WINDOW, progress=False).ppl, "quant_s": 0.0,
            "eval_s": time.perf_counter() - t0})
        print(f"float ppl {rows[0]['ppl']:.3f}", flush=True)
    errs: dict[str, dict[str, dict[str, float]]] = {}
    for bits in args.bits:
        for name in args.methods:
            m = copy.deepcopy(model)
            t0 = time.perf_counter()
            METHODS[name](m, bits)
            t1 = time.perf_counter()
            ppl = float("nan") if args.no_eval else perplexity(m, ids, WINDOW,
                                                                 progress=False).ppl
            rows.append({"method": name, "setting": f"W{bits} g{GROUP}", "ppl": ppl,
                         "quant_s": t1 - t0, "eval_s": time.perf_counter() - t1})
            errs[f"{name} W{bits}"] = weight_errors(model, m)
            print(f"W{bits} g{GROUP} {name:32s} ppl {ppl:8.3f}  quantize {t1 - t0:6.1f} s  "
                  f"eval {rows[-1]['eval_s']:6.1f} s", flush=True)
            save(args.out, rows, errs, args.bits)
            del m
    print(json.dumps(json.loads(args.out.read_text())["weight_error_summary"], indent=1))


if __name__ == "__main__":
    main()
