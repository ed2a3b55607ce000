"""inwhale's HQQ against the authors' ``hqq`` package, at the settings of the book's table.

Same weights, 4 and 3 bits, groups of 128 along the input dimension, the package's default
optimizer settings (``lp_norm`` 0.7, ``beta`` 10, ``kappa`` 1.01, 20 iterations, early stop):
the two must reach the same weight error within 2 %, and both must beat min–max RTN on the
objective they optimize. The model-level check (perplexity of SmolLM2 within 2 % at W4 and W3
g128) is in the rotations/HQQ chapter's measurement and the README.

The package is the reference: under ``CI=true`` a missing ``hqq`` fails instead of skipping.
"""

from __future__ import annotations

import os

import pytest
import torch

from inwhale.llm.hqq import hqq_weight
from inwhale.llm.rtn import rtn_weight

try:
    from hqq.core.quantize import Quantizer
except ImportError:  # pragma: no cover - depends on the environment
    Quantizer = None
    if os.environ.get("CI") == "true":
        raise


def heavy(o: int, i: int, seed: int = 0) -> torch.Tensor:
    """Student-t weights with 3 degrees of freedom: heavy tails like an LLM's."""
    g = torch.Generator().manual_seed(seed)
    chi2 = (torch.randn(3, o, i, generator=g) ** 2).sum(0)
    return torch.randn(o, i, generator=g) / (chi2 / 3).sqrt() * 0.02


def package_weight(W: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """The ``hqq`` package's dequantized ``Ŵ`` (groups along the input dimension, axis=1)."""
    codes, meta = Quantizer.quantize(W, nbits=bits, group_size=group_size, axis=1,
                                     optimize=True, bitpack=False, device="cpu")
    meta["compute_dtype"] = torch.float32
    return Quantizer.dequantize(codes, meta).reshape(W.shape)


@pytest.mark.skipif(Quantizer is None, reason="hqq not installed (required under CI=true)")
@pytest.mark.parametrize("bits", [4, 3])
def test_same_weight_error_as_the_hqq_package(bits):
    W = heavy(128, 512, seed=bits)        # 512 columns: the package's flat groups = row groups
    ours = hqq_weight(W, bits=bits, group_size=128)
    ref = package_weight(W, bits, 128)
    rtn = rtn_weight(W, bits, group_size=128)
    l1 = {k: float((W - v).abs().mean()) for k, v in (("ours", ours), ("ref", ref), ("rtn", rtn))}
    lp = {k: float((W - v).abs().pow(0.7).mean())
          for k, v in (("ours", ours), ("ref", ref), ("rtn", rtn))}
    assert l1["ours"] == pytest.approx(l1["ref"], rel=0.02)
    assert lp["ours"] == pytest.approx(lp["ref"], rel=0.02)
    assert lp["ours"] < lp["rtn"] and lp["ref"] < lp["rtn"]
    # Not asserted here: the same zero points. This test runs inwhale with its defaults (the
    # blog's growing beta, best iterate kept), not the package's; tests/test_llm_hqq.py runs
    # inwhale with the package's settings and checks the weights themselves.
