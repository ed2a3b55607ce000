"""Properties every affine quantizer must have, checked with hypothesis."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import inwhale
from inwhale import PerAxis, PerGroup, choose_qparams, fake_quantize, quantize

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False,
                   width=32)
vectors = st.lists(finite, min_size=1, max_size=64).map(lambda v: torch.tensor(v))
specs = st.fixed_dictionaries({
    "bits": st.integers(2, 8),
    "symmetric": st.booleans(),
    "narrow_range": st.booleans(),
})


@settings(max_examples=300, deadline=None)
@given(vectors, specs)
def test_error_at_most_half_a_step_inside_the_range(x, spec):
    qp = choose_qparams(x, **spec)
    xhat = fake_quantize(x, qp)
    s = float(qp.scale)
    lo = (qp.qmin - int(qp.zero_point)) * s
    hi = (qp.qmax - int(qp.zero_point)) * s
    inside = (x >= lo) & (x <= hi)
    err = (x.double() - xhat.double()).abs()[inside]
    # half a step, plus float32 rounding of x·s⁻¹ and of s·(q − z)
    tol = s / 2 * (1 + 1e-5) + 4 * torch.finfo(torch.float32).eps * x.abs().max().item()
    assert err.numel() == 0 or float(err.max()) <= tol


@settings(max_examples=300, deadline=None)
@given(vectors, specs)
def test_fake_quantize_is_idempotent(x, spec):
    qp = choose_qparams(x, **spec)
    once = fake_quantize(x, qp)
    assert torch.equal(fake_quantize(once, qp), once)


@settings(max_examples=300, deadline=None)
@given(vectors, specs)
def test_zero_is_exactly_representable(x, spec):
    qp = choose_qparams(x, **spec)
    assert float(fake_quantize(torch.zeros(3), qp).abs().max()) == 0.0


@settings(max_examples=300, deadline=None)
@given(vectors, specs)
def test_codes_stay_in_range_and_are_monotone(x, spec):
    qp = choose_qparams(x, **spec)
    wide = torch.cat([x, x * 3, x - 1e3, x + 1e3]).sort().values
    q = quantize(wide, qp).to(torch.int32)
    assert int(q.min()) >= qp.qmin and int(q.max()) <= qp.qmax
    assert bool((q[1:] >= q[:-1]).all())  # sorted input -> sorted codes


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(2, 40), st.integers(1, 16), st.integers(2, 8),
       st.booleans(), st.integers(0, 2**31 - 1))
def test_granularities_keep_shape_and_bound(rows, cols, group, bits, sym, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g)
    for gran in (PerAxis(0), PerAxis(1), PerGroup(min(group, cols))):
        qp = choose_qparams(w, bits=bits, symmetric=sym, granularity=gran)
        xhat = fake_quantize(w, qp)
        assert xhat.shape == w.shape
        # every element within half of the largest step of the tensor
        assert float((w - xhat).abs().max()) <= float(qp.scale.max()) / 2 * (1 + 1e-5) + 1e-6


@settings(max_examples=100, deadline=None)
@given(vectors, st.sampled_from([1, 2, 4, 8]))
def test_pack_round_trip_is_lossless(x, bits):
    qp = choose_qparams(x, bits=bits, signed=False)
    q = quantize(x, qp)
    packed = inwhale.pack(q, qp)
    assert torch.equal(inwhale.unpack(packed), q)
