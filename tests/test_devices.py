"""Device handling: ``$INWHALE_DEVICE`` is checked against what this machine has."""

import pytest
import torch

from inwhale.device import default_device


@pytest.mark.parametrize("kind", ["mps", "xpu", "cuda"])
def test_unavailable_backend_is_refused(monkeypatch, kind) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    if hasattr(torch, "xpu"):
        monkeypatch.setattr(torch.xpu, "is_available", lambda: False)
    monkeypatch.setenv("INWHALE_DEVICE", kind)
    with pytest.raises(ValueError, match=f"INWHALE_DEVICE.*{kind}.*not available"):
        default_device()


def test_cuda_index_beyond_the_device_count_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("INWHALE_DEVICE", "cuda:1")
    assert default_device() == torch.device("cuda:1")  # the last one that exists
    monkeypatch.setenv("INWHALE_DEVICE", "cuda:2")
    with pytest.raises(ValueError, match=r"CUDA device 2.*only 2"):
        default_device()


def test_available_backend_is_accepted(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setenv("INWHALE_DEVICE", "mps")
    assert default_device() == torch.device("mps")


def test_frozen_fake_quantize_qparams_follow_to_and_the_state_dict() -> None:
    from inwhale.nn import FakeQuantize

    fq = FakeQuantize(8)
    fq(torch.linspace(-1, 1, 11))
    fq.freeze()
    state = fq.state_dict()
    assert {"frozen_scale", "frozen_zero_point"} <= set(state)
    other = FakeQuantize(8)
    other(torch.linspace(-5, 5, 11))  # different range
    other.freeze()
    other.load_state_dict(state)  # the loaded qparams are the ones used
    x = torch.randn(7)
    assert torch.equal(other(x), fq(x))
    fq.to(torch.float64)  # .to() reaches the frozen scale
    assert fq.qparams().scale.dtype == torch.float64
