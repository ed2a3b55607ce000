"""The post-training quantization (PTQ) pipeline: prepare → calibrate_ → convert_.

1. **prepare** — copy the float model and swap every ``nn.Linear`` / ``nn.Conv2d`` for a
   :class:`~inwhale.nn.modules.QuantLinear` / ``QuantConv2d`` whose fake quantizers are in
   *observing* mode (weights and activations pass through unchanged while the observers
   record ranges, so the prepared model computes the float function);
2. **calibrate** — run a few batches of real data through it;
3. **convert** — freeze every quantizer (ranges fixed) and switch fake quantization on.

Three schemes (Krishnamoorthi, 2018; Nagel et al., 2021, §3):

============== ============================ ======================================
mode            weights                      activations (layer inputs)
============== ============================ ======================================
``static``      int-b, per channel           int-a, range fixed by calibration
``dynamic``     int-b, per channel           int-a, range of *each* batch at run time
``weight_only`` int-b, per channel           float
============== ============================ ======================================

Weights are symmetric (``z = 0``, narrow range ``[−(2^(b−1)−1), 2^(b−1)−1]`` so that
``−W`` is representable), one scale per output channel; activations are asymmetric
(unsigned codes, ``z`` chosen so that 0.0 is exact — ReLU outputs use the whole grid).

>>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
>>> q = prepare(model, QConfig(weight_bits=8, act_bits=8))
>>> _ = calibrate_(q, [torch.randn(16, 4)]); q = convert_(q)
>>> type(q[0]).__name__, q[0].act_fq.observe
('QuantLinear', False)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from inwhale._deprecated import renamed
from inwhale.core.checks import check_bits
from inwhale.core.granularity import PerAxis, PerTensor
from inwhale.nn.fake_quant import FakeQuantize
from inwhale.nn.modules import QuantConv2d, QuantLinear, quant_layers
from inwhale.observers.base import Observer

__all__ = ["MODES", "QConfig", "calibrate_", "convert_", "prepare", "ptq_quantize"]

MODES = ("static", "dynamic", "weight_only")


@dataclass
class QConfig:
    """How to quantize each layer.

    Attributes:
        weight_bits: weight code width.
        act_bits: activation code width (ignored for ``weight_only``).
        mode: ``"static"``, ``"dynamic"`` or ``"weight_only"``.
        per_channel: one weight scale per output channel (else per tensor).
        act_observer: factory returning a fresh observer for each activation quantizer
            (default min–max); e.g. ``lambda: PercentileObserver(99.99)``.
        skip: layer names (as in ``named_modules``) left in floating point.
    """

    weight_bits: int = 8
    act_bits: int = 8
    mode: str = "static"
    per_channel: bool = True
    act_observer: Callable[[], Observer] | None = None
    skip: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_bits(self.weight_bits, "weight_bits")
        check_bits(self.act_bits, "act_bits")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")

    def weight_fq(self) -> FakeQuantize:
        """A symmetric, narrow-range weight quantizer (per output channel by default)."""
        g = PerAxis(0) if self.per_channel else PerTensor()
        fq = FakeQuantize(self.weight_bits, symmetric=True, narrow_range=True, granularity=g)
        fq.quantize = False  # prepared model = float model until convert_
        return fq

    def act_fq(self) -> FakeQuantize | None:
        """An asymmetric activation quantizer, or ``None`` for weight-only."""
        if self.mode == "weight_only":
            return None
        obs = self.act_observer() if self.act_observer is not None else None
        fq = FakeQuantize(self.act_bits, observer=obs, dynamic=self.mode == "dynamic")
        fq.quantize = self.mode == "dynamic"  # static: observe float activations first
        return fq


def _swap(module: nn.Module, qconfig: QConfig, prefix: str = "") -> None:
    for name, child in module.named_children():
        full = f"{prefix}.{name}" if prefix else name
        if full in qconfig.skip:
            continue
        if isinstance(child, nn.Linear | nn.Conv2d) and not isinstance(
                child, QuantLinear | QuantConv2d):
            cls = QuantLinear if isinstance(child, nn.Linear) else QuantConv2d
            setattr(module, name, cls.from_float(child, qconfig.weight_fq(), qconfig.act_fq()))
        else:
            _swap(child, qconfig, full)


def prepare(model: nn.Module, qconfig: QConfig) -> nn.Module:
    """A quantization-ready **copy** of ``model`` (the original is untouched).

    Every ``nn.Linear`` / ``nn.Conv2d`` not named in ``qconfig.skip`` becomes a fake-quant
    layer. The copy is in eval mode.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(qconfig, QConfig):
        raise TypeError(f"qconfig must be a QConfig, got {type(qconfig).__name__}")
    q = copy.deepcopy(model).eval()
    _swap(q, qconfig)
    if not quant_layers(q):
        raise ValueError("model has no nn.Linear or nn.Conv2d to quantize")
    return q


@torch.no_grad()
def calibrate_(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Run ``batches`` through a prepared model so its observers record ranges (in place)."""
    model.eval()
    dev = next(model.parameters()).device
    n = 0
    for x in batches:
        if not isinstance(x, torch.Tensor):  # token ids or floats: the model decides
            raise TypeError(f"batches[{n}] must be a torch.Tensor, got {type(x).__name__}")
        try:
            model(x.to(dev))
        except (ValueError, TypeError) as err:  # e.g. a shape the model cannot take
            raise type(err)(f"batches[{n}]: {err}") from err
        n += 1
    if n == 0:
        raise ValueError("batches is empty: calibration needs at least one batch")
    return model


@torch.no_grad()
def convert_(model: nn.Module) -> nn.Module:
    """Freeze every :class:`FakeQuantize` in ``model`` and turn quantization on (in place).

    Weight observers that saw nothing (dynamic or weight-only models need no calibration
    pass) observe their weight first.
    """
    for _, layer in quant_layers(model):
        fq = layer.weight_fq
        if isinstance(fq, FakeQuantize) and fq.observer.n_observed == 0 and fq.observe:
            fq.observer(layer.weight)
    for m in model.modules():
        if isinstance(m, FakeQuantize):
            m.quantize = True
            m.freeze()
    return model


def ptq_quantize(model: nn.Module, qconfig: QConfig,
                 batches: Iterable[torch.Tensor]) -> nn.Module:
    """``convert_(calibrate_(prepare(model, qconfig), batches))`` in one call."""
    return convert_(calibrate_(prepare(model, qconfig), batches))


# Old names, importable for one release; see inwhale._deprecated.
calibrate = renamed(calibrate_, "calibrate")
convert = renamed(convert_, "convert")
quantize_ptq = renamed(ptq_quantize, "quantize_ptq")
