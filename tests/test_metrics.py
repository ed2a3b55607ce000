"""inwhale.metrics: relative error and kurtosis against NumPy / SciPy, and the single
implementation behind every public name that exposes them."""

import numpy as np
import pytest
import torch
from _reference import require

from inwhale import metrics


def _x(seed=0, n=5000):
    return torch.randn(n, generator=torch.Generator().manual_seed(seed)) ** 3


def test_relative_error_against_numpy_and_its_argument_order():
    x, xhat = _x(0, 300).reshape(20, 15), _x(1, 300).reshape(20, 15) * 0.1
    xhat = x + xhat
    d = x.double().numpy() - xhat.double().numpy()
    ref = np.linalg.norm(d) / np.linalg.norm(x.double().numpy())
    assert metrics.relative_error(x, xhat) == pytest.approx(ref, rel=1e-12)
    swapped = np.linalg.norm(d) / np.linalg.norm(xhat.double().numpy())
    assert metrics.relative_error(xhat, x) == pytest.approx(swapped, rel=1e-12)
    assert abs(ref - swapped) > 1e-4                           # the order matters: reference first
    zero = torch.zeros(3)
    assert metrics.relative_error(zero, zero) == 0.0
    assert metrics.relative_error(zero, torch.ones(3)) == float("inf")
    with pytest.raises(ValueError, match="shape"):
        metrics.relative_error(x, x.T)


def test_kurtosis_against_scipy_and_differentiable():
    stats = require("scipy.stats")
    x = _x(2)
    for excess in (False, True):
        ref = stats.kurtosis(x.double().numpy(), fisher=excess, bias=True)
        assert float(metrics.kurtosis(x.double(), excess=excess)) == pytest.approx(ref, rel=1e-9)
    w = _x(3, 40).double().requires_grad_()
    assert torch.autograd.gradcheck(metrics.kurtosis, (w,))
    with pytest.raises(ValueError, match="at least 2"):
        metrics.kurtosis(torch.ones(1))


def test_one_implementation_behind_every_public_name():
    from inwhale.llm import lowrank, rotation
    from inwhale.ptq import decompose
    from inwhale.qat import kurtosis as qat_kurtosis

    x = _x(4, 64)
    assert lowrank.relative_error is metrics.relative_error        # used there, defined once
    assert not hasattr(decompose, "relative_error")               # the old (approx, ref) order is gone
    assert "relative_error" not in lowrank.__all__ + decompose.__all__
    assert rotation.excess_kurtosis(x) == float(metrics.kurtosis(x.double(), excess=True))
    assert torch.equal(qat_kurtosis(x), metrics.kurtosis(x))
