"""Tests for inwhale.ptq.decompose: SVD / Tucker-2 / CP factored layers with quantized factors,
against torch.linalg.svd, F.conv2d with the rebuilt kernel, and planted low-rank tensors."""

import pytest
import torch
import torch.nn.functional as F
from _reference import require
from torch import nn

from inwhale.metrics import relative_error
from inwhale.ptq.decompose import (
    count_params,
    cp_als,
    cp_conv2d,
    cp_kernel,
    quantize_weights_,
    svd_conv2d,
    svd_factors,
    svd_linear,
    tucker2,
    tucker2_conv2d,
    tucker2_kernel,
    weight_bytes,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _conv(cin=6, cout=10, k=3, stride=1, padding=1, dilation=1, seed=0) -> nn.Conv2d:
    torch.manual_seed(seed)
    return nn.Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation).double()


# ----------------------------------------------------------------------------------------
# SVD
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [1, 3, 7])
def test_svd_factors_equal_torch_low_rank_reconstruction(rank):
    W = torch.randn(9, 7, generator=_gen(1), dtype=torch.float64)
    U, S, Vh = torch.linalg.svd(W)
    ref = U[:, :rank] @ torch.diag(S[:rank]) @ Vh[:rank]  # the reference rank-r matrix
    A, B = svd_factors(W, rank)
    torch.testing.assert_close(A @ B, ref)
    # balanced split: both factors have the same column/row norms sqrt(sigma_i)
    torch.testing.assert_close(A.norm(dim=0), B.norm(dim=1))
    # Eckart-Young error
    err = float((W - A @ B).norm() ** 2)
    assert err == pytest.approx(float((S[rank:] ** 2).sum()), rel=1e-9, abs=1e-12)


def test_svd_linear_output_and_params():
    torch.manual_seed(0)
    lin = nn.Linear(20, 12).double()
    x = torch.randn(5, 20, dtype=torch.float64)
    f = svd_linear(lin, 4)
    A, B = svd_factors(lin.weight.detach(), 4)
    torch.testing.assert_close(f(x), F.linear(x, A @ B, lin.bias))
    torch.testing.assert_close(f.dense_weight(), A @ B)
    assert count_params(f) == 4 * (20 + 12) + 12
    full = svd_linear(lin, 12)
    torch.testing.assert_close(full(x), lin(x))


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 1, 1), (1, 2, 2)])
def test_svd_conv_matches_conv2d_with_rebuilt_kernel(stride, padding, dilation):
    conv = _conv(stride=stride, padding=padding, dilation=dilation)
    x = torch.randn(2, 6, 9, 9, generator=_gen(2), dtype=torch.float64)
    f = svd_conv2d(conv, 3)
    W = conv.weight.detach().reshape(10, -1)
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    K3 = (U[:, :3] * S[:3] @ Vh[:3]).reshape(conv.weight.shape)  # independent reference
    torch.testing.assert_close(f.dense_weight(), K3)
    ref = F.conv2d(x, K3, conv.bias, stride, padding, dilation)
    torch.testing.assert_close(f(x), ref)
    # full rank reproduces the layer
    torch.testing.assert_close(svd_conv2d(conv, 10)(x), conv(x))


# ----------------------------------------------------------------------------------------
# Tucker-2
# ----------------------------------------------------------------------------------------


def test_tucker_full_rank_is_exact():
    K = torch.randn(10, 6, 3, 3, generator=_gen(3), dtype=torch.float64)
    core, u_out, u_in = tucker2(K, (10, 6))
    torch.testing.assert_close(tucker2_kernel(core, u_out, u_in), K)
    torch.testing.assert_close(u_out.T @ u_out, torch.eye(10, dtype=torch.float64))
    torch.testing.assert_close(u_in.T @ u_in, torch.eye(6, dtype=torch.float64))


def test_tucker_recovers_planted_multilinear_rank_and_hooi_does_not_hurt():
    g = _gen(4)
    core = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64)
    Uo = torch.linalg.qr(torch.randn(10, 3, generator=g, dtype=torch.float64))[0]
    Ui = torch.linalg.qr(torch.randn(6, 2, generator=g, dtype=torch.float64))[0]
    K = tucker2_kernel(core, Uo, Ui)
    assert relative_error(K, tucker2_kernel(*tucker2(K, (3, 2)))) < 1e-10
    noisy = K + 0.3 * torch.randn(K.shape, generator=g, dtype=torch.float64)
    e0 = relative_error(noisy, tucker2_kernel(*tucker2(noisy, (2, 2))))
    e5 = relative_error(noisy, tucker2_kernel(*tucker2(noisy, (2, 2), hooi_iters=5)))
    assert e5 <= e0 + 1e-12


def test_tucker_conv_matches_conv2d_with_rebuilt_kernel():
    conv = _conv(stride=2, padding=1)
    x = torch.randn(2, 6, 8, 8, generator=_gen(5), dtype=torch.float64)
    f = tucker2_conv2d(conv, (4, 3), hooi_iters=2)
    K = tucker2_kernel(*tucker2(conv.weight.detach(), (4, 3), hooi_iters=2))
    torch.testing.assert_close(f.dense_weight(), K)
    torch.testing.assert_close(f(x), F.conv2d(x, K, conv.bias, 2, 1))
    torch.testing.assert_close(tucker2_conv2d(conv, (10, 6))(x), conv(x))
    assert count_params(f) == 6 * 3 + 4 * 3 * 9 + 4 * 10 + 10


# ----------------------------------------------------------------------------------------
# CP
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [1, 3, 5])
def test_cp_als_recovers_planted_rank(rank):
    g = _gen(10 + rank)
    true = [torch.randn(n, rank, generator=g, dtype=torch.float64) for n in (8, 6, 3, 3)]
    K = cp_kernel(true)
    err = relative_error(K, cp_kernel(cp_als(K, rank, iters=300, seed=1)))
    assert err < 1e-6
    # a lower rank cannot fit it
    if rank > 1:
        assert relative_error(K, cp_kernel(cp_als(K, rank - 1, iters=100))) > 1e-3


def test_cp_als_is_seeded_and_factors_balanced():
    K = torch.randn(6, 4, 3, 3, generator=_gen(6), dtype=torch.float64)
    f1, f2 = cp_als(K, 4, iters=10, seed=3), cp_als(K, 4, iters=10, seed=3)
    for a, b in zip(f1, f2, strict=True):
        torch.testing.assert_close(a, b)
    norms = torch.stack([f.norm(dim=0) for f in f1])  # (4 factors, r)
    torch.testing.assert_close(norms, norms[:1].expand_as(norms))


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 0), (2, 1)])
def test_cp_conv_matches_conv2d_with_rebuilt_kernel(stride, padding):
    conv = _conv(stride=stride, padding=padding)
    x = torch.randn(2, 6, 9, 9, generator=_gen(7), dtype=torch.float64)
    f = cp_conv2d(conv, 5, iters=20)
    K = cp_kernel(cp_als(conv.weight.detach(), 5, iters=20))
    torch.testing.assert_close(f.dense_weight(), K)
    torch.testing.assert_close(f(x), F.conv2d(x, K, conv.bias, stride, padding))
    assert count_params(f) == 5 * (6 + 3 + 3 + 10) + 10


def test_cp_conv_rectangular_kernel():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, (3, 5), padding=(1, 2)).double()
    x = torch.randn(1, 3, 7, 7, dtype=torch.float64)
    f = cp_conv2d(conv, 4, iters=10)
    torch.testing.assert_close(f(x), F.conv2d(x, f.dense_weight(), conv.bias, 1, (1, 2)))


# ----------------------------------------------------------------------------------------
# quantized factors, sizes
# ----------------------------------------------------------------------------------------


def _torch_per_channel_symmetric(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Reference: scales computed here, rounding by torch.fake_quantize_per_channel_affine."""
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    w2 = w.detach().reshape(w.shape[0], -1).float()
    scale = (w2.abs().amax(dim=1) / ((qmax - qmin) / 2)).clamp(min=torch.finfo(torch.float32).eps)
    zp = torch.zeros(w.shape[0], dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(w2, scale, zp, 0, qmin, qmax).reshape(w.shape)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_quantized_factors_match_torch_per_channel(bits):
    conv = _conv().float()
    f_float = tucker2_conv2d(conv, (5, 4))
    f_q = tucker2_conv2d(conv, (5, 4), bits=bits)
    for mq, mf in zip(f_q, f_float, strict=True):
        torch.testing.assert_close(mq.weight, _torch_per_channel_symmetric(mf.weight, bits))


@pytest.mark.parametrize("build", [
    lambda c, b: svd_conv2d(c, 6, bits=b),
    lambda c, b: tucker2_conv2d(c, (8, 5), bits=b),
    lambda c, b: cp_conv2d(c, 12, bits=b, iters=30),
])
def test_8_bit_factors_are_close_and_2_bit_are_not(build):
    conv = _conv().float()
    K = build(conv, None).dense_weight()
    e8 = relative_error(K, build(conv, 8).dense_weight())
    e2 = relative_error(K, build(conv, 2).dense_weight())
    assert e8 < 0.02
    assert e2 > 10 * e8


def test_quantize_weights_none_is_identity_and_in_place():
    lin = nn.Linear(4, 3)
    w = lin.weight.detach().clone()
    assert quantize_weights_(lin, None) is lin
    torch.testing.assert_close(lin.weight, w)
    quantize_weights_(lin, 3)
    assert not torch.equal(lin.weight, w)


def test_weight_bytes_by_hand():
    f = svd_conv2d(nn.Conv2d(8, 16, 3, padding=1), 4)
    # stage 1: 4·72 weights, 4 scales, no bias; stage 2: 16·4 weights, 16 scales, 16 biases
    expect = (288 + 64) * 3 / 8 + (4 + 16) * 2 + 16 * 4
    assert weight_bytes(f, 3) == pytest.approx(expect)
    assert weight_bytes(f, None) == 4 * count_params(f)
    assert weight_bytes(f, 3, scale_bits=32) == pytest.approx(expect + (4 + 16) * 2)


# ----------------------------------------------------------------------------------------
# errors that name the argument
# ----------------------------------------------------------------------------------------


def test_bad_arguments_raise_naming_them():
    conv, lin = _conv(), nn.Linear(8, 5)
    with pytest.raises(ValueError, match="rank must be >= 1"):
        svd_linear(lin, 0)
    with pytest.raises(ValueError, match="rank must be <= 5"):
        svd_linear(lin, 6)
    with pytest.raises(TypeError, match="rank must be an int"):
        svd_conv2d(conv, 2.0)
    with pytest.raises(ValueError, match="rank must be <= 10"):
        svd_conv2d(conv, 11)
    with pytest.raises(ValueError, match=r"ranks\[1\] \(r_in\) must be <= 6"):
        tucker2_conv2d(conv, (4, 7))
    with pytest.raises(ValueError, match=r"ranks\[0\] \(r_out\) must be >= 1"):
        tucker2_conv2d(conv, (0, 2))
    with pytest.raises(ValueError, match="ranks must be a pair"):
        tucker2(conv.weight.detach(), 3)
    with pytest.raises(ValueError, match="rank must be >= 1"):
        cp_conv2d(conv, -1)
    with pytest.raises(ValueError, match="iters must be"):
        cp_als(conv.weight.detach(), 2, iters=0)
    with pytest.raises(ValueError, match="bits must be between 2 and 16"):
        svd_conv2d(conv, 2, bits=1)
    with pytest.raises(ValueError, match="bits must be between 2 and 16"):
        weight_bytes(lin, 17)
    with pytest.raises(TypeError, match="bits must be an int"):
        cp_conv2d(conv, 2, bits=4.0)
    with pytest.raises(TypeError, match=r"layer must be an nn\.Conv2d"):
        svd_conv2d(lin, 2)
    with pytest.raises(TypeError, match=r"layer must be an nn\.Linear"):
        svd_linear(conv, 2)
    with pytest.raises(ValueError, match="groups=1"):
        tucker2_conv2d(nn.Conv2d(4, 4, 3, groups=2), (2, 2))
    with pytest.raises(ValueError, match="kernel must be 4-D"):
        cp_als(torch.randn(3, 3), 2)
    with pytest.raises(ValueError, match="weight must be 2-D"):
        svd_factors(torch.randn(3, 3, 3), 2)


def test_tensorly_agrees_if_installed():
    tl = require("tensorly")
    from tensorly.decomposition import partial_tucker

    K = torch.randn(10, 6, 3, 3, generator=_gen(8), dtype=torch.float64)
    ours = tucker2_kernel(*tucker2(K, (4, 3), hooi_iters=20))
    (core, factors), _ = partial_tucker(K.numpy(), rank=(4, 3), modes=[0, 1], n_iter_max=20)
    theirs = tl.tenalg.multi_mode_dot(core, factors, modes=[0, 1])
    assert relative_error(K, ours) == pytest.approx(
        relative_error(K, torch.as_tensor(theirs)), rel=1e-3)
