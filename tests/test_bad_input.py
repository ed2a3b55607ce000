"""Every public callable outside the core × ordinary bad input → a clear error or a defined result.

The table is the spec of issue 13 §1. Each row names one public callable, how to call it with
its main argument, and the argument's name. Every row is run with the standard bad inputs:

* float tensors: NaN, ±inf, empty, int, complex, ``None``, float16, bfloat16 (and the wrong
  number of dimensions where the callable needs a fixed one);
* integer code tensors: a float tensor, complex, ``None``, empty;
* ``bits``: 0, 1 (where unsupported), 33, -1, 2.5; group / block sizes: 0, -1, 2.5, a size
  that does not fit.

An outcome is *clear* when the callable raises ``ValueError``/``TypeError`` whose message names
the argument and the rule (the words below); *defined* when the row says the docstring defines
the result and the result passes the row's check (float16/bfloat16 results must be finite).
Anything else — a raw ``AttributeError``/``IndexError``/``RuntimeError``, a NaN result, a
silent success — fails. A new function joins with one line; :func:`test_every_public_callable_
is_in_the_table` fails when a public callable has no row (nor a reasoned exemption).

``python tests/test_bad_input.py`` prints the count of cases per outcome.
"""

from __future__ import annotations

import importlib
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import inwhale.formats as F
import inwhale.nn as inn
import inwhale.ptq as P
import inwhale.qat as Q
import inwhale.signal as S
import inwhale.vq as V
from inwhale.core import qparams_from_range

MODULES = ["formats", "vq", "signal", "nn", "ptq", "qat", "llm", "llm.act_quant", "llm.awq",
           "llm.gguf_formats", "llm.gptq", "llm.harness", "llm.hqq", "llm.kv", "llm.llm_int8",
           "llm.lowrank", "llm.qlora", "llm.rotation", "llm.rtn", "llm.smoothquant",
           "llm.stats", "llm.storage", "llm.zeroquant", "llm.results"]

# --------------------------------------------------------------------------------------------
# The standard bad inputs and the words a clear message must contain for each.
# --------------------------------------------------------------------------------------------

RULE_WORDS = {
    "nan": ("nan", "inf", "finite"),
    "inf": ("nan", "inf", "finite"),
    "empty": ("empty", "no values", "at least", "> 0"),
    "int": ("float", "dtype"),
    "complex": ("float", "dtype", "complex", "real"),
    "none": ("tensor",),
    "ndim": ("dim", "shape", "d tensor", "-d", "axis"),
    "float": ("int", "dtype", "integer"),
    "bits": ("bits", "must"),
    "size": ("must", "positive", "divide", "multiple", "larger", "exceeds"),
    "module": ("module", "nn."),  # names the module class it needs
    "blocks": ("block", "causal lm"),
    "record": ("must be", "must have"),
    "gpt2": ("conv1d",),
    "vocab": ("vocabulary",),
}


def _nan(x: torch.Tensor) -> torch.Tensor:
    y = x.clone()
    y.view(-1)[0] = float("nan")
    return y


def _inf(x: torch.Tensor) -> torch.Tensor:
    y = x.clone()
    y.view(-1)[-1] = -float("inf")
    return y


def _empty(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1)[:0].reshape(*x.shape[:-1], 0) if x.ndim > 1 else x[:0]


FLOAT_CASES: dict[str, Callable[[torch.Tensor], Any]] = {
    "nan": _nan,
    "inf": _inf,
    "empty": _empty,
    "int": lambda x: (x * 4).round().to(torch.int32),
    "complex": lambda x: x.to(torch.complex64),
    "none": lambda x: None,
    "float16": lambda x: x.half(),
    "bfloat16": lambda x: x.bfloat16(),
}
CODE_CASES: dict[str, Callable[[torch.Tensor], Any]] = {
    "float": lambda x: x.float() + 0.5,
    "complex": lambda x: x.to(torch.complex64),
    "none": lambda x: None,
    "empty": _empty,
}
BAD_BITS = (0, 33, -1, 2.5)
BAD_SIZES = (0, -1, 2.5)


def _finite(out: Any) -> bool:
    """Every tensor reachable from ``out`` (tuple, list, dict, dataclass) is finite."""
    if isinstance(out, torch.Tensor):
        return not out.is_floating_point() or bool(torch.isfinite(out.float()).all())
    if isinstance(out, (tuple, list)):
        return all(_finite(o) for o in out)
    if isinstance(out, dict):
        return all(_finite(o) for o in out.values())
    if hasattr(out, "__dataclass_fields__"):
        return all(_finite(getattr(out, k)) for k in out.__dataclass_fields__)
    if isinstance(out, float):
        return out == out and abs(out) != float("inf")
    return True


def _empty_out(out: Any) -> bool:
    return isinstance(out, torch.Tensor) and out.numel() == 0


def _propagates_nan(out: Any) -> bool:
    return isinstance(out, torch.Tensor) and bool(torch.isnan(out.float()).any())


@dataclass
class Row:
    """One callable: ``call(value)`` runs it with ``value`` as its argument ``arg``.

    ``good`` builds a valid value; ``kind`` is ``"float"`` (values), ``"code"`` (integer
    codes), ``"bits"`` or ``"size"`` (an int setting). ``ndim`` builds a value with the wrong
    number of dimensions; ``defined`` maps a case to the check of the result the docstring
    defines for it; ``skip`` lists cases that do not apply (each with its reason in a comment).
    """

    name: str
    arg: str
    call: Callable[[Any], Any]
    good: Callable[[], Any]
    kind: str = "float"
    ndim: Callable[[], Any] | None = None
    defined: dict[str, Callable[[Any], bool]] = field(default_factory=dict)
    skip: tuple[str, ...] = ()
    bad: tuple = ()  # extra bad values for "bits"/"size" rows (e.g. 1, or a size that does not fit)

    def cases(self) -> list[tuple[str, Callable[[], Any]]]:
        if self.kind in ("bits", "size"):
            vals = (BAD_BITS if self.kind == "bits" else BAD_SIZES) + self.bad
            return [(f"{self.kind}={v}", lambda v=v: v) for v in vals
                    if f"{self.kind}={v}" not in self.skip]
        if self.kind == "module":
            return [("module:none", lambda: None), ("module:tensor", lambda: W(4))]
        if self.kind == "model":  # also a module that is not a model with decoder blocks
            return [("module:none", lambda: None), ("module:tensor", lambda: W(4)),
                    ("blocks:mlp", _no_blocks)]
        if self.kind == "record":  # an object the library built (a config, a packed tensor)
            return [("record:none", lambda: None), ("record:tensor", lambda: W(4))]
        if self.kind == "gpt2":  # weights in transformers' Conv1D, not nn.Linear
            return [("gpt2", _gpt2)]
        if self.kind == "vocab":  # token ids at and beyond the vocabulary, and negative
            return [("vocab:64", lambda: self.good() + 64), ("vocab:-1", lambda: -self.good() - 1)]
        table = FLOAT_CASES if self.kind == "float" else CODE_CASES
        out = [(c, lambda f=f: f(self.good())) for c, f in table.items() if c not in self.skip]
        if self.ndim is not None:
            out.append(("ndim", self.ndim))
        return out


def W(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


EMPTY_OK = {"empty": _empty_out}  # element-wise maps: nothing in, nothing out
ELEMENTWISE = {"nan": _propagates_nan, "inf": lambda o: bool(torch.isinf(o).any()), **EMPTY_OK}
QP8 = qparams_from_range(-1.0, 1.0, bits=8)
QP4 = qparams_from_range(-1.0, 1.0, bits=4)
MU_CODES = F.mulaw_encode(torch.tensor([0, 1000, -1000, 32767]))
A_CODES = F.alaw_encode(torch.tensor([0, 1000, -1000, 32767]))
PCM = torch.tensor([0, 100, 200, 300], dtype=torch.int16)


def _lut_loss(lut: F.LearnedLUT) -> torch.Tensor:
    return ((lut(W(64)) - W(64)) ** 2).mean()


ROWS: list[Row] = [
    # ---- formats ---------------------------------------------------------------------------
    Row("formats.mu_law_compress", "x", F.mu_law_compress, lambda: W(16).clamp(-1, 1), defined=EMPTY_OK),
    Row("formats.mu_law_expand", "y", F.mu_law_expand, lambda: W(16).clamp(-1, 1), defined=EMPTY_OK),
    Row("formats.a_law_compress", "x", F.a_law_compress, lambda: W(16).clamp(-1, 1), defined=EMPTY_OK),
    Row("formats.a_law_expand", "y", F.a_law_expand, lambda: W(16).clamp(-1, 1), defined=EMPTY_OK),
    Row("formats.companded_fake_quantize", "x", F.companded_fake_quantize, lambda: W(16)),
    Row("formats.companded_fake_quantize", "bits",
        lambda b: F.companded_fake_quantize(W(16), bits=b), lambda: 8, "bits", bad=(1,)),
    Row("formats.mulaw_encode", "pcm", F.mulaw_encode, lambda: PCM, "code",
        defined={"empty": _empty_out}),
    Row("formats.alaw_encode", "pcm", F.alaw_encode, lambda: PCM, "code",
        defined={"empty": _empty_out}),
    Row("formats.mulaw_decode", "code", F.mulaw_decode, lambda: MU_CODES, "code",
        defined={"empty": _empty_out}),
    Row("formats.alaw_decode", "code", F.alaw_decode, lambda: A_CODES, "code",
        defined={"empty": _empty_out}),
    # minifloats: the docstring defines NaN → NaN (or the format's max when it has no NaN)
    Row("formats.minifloat_quantize", "x", lambda x: F.minifloat_quantize(x, F.FP8_E4M3),
        lambda: W(16), defined={"nan": _propagates_nan, "inf": lambda o: True, **EMPTY_OK}),
    Row("formats.minifloat_encode", "x", lambda x: F.minifloat_encode(x, F.FP8_E4M3),
        lambda: W(16), defined={"nan": lambda o: True, "inf": lambda o: True, **EMPTY_OK}),
    Row("formats.minifloat_decode", "codes", lambda c: F.minifloat_decode(c, F.FP8_E4M3),
        lambda: F.minifloat_encode(W(16), F.FP8_E4M3), "code",
        defined={"empty": _empty_out}),
    Row("formats.MinifloatFormat", "exp_bits", lambda b: F.MinifloatFormat(b, 3), lambda: 4,
        "bits", bad=()),
    Row("formats.mx_quantize", "x", lambda x: F.mx_quantize(x, F.MXFP4_E2M1), lambda: W(4, 64)),
    Row("formats.mx_quantize", "block_size",
        lambda b: F.mx_quantize(W(4, 64), F.MXFP4_E2M1, block_size=b), lambda: 32, "size",
        bad=(128,)),
    Row("formats.mx_fake_quantize", "x", lambda x: F.mx_fake_quantize(x, F.MXINT8),
        lambda: W(4, 64)),
    Row("formats.nf4_quantize", "w", F.nf4_quantize, lambda: W(4, 64)),
    Row("formats.nf4_quantize", "block_size", lambda b: F.nf4_quantize(W(4, 64), block_size=b),
        lambda: 64, "size"),
    Row("formats.nf4_bits_per_param", "block_size", lambda b: F.nf4_bits_per_param(b),
        lambda: 64, "size"),
    Row("formats.pot_quantize", "x", F.pot_quantize, lambda: W(16)),
    Row("formats.pot_quantize", "bits", lambda b: F.pot_quantize(W(16), bits=b), lambda: 4,
        "bits", bad=(1,)),
    Row("formats.pot_fake_quantize", "x", F.pot_fake_quantize, lambda: W(16)),
    Row("formats.pot_matmul_shift", "a", lambda a: F.pot_matmul_shift(a, F.pot_quantize(W(4, 8))),
        lambda: (W(2, 8) * 4).round().int(), "code", skip=("empty",)),
    Row("formats.kmeans_share", "w", lambda w: F.kmeans_share(w, bits=2), lambda: W(64)),
    Row("formats.kmeans_share", "bits", lambda b: F.kmeans_share(W(64), bits=b), lambda: 2,
        "bits"),
    Row("formats.lloyd_max_samples", "x", lambda x: F.lloyd_max_samples(x, 4), lambda: W(256)),
    Row("formats.gaussian_lloyd_max", "n_levels", F.gaussian_lloyd_max, lambda: 4, "size"),
    Row("formats.density_lloyd_max", "n_levels",
        lambda n: F.density_lloyd_max(lambda t: torch.exp(-t * t), n, (-3.0, 3.0), 1025),
        lambda: 4, "size"),
    Row("formats.nearest_codes", "x", lambda x: F.nearest_codes(x, torch.tensor([-1.0, 0, 1])),
        lambda: W(16), defined=EMPTY_OK),
    Row("formats.dequantize_codes", "levels",
        lambda lv: F.dequantize_codes(torch.tensor([0, 1, 2]), lv),
        lambda: torch.tensor([-1.0, 0.0, 1.0]), skip=("float16", "bfloat16")),
    Row("formats.LearnedLUT", "table", F.LearnedLUT, lambda: torch.tensor([-1.0, 0.0, 1.0])),
    Row("formats.train_lut", "steps", lambda n: F.train_lut(F.LearnedLUT(torch.tensor(
        [-1.0, 0.0, 1.0])), _lut_loss, steps=n), lambda: 2, "size"),
    # ---- vq --------------------------------------------------------------------------------
    Row("vq.kmeans", "X", lambda X: V.kmeans(X, 4, iters=3), lambda: W(64, 4),
        ndim=lambda: W(64)),
    Row("vq.KMeansVQ", "X", lambda X: V.KMeansVQ(4, iters=3).fit(X), lambda: W(64, 4),
        ndim=lambda: W(64)),
    Row("vq.ProductQuantizer", "X", lambda X: V.ProductQuantizer(2, 4, iters=3).fit(X),
        lambda: W(64, 4), ndim=lambda: W(64)),
    Row("vq.ProductQuantizer", "num_subspaces",
        lambda m: V.ProductQuantizer(m, 4, iters=3).fit(W(64, 4)), lambda: 2, "size", bad=(3,)),
    Row("vq.OptimizedProductQuantizer", "X",
        lambda X: V.OptimizedProductQuantizer(2, 4, outer_iters=2, inner_iters=2).fit(X),
        lambda: W(64, 4), ndim=lambda: W(64)),
    Row("vq.ResidualQuantizer", "X", lambda X: V.ResidualQuantizer(2, 4, iters=3).fit(X),
        lambda: W(64, 4), ndim=lambda: W(64)),
    Row("vq.AdditiveQuantizer", "X", lambda X: V.AdditiveQuantizer(2, 4, iters=2).fit(X),
        lambda: W(64, 4), ndim=lambda: W(64)),
    Row("vq.LatticeQuantizer", "x", lambda x: V.LatticeQuantizer("E8", 0.5).quantize(x),
        lambda: W(4, 8), ndim=lambda: W(5)),
    Row("vq.nearest_dn", "x", V.nearest_dn, lambda: W(4, 8)),
    Row("vq.nearest_e8", "x", V.nearest_e8, lambda: W(4, 8), ndim=lambda: W(4, 5)),
    Row("vq.normalized_second_moment", "num_samples",
        lambda n: V.normalized_second_moment("E8", n), lambda: 64, "size"),
    Row("vq.VQCodebook", "z_e", lambda z: V.VQCodebook(8, 4)(z), lambda: W(16, 4),
        ndim=lambda: W(16, 5)),
    Row("vq.TinyVQVAE", "x", lambda x: V.TinyVQVAE()(x), lambda: W(2, 1, 8, 8).clamp(0, 1),
        ndim=lambda: W(8, 8)),
    Row("vq.train_vqvae", "images", lambda x: V.train_vqvae(V.TinyVQVAE(), x, steps=1,
        batch_size=2), lambda: W(4, 1, 8, 8).clamp(0, 1), ndim=lambda: W(8, 8)),
    # ---- signal ----------------------------------------------------------------------------
    Row("signal.noise_shaped_quantize", "x", lambda x: S.noise_shaped_quantize(x, QP4, (1.0,)),
        lambda: W(32).clamp(-1, 1)),
    Row("signal.error_diffusion", "image", lambda x: S.error_diffusion(x, QP4),
        lambda: W(6, 6).clamp(-1, 1), ndim=lambda: W(6)),
    Row("signal.delta_modulate", "x", lambda x: S.delta_modulate(x, 0.1), lambda: W(32),
        ndim=lambda: W(4, 4), defined={"empty": _empty_out}),
    Row("signal.delta_demodulate", "bits", lambda b: S.delta_demodulate(b, 0.1),
        lambda: S.delta_modulate(W(32), 0.1), "code", defined={"empty": _empty_out}),
    Row("signal.dithered_quantize", "x", lambda x: S.dithered_quantize(x, QP4), lambda: W(32)),
    Row("signal.dither_noise", "shape", lambda n: S.dither_noise((n,), 0.1), lambda: 4, "size",
        defined={"size=0": _empty_out}),
    Row("signal.dpcm_encode", "x", lambda x: S.dpcm_encode(x, torch.tensor([0.9]), QP8),
        lambda: W(32), ndim=lambda: W(4, 4)),
    Row("signal.dpcm_decode", "codes",
        lambda c: S.dpcm_decode(c, torch.tensor([0.9]), QP8),
        lambda: S.dpcm_encode(W(32), torch.tensor([0.9]), QP8)[0], "code",
        defined={"empty": _empty_out}),
    Row("signal.lpc", "x", lambda x: S.lpc(x, 2), lambda: W(64), ndim=lambda: W(4, 16)),
    Row("signal.lpc", "order", lambda n: S.lpc(W(64), n), lambda: 2, "size"),
    Row("signal.ima_adpcm_encode", "samples", S.ima_adpcm_encode, lambda: PCM, "code",
        defined={"empty": _empty_out}),
    Row("signal.ima_adpcm_decode", "codes", S.ima_adpcm_decode,
        lambda: S.ima_adpcm_encode(PCM), "code", defined={"empty": _empty_out}),
    Row("signal.noise_transfer_function", "omega",
        lambda w: S.noise_transfer_function((1.0,), w), lambda: torch.linspace(0, 3, 8),
        defined=EMPTY_OK),
    Row("signal.shaping_taps", "order", S.shaping_taps, lambda: 2, "size",
        defined={"size=0": lambda taps: taps == ()}),  # order 0: no shaping
    Row("signal.theoretical_error_power", "step",
        lambda s: S.theoretical_error_power(s, "tpdf", False), lambda: 0.1, "size",
        skip=("size=2.5",)),  # a float step
    # ---- nn --------------------------------------------------------------------------------
    Row("nn.FakeQuantize", "x", lambda x: inn.FakeQuantize(8)(x), lambda: W(4, 8)),
    Row("nn.FakeQuantize", "bits", lambda b: inn.FakeQuantize(b), lambda: 8, "bits"),
    Row("nn.QuantLinear", "x", lambda x: inn.QuantLinear(8, 4, weight_fq=inn.FakeQuantize(8),
        act_fq=inn.FakeQuantize(8))(x), lambda: W(2, 8), ndim=lambda: W(2, 5)),
    Row("nn.QuantConv2d", "x", lambda x: inn.QuantConv2d(1, 2, 3, weight_fq=inn.FakeQuantize(8),
        act_fq=inn.FakeQuantize(8))(x), lambda: W(1, 1, 6, 6), ndim=lambda: W(6)),
    Row("nn.fake_quantize_ste", "x",
        lambda x: inn.fake_quantize_ste(x, torch.tensor(0.1), 0, -8, 7), lambda: W(16),
        defined=EMPTY_OK),
    Row("nn.fake_quantize_ste_qp", "x", lambda x: inn.fake_quantize_ste_qp(x, QP8),
        lambda: W(16), defined=EMPTY_OK),
    # element-wise STE primitives: NaN → NaN, ±inf → ±inf, empty → empty (as torch.round)
    Row("nn.round_ste", "v", inn.round_ste, lambda: W(16), defined=ELEMENTWISE),
    Row("nn.grad_scale", "t", lambda t: inn.grad_scale(t, 0.5), lambda: W(16),
        defined=EMPTY_OK),
    Row("nn.swap_layers", "model", lambda m: inn.swap_layers(m, lambda _: None, lambda _: None),
        lambda: nn.Sequential(nn.Linear(4, 4)), "module"),
    Row("nn.quant_layers", "model", inn.quant_layers, lambda: nn.Sequential(nn.Linear(4, 4)),
        "module"),
    # ---- ptq -------------------------------------------------------------------------------
    Row("ptq.bias_correct_", "x", lambda x: P.bias_correct_(_qlinear(), x),
        lambda: W(32, 8), ndim=lambda: W(32, 5)),
    Row("ptq.adaround_", "x", lambda x: P.adaround_(_qlinear(), x, iters=2),
        lambda: W(32, 8), ndim=lambda: W(32, 5)),
    Row("ptq.smooth_pair_", "act_absmax",
        lambda a: P.smooth_pair_(nn.Linear(8, 8), nn.Linear(8, 4), a),
        lambda: W(8).abs() + 0.1, ndim=lambda: W(5).abs()),
    Row("ptq.progressive_calibrate_", "x",
        lambda x: P.progressive_calibrate_(_prepared(), x), lambda: W(16, 8),
        ndim=lambda: W(16, 5)),
    Row("ptq.calibrate_", "batches", lambda b: P.calibrate_(_prepared(), [b]), lambda: W(16, 8),
        ndim=lambda: W(16, 5)),
    Row("ptq.ptq_quantize", "batches", lambda b: P.ptq_quantize(_mlp(), P.QConfig(), [b]),
        lambda: W(16, 8), ndim=lambda: W(16, 5)),
    Row("ptq.QConfig", "weight_bits", lambda b: P.QConfig(weight_bits=b),
        lambda: 8, "bits"),
    # ---- qat -------------------------------------------------------------------------------
    Row("qat.LSQQuantizer", "x", lambda x: Q.LSQQuantizer(4)(x), lambda: W(16)),
    Row("qat.LSQQuantizer", "bits", lambda b: Q.LSQQuantizer(b)(W(16)), lambda: 4, "bits",
        bad=(1,)),
    Row("qat.LSQPlusQuantizer", "x", lambda x: Q.LSQPlusQuantizer(4)(x), lambda: W(16)),
    Row("qat.LSQPlusQuantizer", "bits", lambda b: Q.LSQPlusQuantizer(b)(W(16)), lambda: 4,
        "bits"),
    Row("qat.PACT", "x", lambda x: Q.PACT(4)(x), lambda: W(16), defined=EMPTY_OK),
    Row("qat.PACT", "bits", lambda b: Q.PACT(b), lambda: 4, "bits"),
    Row("qat.DoReFaWeight", "w", lambda w: Q.DoReFaWeight(4)(w), lambda: W(16)),
    Row("qat.DoReFaWeight", "bits", lambda b: Q.DoReFaWeight(b), lambda: 4, "bits"),
    Row("qat.DoReFaActivation", "x", lambda x: Q.DoReFaActivation(4)(x), lambda: W(16),
        defined=EMPTY_OK),
    Row("qat.DoReFaActivation", "bits", lambda b: Q.DoReFaActivation(b), lambda: 4, "bits"),
    Row("qat.RelaxedQuantizer", "x", lambda x: Q.RelaxedQuantizer(2)(x), lambda: W(16)),
    Row("qat.RelaxedQuantizer", "bits", lambda b: Q.RelaxedQuantizer(b), lambda: 2, "bits"),
    Row("qat.BinaryConnectWeight", "x", lambda w: Q.BinaryConnectWeight()(w), lambda: W(16),
        defined=EMPTY_OK),
    Row("qat.BinaryActivation", "x", lambda x: Q.BinaryActivation()(x), lambda: W(16),
        defined=EMPTY_OK),
    Row("qat.XNORWeight", "w", lambda w: Q.XNORWeight()(w), lambda: W(4, 8)),
    Row("qat.ABCWeight", "w", lambda w: Q.ABCWeight(2)(w), lambda: W(4, 8)),
    Row("qat.TTQWeight", "w", lambda w: Q.TTQWeight()(w), lambda: W(16)),
    Row("qat.AbsMeanTernaryWeight", "w", lambda w: Q.AbsMeanTernaryWeight()(w), lambda: W(4, 8)),
    Row("qat.BitLinear", "x", lambda x: Q.BitLinear(8, 4)(x), lambda: W(2, 8)),
    Row("qat.BitLinear", "act_bits", lambda b: Q.BitLinear(8, 4, act_bits=b), lambda: 8, "bits",
        bad=(1,)),
    Row("qat.to_bitnet", "model", Q.to_bitnet, lambda: _mlp(), "module"),
    Row("qat.kurtosis", "w", Q.kurtosis, lambda: W(16)),
    Row("qat.kurtosis_loss", "weights", lambda w: Q.kurtosis_loss([w]), lambda: W(16)),
    Row("qat.pot_quantize", "w", lambda w: Q.pot_quantize(w, -4, 0), lambda: W(16),
        defined=EMPTY_OK),
    Row("qat.ABCWeight", "M", lambda m: Q.ABCWeight(m), lambda: 2, "size"),
    Row("qat.INQ", "bits", lambda b: Q.INQ([nn.Parameter(W(16))], bits=b), lambda: 5, "bits"),
]


def _gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64,
                                      n_positions=32, bos_token_id=0, eos_token_id=0)).eval()


def _tiny_llama() -> nn.Module:
    """A model with nn.Linear projections: the good input of the GPT-2 rows."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)).eval()


def _tmp_file() -> str:
    import tempfile

    return str(Path(tempfile.mkdtemp()) / "m.safetensors")


IDS = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(0))


def _llm_rows() -> list[Row]:
    """Rows of inwhale.llm (imported here: transformers is only needed by the GPT-2 rows)."""
    from inwhale.llm import act_quant, gguf_formats, llm_int8, rtn, smoothquant, storage

    G = gguf_formats
    rows = [Row(f"llm.gguf_formats.{f.__name__}", "x", f, lambda: W(256)) for f in (
        G.q8_0_quantize, G.q4_0_quantize, G.q4_1_quantize, G.q4_k_quantize, G.q6_k_quantize)]
    rows += [Row("llm.gguf_formats.encode", "x", lambda x, f=f: G.encode(x, f), lambda: W(256))
             for f in ("Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q6_K")]
    return [
        *rows,
        Row("llm.llm_int8.int8_matmul_decomposed", "x",
            lambda x: llm_int8.int8_matmul_decomposed(x, W(4, 8)), lambda: W(3, 8),
            ndim=lambda: W(3, 5)),
        Row("llm.llm_int8.int8_matmul_int32", "x",
            lambda x: llm_int8.int8_matmul_int32(x, W(4, 8)), lambda: W(3, 8),
            ndim=lambda: W(3, 5)),
        Row("llm.llm_int8.outlier_columns", "x", llm_int8.outlier_columns, lambda: W(3, 8)),
        Row("llm.act_quant.quantize_activation", "x", act_quant.quantize_activation,
            lambda: W(3, 8)),
        Row("llm.act_quant.quantize_activation", "bits",
            lambda b: act_quant.quantize_activation(W(3, 8), bits=b), lambda: 8, "bits"),
        Row("llm.storage.pack_linear_weight", "w",
            lambda w: storage.pack_linear_weight(w, 4, 32), lambda: W(8, 64),
            ndim=lambda: W(64)),
        Row("llm.storage.pack_linear_weight", "bits",
            lambda b: storage.pack_linear_weight(W(8, 64), b, 32), lambda: 4, "bits"),
        Row("llm.storage.pack_linear_weight", "group_size",
            lambda g: storage.pack_linear_weight(W(8, 64), 4, g), lambda: 32, "size",
            bad=(128,)),
        *_llm_tensor_rows(),
        # GPT-2 (Conv1D projections): an error, never "0 layers quantized" and success
        Row("llm.rtn.rtn_quantize_", "model",
            lambda m: rtn.rtn_quantize_(m, bits=4, group_size=16, progress=False),
            _tiny_llama, "gpt2"),
        Row("llm.smoothquant.smoothquant_quantize_", "model",
            lambda m: smoothquant.smoothquant_quantize_(m, IDS.flatten(), n_samples=2, seq_len=8,
                                                        progress=False), _tiny_llama, "gpt2"),
        Row("llm.act_quant.w8a8_quantize_", "model",
            lambda m: act_quant.w8a8_quantize_(m, progress=False), _tiny_llama, "gpt2"),
        Row("llm.storage.save_quantized", "model",
            lambda m: storage.save_quantized(m, _tmp_file(), group_size=32),
            _tiny_llama, "gpt2"),
        Row("llm.llm_int8.llm_int8_quantize_", "model",
            lambda m: llm_int8.llm_int8_quantize_(m, progress=False), _tiny_llama, "gpt2"),
    ]


def _llm_tensor_rows() -> list[Row]:
    """Weight- and activation-level functions of inwhale.llm."""
    from inwhale.llm import awq, gptq, harness, hqq, kv, lowrank, rotation, rtn, stats, storage

    H = torch.eye(64)
    spec = kv.KVSpec(bits=4)
    return [
        Row("llm.rtn.rtn_weight", "w", lambda w: rtn.rtn_weight(w, 4, 32), lambda: W(8, 64),
            ndim=lambda: W(64)),
        Row("llm.rtn.rtn_weight", "bits", lambda b: rtn.rtn_weight(W(8, 64), b, 32), lambda: 4,
            "bits"),
        Row("llm.rtn.rtn_weight", "group_size", lambda g: rtn.rtn_weight(W(8, 64), 4, g),
            lambda: 32, "size", bad=(128,)),
        Row("llm.rtn.bits_per_weight", "group_size",
            lambda g: rtn.bits_per_weight(4, g, (8, 64)), lambda: 32, "size"),
        Row("llm.rtn.rtn_granularity", "group_size", rtn.rtn_granularity, lambda: 32, "size"),
        Row("llm.storage.bits_per_weight", "bits",
            lambda b: storage.bits_per_weight(b, 32, (8, 64)), lambda: 4, "bits"),
        Row("llm.hqq.hqq_weight", "W", lambda w: hqq.hqq_weight(w, bits=4, group_size=32),
            lambda: W(8, 64), ndim=lambda: W(64)),
        Row("llm.hqq.hqq_qparams", "W", lambda w: hqq.hqq_qparams(w, bits=4, group_size=32),
            lambda: W(8, 64), ndim=lambda: W(64)),
        Row("llm.hqq.shrink_lp", "x", lambda x: hqq.shrink_lp(x, 2.0), lambda: W(16),
            defined=EMPTY_OK),
        Row("llm.gptq.gptq_quantize_weight", "W",
            lambda w: gptq.gptq_quantize_weight(w, H, bits=4, group_size=32),
            lambda: W(8, 64), ndim=lambda: W(64)),
        Row("llm.gptq.gptq_quantize_weight", "bits",
            lambda b: gptq.gptq_quantize_weight(W(8, 64), H, bits=b, group_size=32),
            lambda: 4, "bits"),
        Row("llm.gptq.gptq_quantize_weight", "group_size",
            lambda g: gptq.gptq_quantize_weight(W(8, 64), H, bits=4, group_size=g),
            lambda: 32, "size", bad=(128,)),
        Row("llm.awq.output_error", "D", lambda d: awq.output_error(d, H), lambda: W(8, 64),
            ndim=lambda: W(8, 5)),
        Row("llm.lowrank.truncated_svd", "w", lambda w: lowrank.truncated_svd(w, 2),
            lambda: W(8, 64), ndim=lambda: W(64)),
        Row("llm.lowrank.quantized_svd", "w", lambda w: lowrank.quantized_svd(w, 2, 8),
            lambda: W(8, 64), ndim=lambda: W(64)),
        Row("llm.lowrank.lowrank_correct", "w", lambda w: lowrank.lowrank_correct(w, 4, 2, 32),
            lambda: W(8, 64), ndim=lambda: W(64)),
        Row("llm.lowrank.relative_error", "xhat",
            lambda w: lowrank.relative_error(W(8, 64), w), lambda: W(8, 64, seed=1),
            ndim=lambda: W(64)),
        Row("llm.kv.kv_fake_quantize", "x", lambda x: kv.kv_fake_quantize(x, 8, spec),
            lambda: W(2, 5, 16), ndim=lambda: W(16)),
        Row("llm.kv.kv_relative_error", "x", lambda x: kv.kv_relative_error(x, spec),
            lambda: W(2, 5, 2, 8), ndim=lambda: W(5, 8)),
        Row("llm.kv.KVSpec", "bits", lambda b: kv.KVSpec(bits=b), lambda: 4, "bits"),
        Row("llm.stats.kurtosis", "x", stats.kurtosis, lambda: W(64)),
        Row("llm.stats.outlier_channels", "absmax", stats.outlier_channels,
            lambda: W(64).abs()),
        Row("llm.rotation.excess_kurtosis", "x", rotation.excess_kurtosis, lambda: W(64)),
        Row("llm.rotation.hadamard_matrix", "n", rotation.hadamard_matrix, lambda: 8, "size",
            bad=(12,)),
        Row("llm.rotation.random_orthogonal", "n", rotation.random_orthogonal, lambda: 8,
            "size"),
        Row("llm.rotation.incoherence_matrix", "n", rotation.incoherence_matrix, lambda: 8,
            "size"),
        Row("llm.perplexity", "ids",
            lambda i: harness.perplexity(_tiny_llama(), i, context_len=8, progress=False),
            lambda: IDS.flatten(), "code", skip=("empty",)),
        Row("llm.perplexity", "ids",  # token ids outside the vocabulary
            lambda i: harness.perplexity(_tiny_llama(), i, context_len=8, progress=False),
            lambda: IDS.flatten(), "vocab"),
        Row("llm.calibration_batches", "ids", lambda i: harness.calibration_batches(i, 2, 8),
            lambda: IDS.flatten(), "code", skip=("empty",)),
    ]


ROWS += _llm_rows()


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))


def _qlinear() -> nn.Module:
    torch.manual_seed(0)
    q = inn.QuantLinear(8, 4, weight_fq=inn.FakeQuantize(4, symmetric=True))
    q.weight_fq(q.weight.detach())
    q.weight_fq.freeze()
    return q


def _prepared() -> nn.Module:
    return P.prepare(_mlp(), P.QConfig())


LLAMA_Q = "model.layers.0.self_attn.q_proj"   # a linear of the tiny LLaMA
CALIB = IDS.flatten()  # 64 calibration token ids


def _no_blocks() -> nn.Module:
    """A module without decoder blocks (no nn.ModuleList of linears): not a causal LM."""
    return _mlp()


def _gguf_bytes(fmt: str) -> torch.Tensor:
    from inwhale.llm import gguf_formats

    return gguf_formats.encode(W(512), fmt)


_SAVED: dict[str, str] = {}


def _saved_llama() -> str:
    """A file written by save_quantized from the tiny LLaMA (once per run)."""
    from inwhale.llm import storage

    if "llama" not in _SAVED:
        _SAVED["llama"] = _tmp_file()
        storage.save_quantized(_tiny_llama(), _SAVED["llama"], group_size=16)
    return _SAVED["llama"]


def _threads(n: int) -> None:
    from inwhale.llm import harness

    with harness.intra_op_threads(n, torch.device("cpu")):
        pass


def _rows_harness() -> list[Row]:
    """inwhale.llm.harness: finding linears and blocks, running calibration data."""
    from inwhale import llm
    from inwhale.llm import harness

    Q = [LLAMA_Q]
    return [
        Row("llm.find_linears", "model", llm.find_linears, _tiny_llama, "module"),
        Row("llm.find_linears", "model", llm.find_linears, _tiny_llama, "gpt2"),
        Row("llm.decoder_blocks", "model", llm.decoder_blocks, _tiny_llama, "model"),
        Row("llm.block_linears", "model", llm.block_linears, _tiny_llama, "model"),
        Row("llm.norm_linear_pairs", "model", llm.norm_linear_pairs, _tiny_llama, "module"),
        Row("llm.norm_linear_pairs", "example_ids",
            lambda i: llm.norm_linear_pairs(_tiny_llama(), i), lambda: IDS[:1], "code",
            skip=("empty", "none")),  # None: the default ids; (1, 0): no tokens to trace
        Row("llm.norm_linear_pairs", "example_ids",
            lambda i: llm.norm_linear_pairs(_tiny_llama(), i), lambda: IDS[:1], "vocab"),
        *[Row(f"llm.{f.__name__}", "batches", lambda b, f=f: f(_tiny_llama(), Q, b),
              lambda: IDS[:2, :8], k, ndim=(lambda: IDS[0]) if k == "code" else None)
          for f in (llm.capture_linear_inputs, llm.linear_input_absmax)
          for k in ("code", "vocab")],
        Row("llm.for_each_linear_input", "batches",
            lambda b: llm.for_each_linear_input(_tiny_llama(), Q, b, lambda n, x: None),
            lambda: IDS[:2, :8], "code", ndim=lambda: IDS[0]),
        Row("llm.for_each_linear_input", "batches",
            lambda b: llm.for_each_linear_input(_tiny_llama(), Q, b, lambda n, x: None),
            lambda: IDS[:2, :8], "vocab"),
        Row("llm.for_each_linear_input", "model",
            lambda m: llm.for_each_linear_input(m, Q, IDS[:2, :8], lambda n, x: None),
            _tiny_llama, "module"),
        Row("llm.harness.first_block_inputs", "batches",
            lambda b: harness.first_block_inputs(_tiny_llama(), b), lambda: IDS[:2, :8], "code",
            ndim=lambda: IDS[0]),
        Row("llm.harness.first_block_inputs", "batches",
            lambda b: harness.first_block_inputs(_tiny_llama(), b), lambda: IDS[:2, :8], "vocab"),
        Row("llm.harness.first_block_inputs", "model",
            lambda m: harness.first_block_inputs(m, IDS[:2, :8]), _tiny_llama, "model"),
        Row("llm.harness.run_block", "block",
            lambda blk: harness.run_block(blk, [((W(1, 4, 32),), {})]),
            lambda: nn.Linear(32, 32), "module"),
        *[Row(f"llm.{n}", "batch_size", call, lambda: 1, "size") for n, call in (
            ("for_each_linear_input", lambda k: llm.for_each_linear_input(
                _tiny_llama(), Q, IDS[:2, :8], lambda n, x: None, batch_size=k)),
            ("harness.first_block_inputs", lambda k: harness.first_block_inputs(
                _tiny_llama(), IDS[:2, :8], batch_size=k)))],
        Row("llm.calibration_batches", "n_samples",
            lambda n: llm.calibration_batches(CALIB, n, 8), lambda: 2, "size", bad=(9,)),
        Row("llm.calibration_batches", "seq_len",
            lambda n: llm.calibration_batches(CALIB, 2, n), lambda: 8, "size", bad=(33,)),
        Row("llm.harness.GramAccumulator", "x", lambda x: harness.GramAccumulator().add("a", x),
            lambda: W(4, 8), ndim=lambda: W(8)),
        Row("llm.harness.intra_op_threads", "n", _threads, lambda: 1, "size"),
    ]


def _rows_weight_methods() -> list[Row]:
    """The in-place weight-quantization methods (model, calibration ids, bits, group size)."""
    from inwhale.llm import awq, gptq, hqq, lowrank, storage, zeroquant
    from inwhale.llm.results import block_linear_bits

    small = dict(n_samples=2, seq_len=8, progress=False)
    methods = {
        "llm.awq.awq_quantize_": lambda m, ids=CALIB, b=4, g=16: awq.awq_quantize_(
            m, ids, bits=b, group_size=g, n_grid=2, **small),
        "llm.gptq.gptq_quantize_": lambda m, ids=CALIB, b=4, g=16: gptq.gptq_quantize_(
            m, ids, bits=b, group_size=g, batch_size=2, **small),
        "llm.hqq.hqq_quantize_": lambda m, ids=None, b=4, g=16: hqq.hqq_quantize_(
            m, bits=b, group_size=g, progress=False),
        "llm.zeroquant.zeroquant_quantize_": lambda m, ids=None, b=4, g=16:
            zeroquant.zeroquant_quantize_(m, bits=b, group_size=g, progress=False),
        "llm.lowrank.lowrank_correct_": lambda m, ids=None, b=4, g=16:
            lowrank.lowrank_correct_(m, b, g, 2, progress=False),
        "llm.storage.fake_quantize_for_storage_": lambda m, ids=None, b=4, g=16:
            storage.fake_quantize_for_storage_(m, bits=b, group_size=g),
    }
    rows = []
    for name, f in methods.items():
        rows += [
            Row(name, "model", f, _tiny_llama, "model" if "blocks" in _NEEDS[name] else "module"),
            Row(name, "model", f, _tiny_llama, "gpt2"),
            Row(name, "bits", lambda b, f=f: f(_tiny_llama(), b=b), lambda: 4, "bits"),
            Row(name, "group_size", lambda g, f=f: f(_tiny_llama(), g=g), lambda: 16, "size",
                bad=(4096,)),
        ]
        if "ids" in _NEEDS[name]:
            rows += [Row(name, "calib_ids", lambda i, f=f: f(_tiny_llama(), ids=i),
                         lambda: IDS.flatten(), kind, skip=("empty",))  # too few tokens:
                     for kind in ("code", "vocab")]  # the n_samples * seq_len rule
    return [
        *rows,
        Row("llm.zeroquant.zeroquant_quantize_", "act_bits",
            lambda b: zeroquant.zeroquant_quantize_(_tiny_llama(), group_size=16, act_bits=b,
                                                    progress=False),
            lambda: 8, "bits"),
        Row("llm.lowrank.lowrank_correct_", "rank",
            lambda r: lowrank.lowrank_correct_(_tiny_llama(), 4, 16, r, progress=False),
            lambda: 2, "size", bad=(4096,),  # rank 0: plain RTN; above min(O, I): min(O, I)
            defined={"size=0": lambda r: r["layers"] > 0, "size=4096": lambda r: r["layers"] > 0}),
        *[Row("llm.results.block_linear_bits", "model", lambda m: block_linear_bits(m, 4, 16),
              _tiny_llama, kind) for kind in ("model", "gpt2")],
        Row("llm.results.block_linear_bits", "bits",
            lambda b: block_linear_bits(_tiny_llama(), b, 16), lambda: 4, "bits"),
        Row("llm.results.block_linear_bits", "group_size",
            lambda g: block_linear_bits(_tiny_llama(), 4, g), lambda: 16, "size",
            defined={"size=4096": lambda o: o > 4}),  # larger than a row: one group per row
    ]


# which methods need decoder blocks ("blocks") and calibration token ids ("ids")
_NEEDS = {
    "llm.awq.awq_quantize_": ("blocks", "ids"), "llm.gptq.gptq_quantize_": ("blocks", "ids"),
    "llm.hqq.hqq_quantize_": ("blocks",), "llm.zeroquant.zeroquant_quantize_": (),
    "llm.lowrank.lowrank_correct_": (), "llm.storage.fake_quantize_for_storage_": (),
}


def _rows_weight_level() -> list[Row]:
    """Weight- and byte-level functions: AWQ's searches, GPTQ's batch, GGUF decoding."""
    from inwhale.llm import awq, gguf_formats, gptq, smoothquant, storage

    H = torch.eye(64)
    G = gguf_formats
    rows = [Row(f"llm.gguf_formats.{f.__name__}", "b", f, lambda fmt=fmt: _gguf_bytes(fmt),
                "code", ndim=lambda n=n: torch.zeros(2, n + 1, dtype=torch.uint8),
                skip=("empty",))  # (n, 0) bytes: a wrong block width, the ndim case
            for f, fmt, n in ((G.q8_0_dequantize, "Q8_0", 34), (G.q4_0_dequantize, "Q4_0", 18),
                              (G.q4_1_dequantize, "Q4_1", 20), (G.q4_k_dequantize, "Q4_K", 144),
                              (G.q6_k_dequantize, "Q6_K", 210))]
    rows += [Row("llm.gguf_formats.decode", "b", lambda b, fmt=fmt: G.decode(b, fmt),
                 lambda fmt=fmt: _gguf_bytes(fmt), "code", defined={"empty": _empty_out})
             for fmt in ("Q8_0", "Q4_K")]
    return [
        *rows,
        Row("llm.awq.awq_clip_qparams", "W",
            lambda w: awq.awq_clip_qparams(w, H, bits=4, group_size=32), lambda: W(8, 64),
            ndim=lambda: W(64)),
        Row("llm.awq.awq_clip_qparams", "bits",
            lambda b: awq.awq_clip_qparams(W(8, 64), H, bits=b, group_size=32), lambda: 4,
            "bits"),
        Row("llm.awq.awq_clip_qparams", "group_size",
            lambda g: awq.awq_clip_qparams(W(8, 64), H, bits=4, group_size=g), lambda: 32,
            "size", bad=(128,)),
        Row("llm.awq.awq_scale_search", "x_mean",
            lambda x: awq.awq_scale_search([W(8, 64)], H, x, bits=4, group_size=32, n_grid=2),
            lambda: W(64).abs(), ndim=lambda: W(5).abs()),
        Row("llm.awq.awq_scale_search", "bits",
            lambda b: awq.awq_scale_search([W(8, 64)], H, W(64).abs(), bits=b, group_size=32,
                                           n_grid=2), lambda: 4, "bits"),
        Row("llm.awq.awq_scale_search", "group_size",
            lambda g: awq.awq_scale_search([W(8, 64)], H, W(64).abs(), bits=4, group_size=g,
                                           n_grid=2), lambda: 32, "size", bad=(128,)),
        Row("llm.awq.awq_scale_search", "n_grid",
            lambda n: awq.awq_scale_search([W(8, 64)], H, W(64).abs(), bits=4, group_size=32,
                                           n_grid=n), lambda: 2, "size"),
        # the two statistics collectors over calibration batches: as codes, and in the vocabulary
        *[Row(f"llm.{collect.__module__.split('.')[-1]}.{collect.__name__}", "batches",
              lambda b, collect=collect: collect(_tiny_llama(), [LLAMA_Q], b),
              lambda: IDS[:2, :8], kind, **extra)
          for collect in (awq.collect_awq_stats, gptq.collect_hessians)
          for kind, extra in (("code", {"ndim": lambda: IDS[0], "skip": ("empty",)}),  # no tokens:
                              ("vocab", {}))],                                  # nothing to average
        Row("llm.gptq.gptq_quantize_weights", "Ws",
            lambda w: gptq.gptq_quantize_weights([w], [H], bits=4, group_size=32),
            lambda: W(8, 64), ndim=lambda: W(64)),
        Row("llm.gptq.gptq_quantize_weights", "bits",
            lambda b: gptq.gptq_quantize_weights([W(8, 64)], [H], bits=b, group_size=32),
            lambda: 4, "bits"),
        Row("llm.gptq.gptq_quantize_weights", "group_size",
            lambda g: gptq.gptq_quantize_weights([W(8, 64)], [H], bits=4, group_size=g),
            lambda: 32, "size", bad=(128,)),
        Row("llm.smoothquant.smoothing_factors", "act_absmax",
            lambda a: smoothquant.smoothing_factors(a, [W(8, 64)]), lambda: W(64).abs() + 0.1,
            ndim=lambda: W(5).abs()),
        Row("llm.smoothquant.smooth_", "act_absmax", _smooth, lambda: W(32).abs() + 0.1,
            ndim=lambda: W(5).abs()),
        Row("llm.storage.unpack_linear_weight", "packed", storage.unpack_linear_weight,
            lambda: storage.pack_linear_weight(W(8, 64), 4, 32), "record"),
    ]


def _smooth(a: torch.Tensor) -> None:
    from inwhale import llm
    from inwhale.llm import smoothquant

    model = _tiny_llama()
    pairs = llm.norm_linear_pairs(model)
    smoothquant.smooth_(pairs, {p.linear_names[0]: a for p in pairs})


def _rows_modules_and_models() -> list[Row]:
    """Layer classes, model surgery (rotation, QLoRA, KV hooks), storage and the results table."""
    from inwhale.llm import act_quant, kv, llm_int8, qlora, results, rotation, stats, storage

    rows = [Row(f"llm.{c.__module__.split('.')[-1]}.{c.__name__}", "weight",
                lambda w, c=c: c(w, None), lambda: W(8, 64), ndim=lambda: W(64))
            for c in (act_quant.W8A8Linear, llm_int8.LLMInt8Linear, qlora.NF4Linear,
                      qlora.QLoRALinear)]
    return [
        *rows,
        Row("llm.act_quant.W8A8Linear", "act_bits",
            lambda b: act_quant.W8A8Linear(W(8, 64), None, act_bits=b), lambda: 8, "bits"),
        Row("llm.qlora.NF4Linear", "block_size",
            lambda b: qlora.NF4Linear(W(8, 64), block_size=b), lambda: 64, "size"),
        Row("llm.qlora.QLoRALinear", "rank", lambda r: qlora.QLoRALinear(W(8, 64), rank=r),
            lambda: 2, "size"),
        Row("llm.qlora.lora_parameters", "model", qlora.lora_parameters, _tiny_llama, "module"),
        Row("llm.qlora.prepare_qlora_", "model", qlora.prepare_qlora_, _tiny_llama, "module"),
        Row("llm.qlora.prepare_qlora_", "model", qlora.prepare_qlora_, _tiny_llama, "gpt2"),
        Row("llm.qlora.prepare_qlora_", "rank",
            lambda r: qlora.prepare_qlora_(_tiny_llama(), rank=r), lambda: 2, "size"),
        Row("llm.qlora.prepare_qlora_", "block_size",
            lambda b: qlora.prepare_qlora_(_tiny_llama(), block_size=b), lambda: 16, "size"),
        Row("llm.qlora.train_lora", "batch_size",
            lambda k: qlora.train_lora(_qlora_llama(), IDS[:2, :8], 1, batch_size=k), lambda: 2,
            "size"),
        Row("llm.qlora.train_lora", "batches", _train_lora, lambda: IDS[:2, :8], "code",
            ndim=lambda: IDS[0], skip=("empty",)),  # no tokens: the (n, T >= 2) rule
        Row("llm.qlora.train_lora", "batches", _train_lora, lambda: IDS[:2, :8], "vocab"),
        Row("llm.qlora.train_lora", "steps",
            lambda n: qlora.train_lora(_qlora_llama(), IDS[:2, :8], n), lambda: 1, "size"),
        *[Row(f"llm.rotation.{f.__name__}", "model", f, _tiny_llama, kind)
          for f in (rotation.fold_norms_, rotation.rotate_model_) for kind in ("model", "gpt2")],
        Row("llm.rotation.rotate_model_", "Q",
            lambda q: rotation.rotate_model_(_tiny_llama(), q),
            lambda: rotation.random_orthogonal(32).float(), ndim=lambda: W(32),
            skip=("none",)),  # None: the default rotation
        Row("llm.kv.kv_quantize_", "model", lambda m: kv.kv_quantize_(m, head_dim=16),
            _tiny_llama, "module"),
        Row("llm.kv.kv_quantize_", "bits", lambda b: kv.kv_quantize_(_tiny_llama(), b),
            lambda: 4, "bits", bad=(1,)),
        Row("llm.kv.kv_quantize_", "group_size",
            lambda g: kv.kv_quantize_(_tiny_llama(), 4, "token", "token", group_size=g),
            lambda: 8, "size", bad=(32,)),  # 32 does not divide head_dim 16
        Row("llm.kv.kv_quantize_", "head_dim", lambda d: kv.kv_quantize_(_tiny_llama(), 4,
            head_dim=d), lambda: 16, "size", bad=(12,)),  # 12 does not divide 32 channels
        Row("llm.kv.capture_kv", "head_dim", lambda d: kv.capture_kv(_tiny_llama(), IDS[:2, :8],
            head_dim=d), lambda: 16, "size", bad=(12,)),
        Row("llm.kv.capture_kv", "ids", lambda i: kv.capture_kv(_tiny_llama(), i),
            lambda: IDS[:2, :8], "code", ndim=lambda: IDS[0]),
        Row("llm.kv.capture_kv", "ids", lambda i: kv.capture_kv(_tiny_llama(), i),
            lambda: IDS[:2, :8], "vocab"),
        Row("llm.kv.capture_kv", "model", lambda m: kv.capture_kv(m, IDS[:2, :8], head_dim=16),
            _tiny_llama, "module"),
        Row("llm.kv.kv_dims", "config", kv.kv_dims, lambda: _tiny_llama().config, "record"),
        Row("llm.kv.kv_bytes_per_token", "head_dim",
            lambda d: kv.kv_bytes_per_token(2, 2, d), lambda: 64, "size"),
        Row("llm.stats.weight_stats", "linears", stats.weight_stats,
            lambda: {"fc": nn.Linear(8, 4)}, "module"),
        Row("llm.storage.save_float", "model", lambda m: storage.save_float(m, _tmp_file()),
            _tiny_llama, "module"),
        Row("llm.storage.load_quantized", "model",
            lambda m: storage.load_quantized(_saved_llama(), m), _tiny_llama, "module"),
        Row("llm.results.model_fingerprint", "model", results.model_fingerprint, _tiny_llama,
            "module"),
        Row("llm.results.RowCache", "model",
            lambda m: results.RowCache(Path("."), m, IDS.flatten(), IDS.flatten(), {}),
            _tiny_llama, "module"),
        *[Row("llm.results.results_table", arg, _results_table(arg), lambda: IDS.flatten(),
              kind, skip=("empty",))  # too few tokens: the n_samples * seq_len rule
          for arg in ("calib_ids", "eval_ids") for kind in ("code", "vocab")],
        Row("llm.results.results_table", "model", _results_table("model"), _tiny_llama,
            "module"),
        Row("llm.results.results_table", "bits", _results_table("bits"), lambda: 4, "bits"),
        Row("llm.results.results_table", "group_size", _results_table("group_size"),
            lambda: 16, "size"),
    ]


def _train_lora(batches: torch.Tensor) -> list[float]:
    from inwhale.llm import qlora

    return qlora.train_lora(_qlora_llama(), batches, 1)


def _qlora_llama() -> nn.Module:
    from inwhale.llm import qlora

    m = _tiny_llama()
    qlora.prepare_qlora_(m, rank=2, block_size=16)
    return m


def _results_table(arg: str) -> Callable[[Any], Any]:
    """``results_table`` with ``arg`` set to the bad value (KV rows only: the cheapest)."""
    from inwhale.llm.results import results_table

    def call(v: Any) -> Any:
        kw = dict(model=_tiny_llama(), calib_ids=IDS.flatten(), eval_ids=IDS.flatten(),
                  bits=(4,), kv_bits=(8,), group_size=16, context_len=16, n_samples=2,
                  seq_len=8, families=("KV cache",), store=False)
        kw[arg] = (v,) if arg == "bits" else v
        return results_table(**kw)

    return call


def _rows_ptq() -> list[Row]:
    """inwhale.ptq's model-level functions: their model or layer arguments."""
    seq = lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2).eval())
    return [
        Row("ptq.prepare", "model", lambda m: P.prepare(m, P.QConfig()), _mlp, "module"),
        Row("ptq.convert_", "model", P.convert_, _calibrated, "module"),
        Row("ptq.integerize", "model", P.integerize, _integerizable, "module"),
        Row("ptq.equalize_pair_", "first", lambda f: P.equalize_pair_(f, nn.Linear(8, 4)),
            lambda: nn.Linear(8, 8), "module"),
        Row("ptq.equalize_sequential_", "seq", P.equalize_sequential_, _mlp, "module"),
        Row("ptq.fold_bn", "conv", lambda c: P.fold_bn(c, nn.BatchNorm2d(2).eval()),
            lambda: nn.Conv2d(1, 2, 3), "module"),
        Row("ptq.fold_bn", "bn", lambda b: P.fold_bn(nn.Conv2d(1, 2, 3), b),
            lambda: nn.BatchNorm2d(2).eval(), "module"),
        Row("ptq.fold_bn_sequential", "seq", P.fold_bn_sequential, seq, "module"),
    ]


def _calibrated() -> nn.Module:
    return P.calibrate_(_prepared(), [W(16, 8)])


def _integerizable() -> nn.Module:
    return P.convert_(_calibrated())


ROWS += [*_rows_harness(), *_rows_weight_methods(), *_rows_weight_level(),
         *_rows_modules_and_models(), *_rows_ptq()]


# Public names that hold data or configuration only (records built by the library itself):
# they compute nothing from user tensors, so they have no bad-input row.
EXEMPT = {
    "formats.LloydMaxResult", "formats.MXFormat", "formats.MXTensor", "formats.NF4Tensor",
    "formats.PoTCodes", "formats.SharedWeights", "vq.VectorQuantizer",  # abstract base
    "llm.NormLinears", "llm.PerplexityResult", "llm.gptq.GPTQResult", "llm.lowrank.LowRank",
    "llm.lowrank.LowRankCorrection", "llm.results.ResultRow", "llm.kv.KVHandle",
    "llm.QuantReport", "llm.results.RowSpec",
    "llm.harness.BlockInputs",  # a type alias (list[tuple[tuple, dict]]), nothing to call
    # no argument at all: nothing to give bad input to
    "formats.nf4_values", "llm.results.code_fingerprint", "llm.results.results_dir",
    # lay out ResultRow records that results_table built; they take no user tensor
    "llm.results.format_table", "llm.results.rows_as_dicts",
    # a memo around the caller's function f: the input is f's to check (f sees it unchanged)
    "llm.harness.LastInputMemo",
}


# Public callables whose rows are not written yet (issue 13 §1 is not finished for them): the
# coverage test accepts these names and no others. Remove a name when its row lands.
PENDING: set[str] = set()

# Cases known to end in something other than a clear error, with the reason they stay open
# (none today; an entry is a strict xfail, so it fails once the case is fixed).
KNOWN_OTHER: dict[str, str] = {}


# --------------------------------------------------------------------------------------------
# Running the table
# --------------------------------------------------------------------------------------------

def outcome(row: Row, case: str, make: Callable[[], Any]) -> tuple[str, str]:
    """``("clear" | "defined" | "other", detail)`` for ``row`` called with the bad value."""
    value = make()
    rule = case.split("=")[0].split(":")[0]
    rule = {"float16": None, "bfloat16": None}.get(rule, rule)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = row.call(value)
    except (ValueError, TypeError) as err:
        msg = str(err).lower()
        if row.arg.lower() not in msg:
            return "other", f"{type(err).__name__} without the argument name: {err}"
        if rule is not None and not any(w in msg for w in RULE_WORDS[rule]):
            return "other", f"{type(err).__name__} without the rule {RULE_WORDS[rule]}: {err}"
        return "clear", ""
    except Exception as err:  # the point: any other exception is a failure
        return "other", f"raw {type(err).__name__}: {str(err)[:200]}"
    if case in row.defined:
        return ("defined", "") if row.defined[case](out) else ("other", "defined check failed")
    if case in ("float16", "bfloat16"):
        return ("defined", "") if _finite(out) else ("other", "non-finite result")
    return "other", f"returned without an error ({type(out).__name__})"


def _param(row: Row, case: str, make: Callable[[], Any]):
    key = f"{row.name}[{row.arg}]-{case}"
    marks = [pytest.mark.xfail(reason=KNOWN_OTHER[key], strict=True)] if key in KNOWN_OTHER else []
    return pytest.param(row, case, make, id=key, marks=marks)


PARAMS = [_param(row, case, make) for row in ROWS for case, make in row.cases()]


@pytest.mark.parametrize("row,case,make", PARAMS)
def test_bad_input_gives_a_clear_error_or_a_defined_result(row, case, make) -> None:
    kind, detail = outcome(row, case, make)
    assert kind in ("clear", "defined"), detail


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.name}[{r.arg}]" for r in ROWS])
def test_good_input_works(row) -> None:
    """The row's call itself is right: with the good value it runs (so errors come from the
    bad value, not from a wrong call in the table)."""
    row.call(row.good())


def public_callables() -> set[str]:
    names, seen = set(), {}
    for mod_name in MODULES:
        mod = importlib.import_module(f"inwhale.{mod_name}")
        for n in mod.__all__:
            obj = getattr(mod, n)
            if hasattr(obj, "__inwhale_renamed_to__"):  # a deprecated alias of a new name
                continue
            if callable(obj) and id(obj) not in seen:
                seen[id(obj)] = f"{mod_name}.{n}"
                names.add(f"{mod_name}.{n}")
    return names


def test_every_public_callable_is_in_the_table() -> None:
    """A public callable without a row fails here, unless it is exempt (a record) or in
    ``PENDING`` — the rows not written yet, listed by name so the list can only shrink."""
    covered = {r.name for r in ROWS} | EXEMPT | PENDING
    missing = sorted(public_callables() - covered)
    assert not missing, f"{len(missing)} public callables have no bad-input row: {missing}"
    assert not PENDING & {r.name for r in ROWS}, "a callable with a row is still PENDING"




if __name__ == "__main__":
    counts, others = Counter(), []
    for row in ROWS:
        for case, make in row.cases():
            kind, detail = outcome(row, case, make)
            counts[kind] += 1
            if kind == "other":
                others.append(f"{row.name}[{row.arg}] {case}: {detail}")
    print("\n".join(others))
    rows = {r.name for r in ROWS}
    print(dict(counts), "of", sum(counts.values()), "cases over", len(rows), "callables;",
          len(public_callables() - rows - EXEMPT), "callables without a row (PENDING),",
          len(EXEMPT), "exempt records")
