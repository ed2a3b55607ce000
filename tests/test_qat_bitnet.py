"""BitNet b1.58 (inwhale.qat.bitnet): hand-worked numbers, the straight-through gradient checked
by finite differences, bad input, and a short training run from scratch."""

import pytest
import torch
from torch import nn

from inwhale.qat import AbsMeanTernaryWeight, BitLinear, to_bitnet
from inwhale.qat.bitnet import DEFAULT_EPS, absmean_qparams

# A 2 x 3 weight worked by hand: sum|W| = 0.6 + 1.1 + 0.05 + 0.9 + 0 + 0.35 = 3.0, γ = 0.5.
# W / 0.5 = [[1.2, -2.2, 0.1], [1.8, 0.0, -0.7]]  -> round -> [[1, -2, 0], [2, 0, -1]]
#                                                  -> clip  -> [[1, -1, 0], [1, 0, -1]]
W_HAND = [[0.6, -1.1, 0.05], [0.9, 0.0, -0.35]]
CODES_HAND = [[1.0, -1.0, 0.0], [1.0, 0.0, -1.0]]
STEP_HAND = 0.5 + DEFAULT_EPS
# Two tokens worked by hand (8-bit absmax, codes [-127, 127]):
# token 1: max|x| = 2.54, s = 0.02: x/s = [15, -127, 50.65] -> [15, -127, 51] -> [0.30, -2.54, 1.02]
# token 2: max|x| = 1.27, s = 0.01: x/s = [-40.4, 127, 0.6] -> [-40, 127, 1] -> [-0.40, 1.27, 0.01]
X_HAND = [[0.3, -2.54, 1.013], [-0.404, 1.27, 0.006]]
XHAT_HAND = [[0.30, -2.54, 1.02], [-0.40, 1.27, 0.01]]


def _hand_layer(bias: bool = True) -> BitLinear:
    layer = BitLinear(3, 2, bias=bias)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(W_HAND))
        if bias:
            layer.bias.copy_(torch.tensor([0.25, -1.0]))
    return layer


def test_absmean_step_and_ternary_codes_match_the_hand_computation():
    w = torch.tensor(W_HAND)
    qp = absmean_qparams(w)
    assert qp.scale.item() == pytest.approx(STEP_HAND, abs=1e-7)
    assert (qp.qmin, qp.qmax, int(qp.zero_point)) == (-1, 1, 0)
    q = AbsMeanTernaryWeight()
    assert q.codes(w).tolist() == CODES_HAND
    expected = torch.tensor(CODES_HAND) * STEP_HAND
    torch.testing.assert_close(q(w), expected, rtol=0, atol=1e-7)


def test_absmean_is_per_tensor_and_scale_invariant():
    """Multiplying W by c multiplies γ and Ŵ by c: the codes depend only on W/γ."""
    w = torch.randn(16, 32, generator=torch.Generator().manual_seed(0))
    q = AbsMeanTernaryWeight(eps=1e-12)
    assert torch.equal(q.codes(w), q.codes(7.0 * w))
    torch.testing.assert_close(q(7.0 * w), 7.0 * q(w))
    # an independent reading of the rule: |w| below half a step is 0, else sign(w)
    gamma = w.abs().mean()
    ref = torch.where(w.abs() < gamma / 2, 0.0, torch.sign(w))
    assert torch.equal(q.codes(w), ref)


def test_bitlinear_forward_matches_the_hand_computation():
    layer = _hand_layer()
    y = layer(torch.tensor(X_HAND))
    # y = Ŵ x̂ + b with Ŵ = 0.5·[[1, -1, 0], [1, 0, -1]] (step 0.5 + ε)
    x1, x2 = XHAT_HAND
    expected = torch.tensor([
        [STEP_HAND * (x1[0] - x1[1]) + 0.25, STEP_HAND * (x1[0] - x1[2]) - 1.0],
        [STEP_HAND * (x2[0] - x2[1]) + 0.25, STEP_HAND * (x2[0] - x2[2]) - 1.0],
    ])
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(layer.quantized_input(torch.tensor(X_HAND)),
                               torch.tensor(XHAT_HAND), rtol=0, atol=1e-6)


def test_activation_quantizer_agrees_with_torch_per_channel_fake_quant():
    """Independent reference: ATen's per-channel fake quant with one channel per token."""
    x = torch.randn(5, 7, 16, generator=torch.Generator().manual_seed(1)) * 3
    layer = BitLinear(16, 4)
    xv = x.reshape(-1, 16)
    scale = xv.abs().amax(dim=1) / 127
    ref = torch.fake_quantize_per_channel_affine(xv, scale, torch.zeros(len(xv), dtype=torch.int32),
                                                 0, -127, 127)
    torch.testing.assert_close(layer.quantized_input(x), ref.reshape(x.shape), rtol=0, atol=1e-6)


def _finite_difference(f, v: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    grad = torch.zeros_like(v)
    for i in range(v.numel()):
        e = torch.zeros_like(v).view(-1)
        e[i] = h
        e = e.view_as(v)
        grad.view(-1)[i] = (f(v + e) - f(v - e)) / (2 * h)
    return grad


def test_straight_through_gradient_equals_the_numerical_gradient_of_the_linear_surrogate():
    """STE: ∂L/∂W is the numerical derivative of L(V) = Σ g·(x̂ Vᵀ + b) at V = Ŵ, and ∂L/∂x that
    of L(u) = Σ g·(u Ŵᵀ + b) at u = x̂ (the scales held constant), while the codes are flat."""
    torch.manual_seed(0)
    layer = BitLinear(5, 3).double()
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, 3, dtype=torch.float64)
    (layer(x) * g).sum().backward()
    with torch.no_grad():
        w_hat, x_hat, b = layer.quantized_weight(), layer.quantized_input(x), layer.bias
        num_w = _finite_difference(lambda V: ((x_hat @ V.T + b) * g).sum(), w_hat)
        num_x = _finite_difference(lambda u: ((u @ w_hat.T + b) * g).sum(), x_hat)
        torch.testing.assert_close(layer.weight.grad, num_w, rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(x.grad, num_x, rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(layer.bias.grad, g.sum(0))
        # the codes themselves are flat in W: a small step changes none of them
        q, w = layer.weight_fq, layer.weight
        assert all(torch.equal(q.codes(w), q.codes(w + s * 1e-9 * torch.randn_like(w)))
                   for s in (1, -1))


def test_to_bitnet_swaps_linears_and_leaves_the_original_alone():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    before = [p.clone() for p in model.parameters()]
    q = to_bitnet(model, skip=("3",))
    assert isinstance(q[1], BitLinear) and type(q[3]) is nn.Linear
    assert torch.equal(q[1].weight, model[1].weight) and q[1].weight is not model[1].weight
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert isinstance(to_bitnet(nn.Linear(3, 2)), BitLinear)


def test_bitnet_mlp_trains_from_scratch_on_digits():
    from inwhale.data.images import digits_split
    from inwhale.models import accuracy, digits_mlp, train_classifier

    Xtr, ytr, Xte, yte = digits_split()
    torch.manual_seed(0)
    model = to_bitnet(digits_mlp())
    losses = train_classifier(model, Xtr, ytr, epochs=4, lr=1e-2)
    assert losses[-1] < 0.5 * losses[0]
    assert accuracy(model, Xte, yte) > 0.8  # chance is 0.1
    codes = model[1].weight_fq.codes(model[1].weight)
    assert set(codes.unique().tolist()) == {-1.0, 0.0, 1.0}


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_raises_naming_the_argument(bad):
    w = torch.tensor(W_HAND)
    w[0, 0] = bad
    with pytest.raises(ValueError, match="w"):
        AbsMeanTernaryWeight()(w)
    x = torch.tensor(X_HAND)
    x[1, 1] = bad
    with pytest.raises(ValueError, match="x"):
        _hand_layer()(x)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="eps"):
        AbsMeanTernaryWeight(eps=0.0)
    with pytest.raises(ValueError, match="eps"):
        absmean_qparams(torch.ones(3), eps=-1e-3)
    with pytest.raises(ValueError, match="in_features"):
        BitLinear(0, 3)
    with pytest.raises(TypeError, match="out_features"):
        BitLinear(3, 2.0)
    with pytest.raises(ValueError, match="act_bits"):
        BitLinear(3, 2, act_bits=1)
    with pytest.raises(ValueError, match="act_bits"):
        BitLinear(3, 2, act_bits=33)
    with pytest.raises(TypeError, match="x"):
        _hand_layer()(torch.ones(2, 3, dtype=torch.int32))
    with pytest.raises(TypeError, match="x"):
        _hand_layer()(None)
    with pytest.raises(ValueError, match="w"):
        absmean_qparams(torch.empty(0))
    with pytest.raises(TypeError, match="model"):
        to_bitnet(torch.ones(3))
    with pytest.raises(ValueError, match=r"nn\.Linear"):
        to_bitnet(nn.Sequential(nn.ReLU()))
    with pytest.raises(TypeError, match="linear"):
        BitLinear.from_float(nn.Conv2d(1, 1, 3))
