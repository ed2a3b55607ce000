"""Bad input gets a clear error naming the argument, or a documented result; never NaN."""

import pytest
import torch

import inwhale
from inwhale import (
    PerAxis,
    PerGroup,
    PerToken,
    choose_qparams,
    dequantize,
    fake_quantize,
    qparams_from_range,
    quantize,
)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_x_is_rejected(bad):
    x = torch.tensor([0.0, 1.0, bad])
    with pytest.raises(ValueError, match="x contains 1 NaN or inf"):
        choose_qparams(x)
    qp = choose_qparams(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="NaN or inf"):
        quantize(x, qp)
    with pytest.raises(ValueError, match="NaN or inf"):
        fake_quantize(x, qp)


def test_empty_tensor():
    with pytest.raises(ValueError, match="x is empty"):
        choose_qparams(torch.empty(0))
    qp = choose_qparams(torch.tensor([1.0, -1.0]))
    assert quantize(torch.empty(0), qp).shape == (0,)  # defined: empty codes
    assert fake_quantize(torch.empty(0, 3), qp).shape == (0, 3)


@pytest.mark.parametrize("bits", [0, 17, -1, 3.0, True])
def test_bits_out_of_range(bits):
    with pytest.raises((ValueError, TypeError), match="bits"):
        choose_qparams(torch.randn(4), bits=bits)


def test_one_bit_narrow_range_has_no_levels():
    with pytest.raises(ValueError, match="fewer than two codes"):
        inwhale.integer_range(1, signed=True, narrow_range=True)


def test_min_greater_than_max():
    with pytest.raises(ValueError, match="min_val must be <= max_val"):
        qparams_from_range(2.0, 1.0)
    with pytest.raises(ValueError, match="min_val must be finite"):
        qparams_from_range(float("nan"), 1.0)


def test_constant_tensors_have_a_defined_result():
    for c in (0.0, 3.0, -2.5):
        x = torch.full((10,), c)
        for sym in (False, True):
            qp = choose_qparams(x, bits=8, symmetric=sym)
            xhat = fake_quantize(x, qp)
            assert bool(torch.isfinite(xhat).all())
            assert float((xhat - x).abs().max()) <= float(qp.scale) / 2 + 1e-6
    qp = choose_qparams(torch.zeros(4))
    assert float(qp.scale) == torch.finfo(torch.float32).eps  # documented: s = eps


@pytest.mark.parametrize("dtype", [torch.int32, torch.int8, torch.bool])
def test_integer_x_is_a_type_error(dtype):
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        choose_qparams(torch.zeros(4, dtype=dtype))


def test_non_tensor_is_a_type_error():
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
        choose_qparams([1.0, 2.0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_low_and_high_precision_inputs(dtype):
    torch.manual_seed(0)
    x32 = torch.randn(256)
    x = x32.to(dtype)
    qp = choose_qparams(x, bits=4)
    out = fake_quantize(x, qp)
    assert out.dtype == dtype
    assert bool(torch.isfinite(out.float()).all())
    # computed in float32 (float64 stays float64): same codes as the float32 copy of x
    assert torch.equal(quantize(x, qp), quantize(x.to(torch.float32 if dtype != torch.float64
                                                        else torch.float64), qp))


def test_axis_out_of_range():
    with pytest.raises(ValueError, match="axis=2 is out of range"):
        choose_qparams(torch.randn(3, 4), granularity=PerAxis(2))


def test_group_larger_than_axis():
    with pytest.raises(ValueError, match="group_size=128 is larger than axis"):
        choose_qparams(torch.randn(3, 64), granularity=PerGroup(128))
    with pytest.raises(ValueError, match="group_size must be a positive int"):
        PerGroup(0)


def test_ragged_group_is_defined():
    w = torch.randn(2, 576)
    qp = choose_qparams(w, granularity=PerGroup(128))
    assert qp.scale.shape == (2, 5, 1)
    tail = w[:, 512:]
    assert torch.allclose(qp.scale[:, 4, 0], choose_qparams(tail, granularity=PerAxis(0)).scale[:, 0])


def test_qparams_for_another_tensor():
    qp = choose_qparams(torch.randn(4, 8), granularity=PerAxis(0))
    with pytest.raises(ValueError, match="do not fit this tensor"):
        fake_quantize(torch.randn(5, 8), qp)
    with pytest.raises(TypeError, match="qparams must be a QParams"):
        quantize(torch.randn(3), {"scale": 1.0})


def test_dequantize_rejects_bad_codes():
    qp = choose_qparams(torch.randn(8), bits=4)
    with pytest.raises(TypeError, match="codes must be an integer tensor"):
        dequantize(torch.randn(8), qp)
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 15\]"):
        dequantize(torch.tensor([16], dtype=torch.int32), qp)


def test_per_token_needs_a_dim():
    with pytest.raises(ValueError, match="PerToken needs a tensor"):
        choose_qparams(torch.tensor(1.0), granularity=PerToken())
