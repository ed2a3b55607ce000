"""Benchmarks: inwhale's readable core against PyTorch's fused kernels, side by side.

Run ``bash scripts/bench.sh`` (or ``.venv/bin/python benchmarks/run.py``). Prints a table and
writes ``benchmarks/results.json``. Every figure is measured in this run; ratios compare
two kernels timed alternately on the same tensor, so machine load affects both alike.
Not a pass/fail test.

Rows:
* fake_quantize per-tensor and per-channel on a 4096×4096 float32 tensor vs
  ``torch.fake_quantize_per_tensor_affine`` / ``torch.fake_quantize_per_channel_affine``
  (target for the readable core: within 1.5× of ATen);
* pack / unpack throughput at 1, 2, 4, 8 bits;
* per-chapter execution seconds and book build seconds, read from the timing files the
  test command writes (``_build/timings/*.json``) when they exist.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

import torch

import inwhale

ROOT = Path(__file__).resolve().parents[1]


def timeit(fn, repeat: int = 7) -> float:
    """Median seconds of ``repeat`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def side_by_side(ours, ref, repeat: int = 7) -> tuple[float, float]:
    """Median seconds of two functions, timed alternately."""
    ours(), ref()
    a, b = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        ours()
        a.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref()
        b.append(time.perf_counter() - t0)
    return statistics.median(a), statistics.median(b)


def bench_fake_quantize(n: int = 4096) -> list[dict]:
    torch.manual_seed(0)
    x = torch.randn(n, n)
    rows = []
    qp = inwhale.choose_qparams(x, bits=8)
    s, z = float(qp.scale), int(qp.zero_point)
    ours, aten = side_by_side(lambda: inwhale.fake_quantize(x, qp),
                              lambda: torch.fake_quantize_per_tensor_affine(x, s, z, 0, 255))
    assert torch.equal(inwhale.fake_quantize(x, qp),
                       torch.fake_quantize_per_tensor_affine(x, s, z, 0, 255))
    rows.append(dict(name=f"fake_quantize per-tensor {n}x{n}", ours_s=ours, ref_s=aten,
                     ratio=ours / aten, ref="torch.fake_quantize_per_tensor_affine"))
    qp = inwhale.choose_qparams(x, bits=8, granularity=inwhale.PerAxis(0))
    sc, zp = qp.scale.flatten(), qp.zero_point.flatten()
    ours, aten = side_by_side(lambda: inwhale.fake_quantize(x, qp),
                              lambda: torch.fake_quantize_per_channel_affine(x, sc, zp, 0, 0, 255))
    rows.append(dict(name=f"fake_quantize per-channel {n}x{n}", ours_s=ours, ref_s=aten,
                     ratio=ours / aten, ref="torch.fake_quantize_per_channel_affine"))
    return rows


def bench_packing(numel: int = 1 << 24) -> list[dict]:
    rows = []
    g = torch.Generator().manual_seed(0)
    for bits in (1, 2, 4, 8):
        codes = torch.randint(0, 2**bits, (numel,), generator=g, dtype=torch.uint8)
        t_pack = timeit(lambda c=codes, b=bits: inwhale.pack_codes(c, b), repeat=3)
        packed = inwhale.pack_codes(codes, bits)
        t_unpack = timeit(lambda p=packed, b=bits: inwhale.unpack_codes(p, b, numel), repeat=3)
        rows.append(dict(name=f"pack/unpack {bits}-bit, {numel:,} codes",
                         pack_mcodes_per_s=numel / t_pack / 1e6,
                         unpack_mcodes_per_s=numel / t_unpack / 1e6))
    return rows


def read_timings() -> dict:
    out = {}
    tdir = ROOT / "_build" / "timings"
    for f in sorted(tdir.glob("*.json")) if tdir.exists() else []:
        out[f.stem] = json.loads(f.read_text())
    return out


def main() -> None:
    results = {
        "machine": dict(python=platform.python_version(), torch=torch.__version__,
                        threads=torch.get_num_threads(), processor=platform.processor()),
        "fake_quantize": bench_fake_quantize(),
        "packing": bench_packing(),
        "timings": read_timings(),
    }
    print(f"{'benchmark':45s} {'inwhale s':>10s} {'ATen s':>10s} {'ratio':>7s}")
    for r in results["fake_quantize"]:
        print(f"{r['name']:45s} {r['ours_s']:10.4f} {r['ref_s']:10.4f} {r['ratio']:7.2f}")
    print(f"\n{'packing':45s} {'pack Mcodes/s':>14s} {'unpack Mcodes/s':>16s}")
    for r in results["packing"]:
        print(f"{r['name']:45s} {r['pack_mcodes_per_s']:14.1f} {r['unpack_mcodes_per_s']:16.1f}")
    for name, t in results["timings"].items():
        print(f"\n{name}:")
        items = t.items() if isinstance(t, dict) else []
        for k, v in sorted(items, key=lambda kv: -kv[1] if isinstance(kv[1], float) else 0):
            print(f"  {k:60s} {v:8.1f} s" if isinstance(v, float) else f"  {k}: {v}")
    out = ROOT / "benchmarks" / "results.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
