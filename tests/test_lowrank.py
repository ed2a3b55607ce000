"""Quantized SVD and low-rank correction of the quantization residual (LoRC / LQ-LoRA)."""

import itertools

import pytest
import torch
from torch import nn

from inwhale.llm.lowrank import (
    LowRank,
    lowrank_correct,
    lowrank_correct_,
    quantized_svd,
    relative_error,
    truncated_svd,
)
from inwhale.llm.rtn import rtn_weight


def _w(o: int, i: int, seed: int = 0) -> torch.Tensor:
    """A matrix with a decaying spectrum plus noise (like a trained weight)."""
    g = torch.Generator().manual_seed(seed)
    u, v = torch.randn(o, 16, generator=g), torch.randn(16, i, generator=g)
    return u @ torch.diag(torch.logspace(0, -2, 16)) @ v + 0.02 * torch.randn(o, i, generator=g)


def _svd_truncation(w: torch.Tensor, r: int) -> torch.Tensor:
    """Independent reference: float64 torch.linalg.svd cut to rank r."""
    u, s, vh = torch.linalg.svd(w.double(), full_matrices=False)
    return (u[:, :r] * s[:r]) @ vh[:r]


def _separated(o: int, i: int, seed: int = 0) -> torch.Tensor:
    """Random singular vectors, singular values 1, ..., 0.05 evenly spaced (clear gaps)."""
    g = torch.Generator().manual_seed(seed)
    n = min(o, i)
    u, _ = torch.linalg.qr(torch.randn(o, n, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(i, n, generator=g, dtype=torch.float64))
    return ((u * torch.linspace(1, 0.05, n, dtype=torch.float64)) @ v.T).float()


@pytest.mark.parametrize("shape", [(48, 32), (32, 48), (40, 40)])
@pytest.mark.parametrize("r", [1, 5, 16])
def test_truncated_svd_matches_torch_svd(shape: tuple[int, int], r: int) -> None:
    w = _separated(*shape, seed=r)
    L, R = truncated_svd(w, r)
    assert L.shape == (shape[0], r) and R.shape == (r, shape[1])
    torch.testing.assert_close((L @ R).double(), _svd_truncation(w, r), atol=2e-5, rtol=0)
    # balanced factors: column norms of L equal row norms of R (both sqrt(sigma_i))
    torch.testing.assert_close(L.norm(dim=0), R.norm(dim=1), atol=1e-5, rtol=1e-5)
    # float64 input: float64 all the way, agreement to near machine precision
    L64, R64 = truncated_svd(w.double(), r)
    assert L64.dtype == torch.float64
    torch.testing.assert_close(L64 @ R64, _svd_truncation(w, r), atol=1e-10, rtol=0)


def test_eckart_young_error_formula() -> None:
    w = _w(64, 48)
    s = torch.linalg.svdvals(w.double())
    for r in (0, 3, 10):
        L, R = truncated_svd(w, r)
        expect = float(s[r:].square().sum().sqrt() / s.square().sum().sqrt())
        assert relative_error(w, L @ R) == pytest.approx(expect, rel=1e-4, abs=1e-7)


def test_full_rank_correction_is_exact() -> None:
    w = _w(24, 40)
    fix = lowrank_correct(w, bits=2, rank=24, factor_bits=None)
    torch.testing.assert_close(fix.matrix(), w, atol=1e-5, rtol=0)
    assert fix.errors[-1] < 1e-5
    # the RTN part is the plain RTN of W
    torch.testing.assert_close(fix.q, rtn_weight(w, 2))


def test_quantized_svd_error_vs_independent_svd() -> None:
    w = _w(96, 64, seed=3)
    for r in (4, 16):
        ref = _svd_truncation(w, r)
        float_lr = quantized_svd(w, r)  # unquantized factors: the truncation itself
        assert relative_error(w, float_lr.matrix()) == pytest.approx(
            relative_error(w, ref.float()), rel=1e-4)
        q8 = quantized_svd(w, r, bits=8).matrix()
        q4 = quantized_svd(w, r, bits=4).matrix()
        e_ref = relative_error(w, ref.float())
        # quantizing the factors adds error on top of Eckart-Young, more at 4 bits than at 8
        assert e_ref <= relative_error(w, q8) < relative_error(w, q4)
        assert relative_error(w, q8) < e_ref + 0.01


def test_factor_quantization_is_rtn_per_component() -> None:
    w = _w(50, 30)
    lr, (L, R) = quantized_svd(w, 6, bits=4), truncated_svd(w, 6)
    torch.testing.assert_close(lr.R, rtn_weight(R, 4))
    torch.testing.assert_close(lr.L, rtn_weight(L.T.contiguous(), 4).T)
    assert all(col.unique().numel() <= 16 for col in lr.L.T)  # 4-bit: 16 levels per column


def test_error_monotone_in_rank() -> None:
    w = _w(80, 64, seed=5)
    for factor_bits in (None, 8):
        errs = [lowrank_correct(w, 3, r, group_size=32, factor_bits=factor_bits).errors[0]
                for r in (0, 1, 2, 4, 8, 16, 32, 64)]
        assert all(a > b for a, b in itertools.pairwise(errs)), errs
    errs = [relative_error(w, quantized_svd(w, r, bits=8).matrix()) for r in (1, 4, 16, 64)]
    assert all(a > b for a, b in itertools.pairwise(errs)), errs


def test_bits_accounting_by_hand() -> None:
    lr = LowRank(torch.zeros(100, 4), torch.zeros(4, 300), bits=8, group_size=None)
    # codes 4*(100+300)*8, params: 8 components (4 per factor) x (fp16 scale + fp16 zero)
    assert lr.stored_bits() == 4 * 400 * 8 + 8 * 32
    assert LowRank(torch.zeros(100, 4), torch.zeros(4, 300)).stored_bits() == 16 * 4 * 400
    fix = lowrank_correct(_w(64, 128), bits=4, rank=2, group_size=64)
    overhead = (2 * (64 + 128) * 8 + 4 * 32) / (64 * 128)
    assert fix.bits_per_weight() == pytest.approx(4 + 32 / 64 + overhead)


def test_alternating_keeps_best_and_starts_with_lorc() -> None:
    w = _w(64, 64, seed=7)
    one, many = lowrank_correct(w, 3, 8), lowrank_correct(w, 3, 8, iters=4)
    assert many.errors[0] == pytest.approx(one.errors[0])
    assert len(many.errors) == 4
    assert relative_error(w, many.matrix()) == pytest.approx(min(many.errors))


def test_lowrank_correct_model_in_place() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 64), nn.Linear(64, 8))
    before = {k: m.weight.detach().clone() for k, m in net.named_children()
              if isinstance(m, nn.Linear)}
    rep = lowrank_correct_(net, bits=3, group_size=32, rank=4, skip=("3",), progress=False)
    assert rep["layers"] == 2 and set(rep["errors"]) == {"0", "2"}
    assert torch.equal(net[3].weight, before["3"])  # skipped
    w0 = before["0"]
    torch.testing.assert_close(net[0].weight.detach(),
                               lowrank_correct(w0, 3, 4, 32).matrix())
    plain, fixed = rep["errors"]["0"]
    assert plain == pytest.approx(relative_error(w0, rtn_weight(w0, 3, 32)))
    assert fixed < plain
    # both layers: W3 with groups of 32 = 3 + 32/32 bits per weight before the rank term
    assert rep["bits_per_weight"] > rep["rtn_bits_per_weight"] == pytest.approx(4.0)


def test_bad_arguments_raise() -> None:
    w = _w(16, 8)
    with pytest.raises(ValueError, match="rank"):
        truncated_svd(w, 9)
    with pytest.raises(ValueError, match="rank"):
        truncated_svd(w, -1)
    with pytest.raises(ValueError, match="2-D"):
        truncated_svd(torch.ones(3), 1)
    with pytest.raises(ValueError, match="iters"):
        lowrank_correct(w, 4, 2, iters=0)
    with pytest.raises(ValueError, match="group_size"):
        quantized_svd(w, 2, bits=4, group_size=32)  # components are only 16 / 8 long
    with pytest.raises(ValueError, match="shape"):
        relative_error(w, w.T)
