"""Statistics and round-to-nearest weight quantization of LLM linears."""

import pytest
import torch
from _reference import require
from torch import nn

from inwhale.llm.rtn import bits_per_weight, rtn_quantize_, rtn_weight
from inwhale.llm.stats import outlier_channels, weight_stats
from inwhale.metrics import kurtosis


def test_kurtosis_matches_scipy() -> None:
    stats = require("scipy.stats")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20_000, generator=g) ** 3
    ref = stats.kurtosis(x.double().numpy(), fisher=False, bias=True)
    assert float(kurtosis(x.double())) == pytest.approx(ref, rel=1e-9)
    assert float(kurtosis(x.double(), excess=True)) == pytest.approx(ref - 3, rel=1e-9)


def test_outlier_channels_sorted() -> None:
    idx, val = outlier_channels(torch.tensor([0.1, 30.0, 6.0, 5.9, 12.0]), threshold=6.0)
    assert idx.tolist() == [1, 4, 2] and val.tolist() == [30.0, 12.0, 6.0]


def _ref_per_row(w: torch.Tensor, bits: int) -> torch.Tensor:
    """torch's own per-channel fake quant, asymmetric uint codes (independent reference)."""
    lo, hi = w.amin(1).clamp(max=0), w.amax(1).clamp(min=0)
    scale = (hi - lo) / (2**bits - 1)
    zp = (-torch.round(lo / scale)).clamp(0, 2**bits - 1).int()
    return torch.fake_quantize_per_channel_affine(w, scale, zp, 0, 0, 2**bits - 1)


@pytest.mark.parametrize("bits", [8, 4, 3])
def test_rtn_per_row_matches_torch(bits: int) -> None:
    w = torch.randn(64, 96, generator=torch.Generator().manual_seed(bits))
    torch.testing.assert_close(rtn_weight(w, bits, axis=0), _ref_per_row(w, bits),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(rtn_weight(w, bits, axis=1), _ref_per_row(w.T, bits).T,
                               atol=1e-6, rtol=0)


def test_rtn_group_equals_per_row_on_each_group() -> None:
    w = torch.randn(8, 96, generator=torch.Generator().manual_seed(1))
    grouped = rtn_weight(w, 4, group_size=32)
    for k in range(3):
        torch.testing.assert_close(grouped[:, 32 * k:32 * (k + 1)],
                                   _ref_per_row(w[:, 32 * k:32 * (k + 1)], 4), atol=1e-6, rtol=0)


def test_rtn_quantize_model_and_report() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 64))
    before = model[0].weight.detach().clone()
    rep = rtn_quantize_(model, bits=4, group_size=32, progress=False)
    assert rep.layers == ["0", "2"] and set(rep["errors"]) == {"0", "2"}
    # 4-bit asymmetric: at most 16 distinct values per group of 32
    assert all(g.unique().numel() <= 16 for g in model[0].weight.reshape(-1, 32))
    assert not torch.equal(before, model[0].weight)
    assert rep["errors"]["0"] == pytest.approx(
        float((before - model[0].weight.detach()).norm() / before.norm()))
    assert len(weight_stats({"a": model[0]})) == 1


def test_bits_per_weight() -> None:
    assert bits_per_weight(4, 128, (576, 576)) == pytest.approx(4 + 576 * 5 * 32 / 576**2)
    assert bits_per_weight(8, None, (100, 50), symmetric=True) == pytest.approx(8 + 16 / 50)
    with pytest.raises(ValueError, match="axis"):
        rtn_weight(torch.zeros(4, 4), 4, axis=2)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_one_bits_per_weight_formula_matches_the_stored_bytes(bits: int) -> None:
    """llm.storage counts what it writes (b-bit zero points); it is rtn.bits_per_weight with
    zero_point_bits=b, and equals the bytes pack_linear_weight really holds."""
    from inwhale.llm import storage

    shape = (16, 512)
    stored = storage.pack_linear_weight(torch.randn(*shape), bits=bits, group_size=128)
    measured = 8 * stored.nbytes / (shape[0] * shape[1])
    assert storage.bits_per_weight(bits, 128, shape) == measured
    assert bits_per_weight(bits, 128, shape, zero_point_bits=bits) == measured
    assert bits_per_weight(bits, 128, shape) == measured + (16 - bits) / 128   # fp16 zeros
