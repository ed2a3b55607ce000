"""The Part VI results table with more evaluation tokens than the book can afford.

Runs :func:`inwhale.llm.results.results_table` — the same function the book's closing
chapter calls — on SmolLM2-135M (the offline GGUF model, dequantized Q4_1 as the float
baseline) and the pydoc text, then prints a Markdown table and writes it as JSON to
``--out`` (default ``llm_table.json`` in :func:`inwhale.llm.results.results_dir`, outside the
repository). Not a pass/fail test.

    .venv/bin/python benchmarks/llm_table.py                      # 8,192 eval tokens
    .venv/bin/python benchmarks/llm_table.py --eval-tokens 32768 --calib-samples 32
    .venv/bin/python benchmarks/llm_table.py --eval-tokens 1024 --calib-samples 8  # = the book

Time on a 2-core CPU: about (19 evaluations × eval_tokens / 150 tokens/s) plus a few
minutes of quantization; the default took 696 s on this project's 2-core machine
(2026-12-03, block-sequential GPTQ: float 9.87, W4 g128 RTN 13.23 / GPTQ 11.84 / AWQ 11.76 /
HQQ 13.30, W3 g128 RTN 51.78 / GPTQ 22.22 / AWQ 20.93; the whole table is in the README).
Pass ``--model`` to run the same table
on any Hugging Face causal LM you have locally (e.g. a path to OPT-125M).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from inwhale.data.smollm2 import load_causal_lm, load_smollm2
from inwhale.data.text import token_splits
from inwhale.device import default_device, seed_everything
from inwhale.llm.harness import find_linears
from inwhale.llm.results import format_table, results_dir, results_table, rows_as_dicts


def check_settings(p: argparse.ArgumentParser, args: argparse.Namespace, model) -> None:
    """Refuse settings the model cannot take before any time is spent on the baseline."""
    for name in ("eval_tokens", "calib_samples", "seq_len", "context", "group_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive int")
    try:
        widths = {n: lin.in_features for n, lin in find_linears(model).items()}
    except ValueError as err:  # e.g. GPT-2: Conv1D, no nn.Linear
        p.error(str(err))
    narrow = min(widths, key=widths.get)
    if args.group_size > widths[narrow]:
        p.error(f"--group-size {args.group_size} is wider than {narrow} "
                f"(in_features={widths[narrow]}); pick at most {widths[narrow]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--eval-tokens", type=int, default=8192)
    p.add_argument("--calib-samples", type=int, default=16, help="windows of --seq-len tokens")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--context", type=int, default=512)
    p.add_argument("--group-size", type=int, default=128)
    p.add_argument("--model", default=None, help="HF name or path (default: offline SmolLM2)")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON output (default: llm_table.json in inwhale's results folder)")
    args = p.parse_args()

    seed_everything(0)
    device = default_device()
    t0 = time.perf_counter()
    model, tok = load_smollm2(device=device) if args.model is None else load_causal_lm(
        args.model, device=device)
    check_settings(p, args, model)
    out = args.out or results_dir() / "llm_table.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    # The book's chapters cut calibration windows from the first 16,384 tokens; the same
    # split here makes `--eval-tokens 1024 --calib-samples 8` reproduce the chapter's table.
    calib, evl = token_splits(tok, calib_tokens=max(16_384, args.calib_samples * args.seq_len),
                              eval_tokens=args.eval_tokens)
    print(f"model on {device}; {args.calib_samples} x {args.seq_len} calibration tokens, "
          f"{args.eval_tokens:,} evaluation tokens, context {args.context}")
    rows = results_table(model, calib, evl, group_size=args.group_size,
                         context_len=args.context, n_samples=args.calib_samples,
                         seq_len=args.seq_len,
                         on_row=lambda r: print(f"  {r.method:28s} {r.setting:40s} {r.ppl:8.2f}"))
    print()
    print(format_table(rows))
    out.write_text(json.dumps({
        "args": {k: str(v) for k, v in vars(args).items()},
        "device": str(device), "torch": torch.__version__, "platform": platform.platform(),
        "seconds": time.perf_counter() - t0, "rows": rows_as_dicts(rows)}, indent=2))
    print(f"\nwrote {out} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
