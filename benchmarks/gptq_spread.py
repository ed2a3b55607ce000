"""GPTQ as a spread, not one draw: inwhale's block-sequential GPTQ under small perturbations.

The protocol of issue 14 (the same one the README's reference figures were measured with):
SmolLM2-135M (the offline GGUF model, dequantized Q4_1 as the float baseline); ``ids =
token_ids(tokenizer)``; calibration = 32 consecutive windows of 512 tokens from
``ids[20000:]``; evaluation = ``ids[:8192]`` in non-overlapping windows of 512 (8,176 scored
tokens); asymmetric min–max grids, damping 0.01, 2 threads.

Each *perturbation* changes one thing that should not matter — the calibration batch size
(windows per forward pass: 1, 2, 4, 8, 16), the damping (±1 %, ±2 % or ±3 % of 0.01),
the order of the calibration windows (reversed), where they start (a quarter, half or three
quarters of a window later) —
and the command reports every run, then the median
and the spread (min–max) of the perplexity, and the median wall time. The float model and
RTN are measured once for reference.

    .venv/bin/python benchmarks/gptq_spread.py                       # W3 g128, 9 runs
    .venv/bin/python benchmarks/gptq_spread.py --runs common         # the reference's five
    .venv/bin/python benchmarks/gptq_spread.py --runs common10       # ... and five more
    .venv/bin/python benchmarks/gptq_spread.py --runs common15       # ... and five more
    .venv/bin/python benchmarks/gptq_spread.py --bits 4 --act-order  # W4 g128 with act-order
    .venv/bin/python benchmarks/gptq_spread.py --runs batch1,damp     # a subset
    .venv/bin/python benchmarks/gptq_spread.py --true-sequential      # the reference's flag
    .venv/bin/python benchmarks/gptq_spread.py --act-order --static-groups

Modes (the reference's flags): ``--act-order`` (dynamic groups with ``g_idx``, the reference's
default), ``--static-groups`` (groups fixed up front from the float weights),
``--true-sequential`` (the linears of a block in data-flow order, Hessians recollected).

Cost on this project's 2-core machine (quiet): about 2–4 min per GPTQ run plus about 30 s per
evaluation, so the default nine runs take roughly forty minutes. Writes
``benchmarks/gptq_spread_W{bits}{-actorder}{-static}{-trueseq}.json``. Not a pass/fail test.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from inwhale.data.smollm2 import load_smollm2
from inwhale.data.text import token_ids
from inwhale.device import seed_everything
from inwhale.llm.gptq import gptq_quantize_
from inwhale.llm.harness import perplexity
from inwhale.llm.rtn import rtn_quantize_

ROOT = Path(__file__).resolve().parents[1]
N_WINDOWS, WINDOW, CALIB_START, EVAL_TOKENS = 32, 512, 20_000, 8192

# name -> (calibration batch size, damping, reversed window order, first calibration token)
PERTURBATIONS = {
    "batch1": (1, 0.01, False, CALIB_START),
    "batch2": (2, 0.01, False, CALIB_START),
    "batch4": (4, 0.01, False, CALIB_START),
    "batch8": (8, 0.01, False, CALIB_START),       # gptq_quantize_'s default batch size
    "batch16": (16, 0.01, False, CALIB_START),
    "damp": (8, 0.0101, False, CALIB_START),
    "damp-": (8, 0.0099, False, CALIB_START),
    "reversed": (8, 0.01, True, CALIB_START),
    "shift": (8, 0.01, False, CALIB_START + WINDOW // 2),   # every window half a window later
    "damp2": (8, 0.0102, False, CALIB_START),
    "damp2-": (8, 0.0098, False, CALIB_START),
    "shift128": (8, 0.01, False, CALIB_START + WINDOW // 4),
    "shift384": (8, 0.01, False, CALIB_START + 3 * WINDOW // 4),
    "reversed-shift": (8, 0.01, True, CALIB_START + WINDOW // 2),
    "damp3": (8, 0.0103, False, CALIB_START),
    "damp3-": (8, 0.0097, False, CALIB_START),
    "shift64": (8, 0.01, False, CALIB_START + WINDOW // 8),
    "shift192": (8, 0.01, False, CALIB_START + 3 * WINDOW // 8),
    "shift320": (8, 0.01, False, CALIB_START + 5 * WINDOW // 8),
}
# Named sets for --runs. "common": the five that the reference code has too (it has no batch
# size: it adds one window at a time), the set the README compares medians over. "common10"
# and "common15" add more of the same kinds (damping ±2 % and ±3 %, windows shifted by other
# fractions of a window, reversed and shifted), for settings where five runs per code cannot
# tell two medians apart.
COMMON = "batch8,damp,damp-,reversed,shift"
RUN_SETS = {
    "default": "batch1,batch2,batch4,batch8,batch16,damp,damp-,reversed,shift",
    "common": COMMON,
    "common10": f"{COMMON},damp2,damp2-,shift128,shift384,reversed-shift",
    "common15": f"{COMMON},damp2,damp2-,shift128,shift384,reversed-shift,"
                "damp3,damp3-,shift64,shift192,shift320",
}

def calibration_stream(ids: torch.Tensor, reverse: bool, start: int = CALIB_START) -> torch.Tensor:
    """32 consecutive windows of 512 tokens from ``ids[start:]`` (``ids[20000:]`` in the
    protocol), flattened; ``reverse`` puts the windows in the opposite order (each window's
    tokens unchanged)."""
    windows = ids[start : start + N_WINDOWS * WINDOW].reshape(N_WINDOWS, WINDOW)
    return (windows.flip(0) if reverse else windows).reshape(-1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bits", type=int, default=3)
    p.add_argument("--group-size", type=int, default=128)
    p.add_argument("--act-order", action="store_true")
    p.add_argument("--static-groups", action="store_true")
    p.add_argument("--true-sequential", action="store_true")
    p.add_argument("--runs", default="default",
                   help=f"comma-separated subset of {', '.join(PERTURBATIONS)}, or a named set: "
                        + "; ".join(f"'{k}' = {v}" for k, v in RUN_SETS.items()))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the float and RTN evaluations (e.g. when runs are split over "
                        "several processes)")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON path (default benchmarks/gptq_spread_<setting>.json)")
    args = p.parse_args()
    runs = RUN_SETS.get(args.runs, args.runs).split(",")
    unknown = set(runs) - set(PERTURBATIONS)
    if unknown:
        p.error(f"--runs: unknown {sorted(unknown)}; choose from {list(PERTURBATIONS)}")

    torch.set_num_threads(args.threads)
    seed_everything(0)
    model, tok = load_smollm2(device="cpu")
    ids = token_ids(tok)
    eval_ids = ids[:EVAL_TOKENS]
    modes = [m for m, on in (("act-order", args.act_order), ("static-groups", args.static_groups),
                             ("true-sequential", args.true_sequential)) if on]
    label = " ".join([f"W{args.bits} g{args.group_size}", *modes])
    out = {"protocol": __doc__.split("\n\n")[1], "setting": label, "torch": torch.__version__,
           "platform": platform.platform(), "threads": args.threads,
           "date": time.strftime("%Y-%m-%d"), "runs": {}}
    short = {"act-order": "-actorder", "static-groups": "-static", "true-sequential": "-trueseq"}
    suffix = f"W{args.bits}" + "".join(short[m] for m in modes)
    path = args.out or ROOT / "benchmarks" / f"gptq_spread_{suffix}.json"

    def evaluate(m: torch.nn.Module) -> float:
        return perplexity(m, eval_ids, context_len=WINDOW, progress=False).ppl

    if not args.no_baselines:
        out["float"] = evaluate(model)
        rtn = copy.deepcopy(model)
        rtn_quantize_(rtn, bits=args.bits, group_size=args.group_size, progress=False)
        out["rtn"] = evaluate(rtn)
        del rtn
        print(f"{label}: float {out['float']:.2f}, RTN {out['rtn']:.2f}", flush=True)
    for name in runs:
        batch, damp, reverse, start = PERTURBATIONS[name]
        m = copy.deepcopy(model)
        t0 = time.perf_counter()
        gptq_quantize_(m, calibration_stream(ids, reverse, start), bits=args.bits,
                       group_size=args.group_size, percdamp=damp, act_order=args.act_order,
                       static_groups=args.static_groups, true_sequential=args.true_sequential,
                       n_samples=N_WINDOWS, seq_len=WINDOW, batch_size=batch, progress=False)
        seconds = time.perf_counter() - t0
        ppl = evaluate(m)
        del m
        out["runs"][name] = {"ppl": ppl, "seconds": seconds, "batch_size": batch,
                             "percdamp": damp, "reversed": reverse,
                             "calib_start": start}
        print(f"  {name:9s} ppl {ppl:7.2f}   {seconds:6.0f} s", flush=True)
        path.write_text(json.dumps(out, indent=2))           # partial results survive a kill
    ppls = [r["ppl"] for r in out["runs"].values()]
    out["median"], out["min"], out["max"] = statistics.median(ppls), min(ppls), max(ppls)
    out["median_seconds"] = statistics.median(r["seconds"] for r in out["runs"].values())
    print(f"{label}: median {out['median']:.2f}, spread {out['min']:.2f}-{out['max']:.2f} over "
          f"{len(ppls)} runs; median {out['median_seconds']:.0f} s per run")
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
