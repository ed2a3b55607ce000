"""One zero-point rule, written in QParams.zero_point_domain and honoured by every path:
the core (quantize / fake_quantize), the STE path of inwhale.nn, packing, HQQ, mid-rise."""

import dataclasses

import pytest
import torch

from inwhale.core.affine import dequantize, fake_quantize, quantize
from inwhale.core.granularity import PerAxis, PerGroup, PerTensor
from inwhale.core.packing import pack, unpack
from inwhale.core.qparams import QParams, choose_qparams
from inwhale.core.uniform import MidRiseQuantizer
from inwhale.llm.hqq import hqq_qparams
from inwhale.nn.fake_quant import fake_quantize_ste, fake_quantize_ste_qp

GRANULARITIES = [PerTensor(), PerAxis(0), PerGroup(16)]   # 40 columns: groups 16, 16, 8


def _x(seed: int = 0) -> torch.Tensor:
    return torch.randn(12, 40, generator=torch.Generator().manual_seed(seed)) * 3


def _float_domain(qp: QParams, seed: int = 1) -> QParams:
    """The same grid with a real-valued zero point (a fraction in [-0.5, 0.5))."""
    frac = torch.rand(qp.zero_point.shape, generator=torch.Generator().manual_seed(seed)) - 0.5
    return dataclasses.replace(qp, zero_point=qp.zero_point.float() + frac,
                               zero_point_domain="float")


@pytest.mark.parametrize("gran", GRANULARITIES, ids=str)
@pytest.mark.parametrize("domain", ["int", "float"])
def test_ste_path_equals_core_bit_for_bit(gran, domain):
    x = _x()
    qp = choose_qparams(x, bits=4, granularity=gran)
    if domain == "float":
        qp = _float_domain(qp)
    assert torch.equal(fake_quantize_ste_qp(x, qp), fake_quantize(x, qp))
    assert torch.equal(fake_quantize_ste_qp(x, qp, ste="identity"), fake_quantize(x, qp))


@pytest.mark.parametrize("gran", GRANULARITIES, ids=str)
def test_the_domain_changes_the_result(gran):
    """A fractional z before rounding is not the same as after: the field must be read."""
    x = _x(2)
    qp = _float_domain(choose_qparams(x, bits=3, granularity=gran))
    xv = gran.view(x)
    as_int = gran.unview(fake_quantize_ste(xv, qp.scale, qp.zero_point, qp.qmin, qp.qmax),
                         x.shape)
    assert not torch.equal(as_int, fake_quantize(x, qp))
    # with whole-number z both rules agree: R(v + z) = R(v) + z
    qi = choose_qparams(x, bits=3, granularity=gran)
    qf = dataclasses.replace(qi, zero_point=qi.zero_point.float(), zero_point_domain="float")
    assert torch.equal(fake_quantize(x, qf), fake_quantize(x, qi))


def test_hqq_and_mid_rise_set_the_float_domain_and_match_the_ste_path():
    W = _x(3)
    qp, _ = hqq_qparams(W, bits=3, group_size=8)
    assert qp.zero_point_domain == "float"
    assert bool((qp.zero_point != qp.zero_point.round()).any())       # really fractional
    assert torch.equal(fake_quantize_ste_qp(W, qp), fake_quantize(W, qp))
    mr = MidRiseQuantizer(bits=2)
    y = mr.fake_quantize(torch.tensor([-1.5, -0.1, 0.1, 1.5]))
    assert mr.qparams.zero_point_domain == "float" and y.tolist() == [-1.5, -0.5, 0.5, 1.5]
    x = torch.tensor([-1.5, -0.1, 0.1, 1.5])
    assert torch.equal(fake_quantize_ste_qp(x, mr.qparams), y)


@pytest.mark.parametrize("domain", ["int", "float"])
def test_packing_round_trip_keeps_the_domain(domain):
    x = _x(4)
    qp = choose_qparams(x, bits=4, granularity=PerGroup(16))
    if domain == "float":
        qp = _float_domain(qp)
    p = pack(quantize(x, qp), qp, scale_dtype=torch.float32)
    assert p.qparams.zero_point_domain == domain
    assert torch.equal(dequantize(unpack(p), p.qparams), fake_quantize(x, qp))
    n_params = qp.scale.numel()
    zero_bytes = 4 * n_params if domain == "float" else (4 * n_params + 7) // 8
    assert p.nbytes == x.numel() // 2 + 4 * n_params + zero_bytes


def test_qparams_reject_a_fraction_in_the_int_domain_and_unknown_domains():
    s = torch.tensor(0.1)
    with pytest.raises(ValueError, match="zero_point_domain"):
        QParams(s, torch.tensor(-0.5), -2, 1, PerTensor(), 2)
    with pytest.raises(ValueError, match="zero_point_domain"):
        QParams(s, torch.tensor(0), -2, 1, PerTensor(), 2, zero_point_domain="real")
    assert QParams(s, torch.tensor(1.0), -2, 1, PerTensor(), 2).zero_point_domain == "int"
