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


# ---- no tensor created on the CPU next to the model's device ---------------------------------
#
# Without a GPU, a second device is simulated: inside ``no_stray_cpu_tensors()`` every tensor a
# factory (``torch.zeros``, ``torch.tensor``, …) creates *without* ``device=`` is moved to the
# ``meta`` device. Library code that builds such a tensor and then combines it with the model's
# (CPU) tensors fails with PyTorch's "not on the expected device" — exactly what it would do on
# CUDA, where the stray tensor would be on the CPU. Tensors made with ``device=``, ``*_like`` or
# ``.new_*`` are untouched, and so are draws with an explicit CPU ``generator`` (deliberately on
# the CPU, then moved) and 0-d tensors (PyTorch lets CPU scalars meet any device).

from torch.overrides import TorchFunctionMode  # noqa: E402

FACTORIES = {torch.tensor, torch.zeros, torch.ones, torch.full, torch.empty, torch.arange,
             torch.linspace, torch.eye, torch.rand, torch.randn, torch.randint}


class no_stray_cpu_tensors(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.created = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if (func in FACTORIES and kwargs.get("device") is None and "generator" not in kwargs
                and isinstance(out, torch.Tensor) and out.ndim > 0):
            self.created += 1
            return out.to("meta")
        return out


def test_the_mode_catches_a_stray_cpu_tensor() -> None:
    """The check itself can fail: a device-less factory next to model tensors is caught."""
    w = torch.randn(4, 3)
    with no_stray_cpu_tensors(), pytest.raises(RuntimeError, match="device"):
        _ = w * torch.ones(4, 1)  # what integerize did with its per-channel scales
    with no_stray_cpu_tensors():
        _ = w * torch.ones(4, 1, device=w.device)  # placed: fine


def _entry_points() -> dict:
    """``name → setup``; ``setup()`` builds the model and inputs (outside the check) and
    returns the call to run under it."""
    from torch import nn

    from inwhale import ptq, qat
    from inwhale.llm import act_quant, gguf_formats, llm_int8, qlora, rtn, storage
    from inwhale.nn import FakeQuantize, QuantLinear, fake_quantize_ste

    def integer_pipeline():
        torch.manual_seed(0)
        model = ptq.prepare(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)),
                            ptq.QConfig())
        ptq.calibrate_(model, [torch.randn(32, 8)])
        model, xs = ptq.convert_(model), torch.randn(4, 8)
        return lambda: ptq.integerize(model)(xs)

    def module(m, *inputs):
        return lambda: m(*inputs)

    x, w, s = torch.randn(16, 64), torch.randn(32, 64), torch.full((1, 64), 0.1)
    x4k = torch.randn(4, 256)
    return {
        "nn.QuantLinear": lambda: module(QuantLinear(64, 8, weight_fq=FakeQuantize(8),
                                                     act_fq=FakeQuantize(8)), x),
        "nn.fake_quantize_ste": lambda: lambda: fake_quantize_ste(x, s, 0, -8, 7),
        "ptq.integerize": integer_pipeline,
        "qat.LSQQuantizer": lambda: module(qat.LSQQuantizer(4, per_channel=True), w),
        "qat.LSQPlusQuantizer": lambda: module(qat.LSQPlusQuantizer(4), x),
        "qat.PACT": lambda: module(qat.PACT(4), x),
        "qat.DoReFaWeight": lambda: module(qat.DoReFaWeight(4), w),
        "qat.XNORWeight": lambda: module(qat.XNORWeight(), w),
        "qat.ABCWeight": lambda: module(qat.ABCWeight(3), w),
        "qat.RelaxedQuantizer": lambda: module(qat.RelaxedQuantizer(2), x),
        "llm.rtn_weight": lambda: lambda: rtn.rtn_weight(w, bits=4, group_size=32),
        "llm.quantize_activation": lambda: lambda: act_quant.quantize_activation(x),
        "llm.int8_matmul_decomposed": lambda: lambda: llm_int8.int8_matmul_decomposed(x, w),
        "llm.gguf Q4_K": lambda: lambda: gguf_formats.decode(gguf_formats.encode(x4k, "Q4_K"),
                                                             "Q4_K"),
        "llm.pack_linear_weight": lambda: lambda: storage.unpack_linear_weight(
            storage.pack_linear_weight(w, 4, 32)),
        "llm.NF4Linear": lambda: module(qlora.NF4Linear(w), x),
    }


@pytest.mark.parametrize("name", list(_entry_points()))
def test_entry_point_creates_no_tensor_off_the_model_device(name) -> None:
    torch.manual_seed(0)
    run = _entry_points()[name]()
    with no_stray_cpu_tensors():
        out = run()
    outs = out if isinstance(out, tuple) else (out,)
    assert all(o.device.type == "cpu" for o in outs if isinstance(o, torch.Tensor)), name
