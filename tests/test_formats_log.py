"""Power-of-two quantization by hand, and the shift-only matmul against float matmul."""

import pytest
import torch

from inwhale.formats.log import pot_fake_quantize, pot_matmul_shift, pot_quantize


def test_levels_and_rounding_by_hand():
    # bits=3: magnitudes 2^-2, 2^-1, 2^0 (e_max = 0 from max|x| = 0.9) and zero
    x = torch.tensor([0.9, 0.7, 0.6, 0.36, 0.34, 0.1, 0.2, -0.13, 5.0])
    log_dom = pot_fake_quantize(x, bits=3, e_max=0)
    # log domain: threshold √2·2^e (0.7071, 0.3536); zero below 2^-3 = 0.125
    assert log_dom.tolist() == [1.0, 0.5, 0.5, 0.5, 0.25, 0.0, 0.25, -0.25, 1.0]
    lin = pot_fake_quantize(x, bits=3, e_max=0, log_domain=False)
    # linear domain: thresholds 0.75, 0.375
    assert lin.tolist() == [1.0, 0.5, 0.5, 0.25, 0.25, 0.0, 0.25, -0.25, 1.0]


def test_linear_domain_is_the_nearest_level():
    torch.manual_seed(0)
    x = torch.randn(10_000)
    c = pot_quantize(x, bits=5, log_domain=False)
    lv = torch.pow(2.0, torch.arange(c.e_min, c.e_max + 1).float())
    levels = torch.cat([-lv.flip(0), torch.zeros(1), lv])
    nearest = levels[(x[:, None] - levels[None]).abs().argmin(dim=1)]
    assert torch.equal(c.dequantize(), nearest)


def test_codes_fit_in_bits():
    torch.manual_seed(1)
    c = pot_quantize(torch.randn(1000), bits=4)
    k = c.index()
    assert int(k.max()) <= 2**3 - 1 and c.e_max - c.e_min == 2**3 - 2
    assert torch.equal(k == 0, c.sign == 0)


def test_shift_matmul_equals_float_matmul_exactly():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, 64, generator=g) * 0.05
    a = torch.randint(-128, 128, (8, 64), generator=g, dtype=torch.int64).to(torch.int8)
    codes = pot_quantize(w, bits=5)
    acc, e_min = pot_matmul_shift(a, codes)
    ref = a.double() @ codes.dequantize().double().T  # exact in float64 at these sizes
    assert torch.equal(acc.double() * 2.0**e_min, ref)


def test_bad_input():
    with pytest.raises(ValueError, match="bits"):
        pot_quantize(torch.ones(3), bits=1)
    with pytest.raises(TypeError):
        pot_quantize(torch.ones(3, dtype=torch.int32))
    with pytest.raises(TypeError, match="integer"):
        pot_matmul_shift(torch.ones(2, 3), pot_quantize(torch.ones(4, 3)))
    with pytest.raises(ValueError, match="weight codes"):
        pot_matmul_shift(torch.ones(2, 5, dtype=torch.int32), pot_quantize(torch.ones(4, 3)))
