"""Real storage: a weight-quantized LLM written to disk as packed codes, and read back.

Every other chapter *simulates* quantization (fake-quantized float weights). This module
stores what a deployment would store, in a `safetensors <https://huggingface.co/docs/
safetensors>`_ file, so the saving can be measured in bytes rather than computed.

For every ``nn.Linear`` weight :math:`W \\in \\mathbb R^{O \\times I}` (found by type,
``lm_head`` skipped by default) and group size :math:`g`, with :math:`G = \\lceil I/g \\rceil`
groups per row:

1. per group, min–max asymmetric parameters from :func:`inwhale.choose_qparams`
   (``PerGroup(g)``): scale :math:`s` and integer zero point :math:`z \\in [0, 2^b-1]`;
2. :math:`s` is rounded to fp16 (**the stored scale**) and the codes are computed with it,
   :math:`q = \\mathrm{clamp}(\\lfloor W/s_{16} \\rceil + z, 0, 2^b-1)`
   (:func:`inwhale.quantize`), so the reconstruction :math:`s_{16}(q - z)` is what a reader
   of the file gets;
3. codes are packed ``8/b`` per byte (:func:`inwhale.pack`), zero points likewise
   (:func:`inwhale.pack_codes`: they are ``b``-bit integers), scales stored as fp16.

Tensors in the file, per quantized linear ``name``: ``name.qweight`` (uint8,
:math:`\\lceil O I b / 8\\rceil` bytes), ``name.scales`` (fp16, ``(O, G)``),
``name.qzeros`` (uint8, :math:`\\lceil O G b / 8\\rceil` bytes). Every other parameter or
persistent buffer (embeddings, norms, biases) is stored once (tied weights are shared) in
``other_dtype`` (fp16 by default). The safetensors header carries a small JSON record
(``bits``, ``group_size``, shapes) under the metadata key ``"inwhale"``.

Bits per weight of a quantized linear (ignoring byte padding):

.. math::
    \\text{bpw} = b + \\frac{G\\,(16 + b)}{I},
    \\qquad b = 4,\\ g = 128,\\ I = 1536:\\ 4 + \\frac{12 \\cdot 20}{1536} = 4.15625.

:func:`fake_quantize_for_storage_` applies exactly the same rounding in memory, so
``load_quantized(save_quantized(model))`` and the in-memory model give bitwise-identical
logits (``tests/test_storage.py``).

Glossary: ``W`` weight (O, I); ``b`` bits; ``g`` group size; ``G`` groups per row;
``s`` scale; ``z`` zero point; ``q`` codes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from inwhale.core import (
    PackedTensor,
    PerGroup,
    QParams,
    choose_qparams,
    dequantize,
    integer_range,
    pack,
    pack_codes,
    quantize,
    unpack,
    unpack_codes,
)
from inwhale.core.checks import check_bits, check_group_size, check_module, check_tensor
from inwhale.core.packing import _storage_bits
from inwhale.llm import rtn

__all__ = ["FORMAT", "bits_per_weight", "fake_quantize_for_storage_", "load_quantized",
           "pack_linear_weight", "save_float", "save_quantized", "unpack_linear_weight"]

FORMAT = "inwhale-packed-v1"
"""Value of the safetensors metadata key ``"format"`` written by :func:`save_quantized`."""


_OTHER_DTYPES = {"float16", "bfloat16", "float32"}


def _check_args(bits: int, group_size: int, other_dtype: torch.dtype) -> None:
    check_bits(bits, lo=2, hi=8)
    check_group_size(group_size, allow_none=False)
    if other_dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise ValueError(f"other_dtype must be float16, bfloat16 or float32, got {other_dtype}")


def bits_per_weight(bits: int, group_size: int, shape: tuple[int, int]) -> float:
    """Stored bits per weight of an ``(O, I)`` linear: ``b + G (16 + b) / I``, ``G = ceil(I/g)``.

    Codes of ``b`` bits, one fp16 scale and one ``b``-bit zero point per group (byte padding
    ignored): :func:`inwhale.llm.rtn.bits_per_weight` with ``zero_point_bits=b``. (The
    Part VI results table counts fp16 zero points, the literature's convention:
    ``(16 − b)/g`` bits per weight more.)

    >>> bits_per_weight(4, 128, (576, 1536)), bits_per_weight(4, 128, (1536, 576))
    (4.15625, 4.173611111111111)
    """
    _check_args(bits, group_size, torch.float16)
    return rtn.bits_per_weight(bits, group_size, shape, zero_point_bits=bits)


def _stored_qparams(w: torch.Tensor, bits: int, group_size: int, name: str) -> QParams:
    """Min–max asymmetric per-group parameters with the scale rounded to fp16 (as stored)."""
    check_tensor(w, name)
    if w.ndim != 2:
        raise ValueError(f"{name}: weight must be 2-D (out, in), got shape {tuple(w.shape)}")
    if group_size > w.shape[1]:
        raise ValueError(f"{name}: group_size={group_size} exceeds in_features={w.shape[1]}")
    qp = choose_qparams(w.float(), bits=bits, symmetric=False, granularity=PerGroup(group_size))
    scale16 = qp.scale.half()
    if not bool(torch.isfinite(scale16).all()):
        raise ValueError(f"{name}: a group scale overflows float16 (|w| too large to store)")
    return dataclasses.replace(qp, scale=scale16.float())   # integer-domain zero points


def pack_linear_weight(w: torch.Tensor, bits: int = 4, group_size: int = 128,
                       name: str = "w") -> PackedTensor:
    """Quantize a weight ``(O, I)`` as stored by :func:`save_quantized`: a PackedTensor
    holding the packed codes, fp16 scales ``(O, G, 1)`` and int32 zero points.

    >>> p = pack_linear_weight(torch.randn(8, 256), bits=4, group_size=128)
    >>> p.data.numel(), p.nbytes      # 8*256/2 code bytes + 16 fp16 scales + 16 4-bit zeros
    (1024, 1064)
    """
    _check_args(bits, group_size, torch.float16)
    qp = _stored_qparams(w, bits, group_size, name)
    return pack(quantize(w.float(), qp), qp, scale_dtype=torch.float16)


def unpack_linear_weight(packed: PackedTensor, dtype: torch.dtype = torch.float32
                         ) -> torch.Tensor:
    """The reconstruction ``s16 (q - z)`` of a :func:`pack_linear_weight` result.

    >>> w = torch.randn(4, 64)
    >>> w_hat = unpack_linear_weight(pack_linear_weight(w, bits=8, group_size=32))
    >>> bool((w - w_hat).abs().max() < 0.02)
    True
    """
    if not isinstance(packed, PackedTensor):
        raise TypeError(f"packed must be a PackedTensor (from pack_linear_weight), got "
                        f"{type(packed).__name__}")
    qp = packed.qparams
    qp32 = dataclasses.replace(qp, scale=qp.scale.float())
    return dequantize(unpack(packed), qp32, dtype=dtype)


def _unique_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` without aliases: a tied tensor is kept under its first name."""
    seen, out = set(), {}
    for name, t in model.state_dict().items():
        key = (t.data_ptr(), tuple(t.shape), t.dtype)
        if t.numel() and key in seen:
            continue
        seen.add(key)
        out[name] = t
    return out


def _quantized_linears(model: nn.Module, skip: tuple[str, ...]) -> dict[str, nn.Linear]:
    """The linears to quantize; an error if one shares its weight with another tensor."""
    from inwhale.llm.harness import find_linears

    linears = find_linears(model, skip)
    state = model.state_dict()
    for name, lin in linears.items():
        ptr = lin.weight.data_ptr()
        aliases = [k for k, t in state.items() if t.data_ptr() == ptr and k != f"{name}.weight"]
        if aliases:
            raise ValueError(f"{name}.weight is shared with {aliases[0]} (tied weights); "
                             f"add {name!r} to skip")
    return linears


@torch.no_grad()
def fake_quantize_for_storage_(model: nn.Module, bits: int = 4, group_size: int = 128,
                               skip: tuple[str, ...] = ("lm_head",),
                               other_dtype: torch.dtype = torch.float16) -> nn.Module:
    """In place: give ``model`` exactly the values :func:`load_quantized` would return.

    Each quantized linear weight becomes ``s16 (q - z)`` (packing is lossless, so it is
    skipped here); every other floating tensor is rounded through ``other_dtype``.
    Returns ``model``.

    >>> lin = nn.Linear(128, 4)
    >>> _ = fake_quantize_for_storage_(nn.Sequential(lin), bits=4, group_size=64, skip=())
    >>> lin.weight[0].unique().numel() <= 2 * 16     # two groups of at most 16 levels
    True
    """
    _check_args(bits, group_size, other_dtype)
    linears = _quantized_linears(model, skip)
    for name, lin in linears.items():
        w = lin.weight
        qp = _stored_qparams(w, bits, group_size, name)
        w.copy_(dequantize(quantize(w.float(), qp), qp, dtype=w.dtype))  # no packing needed
    weights = {f"{n}.weight" for n in linears}
    for name, t in _unique_state(model).items():
        if name not in weights and t.is_floating_point():
            t.copy_(t.to(other_dtype))
    return model


def save_quantized(model: nn.Module, path: str | os.PathLike, bits: int = 4,
                   group_size: int = 128, skip: tuple[str, ...] = ("lm_head",),
                   other_dtype: torch.dtype = torch.float16) -> dict:
    """Write ``model`` with packed ``bits``-bit linear weights to the safetensors file ``path``.

    The model is not changed. Tensors are moved to host memory to be written.

    Returns:
        sizes in bytes and bits: ``{"file_bytes", "linear_weights", "linear_bytes",
        "other_bytes", "header_bytes", "bits_per_weight", "theoretical_bits_per_weight"}``
        where the two bits-per-weight values cover the quantized linears only (measured from
        the stored tensors, and from :func:`bits_per_weight`).
    """
    from safetensors.torch import save_file

    _check_args(bits, group_size, other_dtype)
    linears = _quantized_linears(model, skip)
    tensors, record = {}, {"bits": bits, "group_size": group_size, "storage_bits": None,
                           "linears": {}, "other_dtype": str(other_dtype).removeprefix("torch.")}
    n_w = lin_bytes = theory = 0
    for name, lin in linears.items():
        p = pack_linear_weight(lin.weight.detach(), bits, group_size, name)
        qp = p.qparams
        tensors[f"{name}.qweight"] = p.data
        tensors[f"{name}.scales"] = qp.scale.reshape(qp.scale.shape[0], -1)  # (O, G) fp16
        tensors[f"{name}.qzeros"] = pack_codes(qp.zero_point - qp.qmin, p.storage_bits)
        record["linears"][name] = list(p.shape)
        record["storage_bits"] = p.storage_bits  # bits per stored code: 4 for b = 3
        n_w += p.shape.numel()
        lin_bytes += sum(tensors[f"{name}.{k}"].nbytes for k in ("qweight", "scales", "qzeros"))
        theory += bits_per_weight(bits, group_size, tuple(p.shape)) * p.shape.numel()
    weights = {f"{n}.weight" for n in linears}
    others = {k: t.to(other_dtype) if t.is_floating_point() else t
              for k, t in _unique_state(model).items() if k not in weights}
    tensors.update(others)
    tensors = {k: t.detach().cpu().contiguous() for k, t in tensors.items()}  # files: host
    save_file(tensors, str(path), metadata={"format": FORMAT, "inwhale": json.dumps(record)})
    file_bytes = Path(path).stat().st_size
    other_bytes = sum(tensors[k].nbytes for k in others)
    return {"file_bytes": file_bytes, "linear_weights": n_w, "linear_bytes": lin_bytes,
            "other_bytes": other_bytes, "header_bytes": file_bytes - lin_bytes - other_bytes,
            "bits_per_weight": 8 * lin_bytes / max(1, n_w),
            "theoretical_bits_per_weight": theory / max(1, n_w)}


def _read(path: str | os.PathLike, device: torch.device) -> tuple[dict, dict]:
    """The JSON record and every tensor of a :func:`save_quantized` file (not yet checked)."""
    from safetensors import SafetensorError, safe_open

    if not Path(path).is_file():
        raise FileNotFoundError(f"path {str(path)!r} is not a file")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise ValueError(f"path {str(path)!r} is not an {FORMAT} file (metadata {meta})")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as err:  # a damaged container: header, offsets, lengths
        raise ValueError(f"path {str(path)!r} is not a readable safetensors file: {err}") from err
    try:
        record = json.loads(meta.get("inwhale", ""))
    except json.JSONDecodeError as err:
        raise ValueError(f"path {str(path)!r}: the 'inwhale' metadata is not JSON ({err})") from err
    return record, tensors


def _bad(msg: str) -> ValueError:
    return ValueError(f"tampered or damaged file: {msg}")


def _is_int(v: object, low: int, high: int | None = None) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool) and v >= low
            and (high is None or v <= high))


def _check_record(record: object) -> dict:
    """The record's own consistency: field types and ranges, ``storage_bits`` for ``bits``."""
    if not isinstance(record, dict):
        raise _bad(f"the inwhale record must be a JSON object, got {type(record).__name__}")
    for key in ("bits", "group_size", "storage_bits", "linears", "other_dtype"):
        if key not in record:
            raise _bad(f"the inwhale record has no {key!r}")
    bits, g, sbits = record["bits"], record["group_size"], record["storage_bits"]
    if not _is_int(bits, 2, 8):
        raise _bad(f"record bits={bits!r} is not an int in [2, 8]")
    if not _is_int(g, 1):
        raise _bad(f"record group_size={g!r} is not a positive int")
    expected = _storage_bits(bits)
    if record["linears"] and sbits != expected:
        raise _bad(f"record storage_bits={sbits!r}, but {bits}-bit codes are stored in "
                   f"{expected} bits")
    if record["other_dtype"] not in _OTHER_DTYPES:
        raise _bad(f"record other_dtype={record['other_dtype']!r} is not one of "
                   f"{sorted(_OTHER_DTYPES)}")
    linears = record["linears"]
    if not isinstance(linears, dict):
        raise _bad("record linears must map names to [out, in] shapes")
    for name, shape in linears.items():
        if not (isinstance(shape, list) and len(shape) == 2 and all(_is_int(n, 1) for n in shape)):
            raise _bad(f"record shape of {name!r} is {shape!r}, expected [out, in] positive ints")
    return record


def _check_tensor_meta(key: str, t: torch.Tensor | None, dtype: torch.dtype,
                       shape: tuple[int, ...]) -> torch.Tensor:
    """A stored tensor with exactly the dtype and shape (hence byte count) the record implies."""
    if t is None:
        raise _bad(f"{key} is missing")
    if t.dtype != dtype or tuple(t.shape) != shape:
        raise _bad(f"{key} is {t.dtype} {tuple(t.shape)}, the record implies {dtype} {shape}")
    return t


def _check_linear_tensors(name: str, shape: list[int], record: dict, tensors: dict) -> None:
    """``name``'s qweight, scales and qzeros against the record; scales finite and positive."""
    (o, i), g, sbits = shape, record["group_size"], record["storage_bits"]
    n_groups = -(-i // g)
    if g > i:
        raise _bad(f"record group_size={g} exceeds in_features={i} of {name!r}")
    _check_tensor_meta(f"{name}.qweight", tensors.get(f"{name}.qweight"), torch.uint8,
                       (-(-o * i * sbits // 8),))
    scales = _check_tensor_meta(f"{name}.scales", tensors.get(f"{name}.scales"),
                                torch.float16, (o, n_groups))
    _check_tensor_meta(f"{name}.qzeros", tensors.get(f"{name}.qzeros"), torch.uint8,
                       (-(-o * n_groups * sbits // 8),))
    if not bool((torch.isfinite(scales) & (scales > 0)).all()):
        raise _bad(f"{name}.scales holds a NaN, infinite, zero or negative scale")


def _unpack_stored(name: str, shape: list[int], record: dict, tensors: dict) -> torch.Tensor:
    """Rebuild ``s16 (q - z)`` of one linear from its three stored tensors."""
    bits, g, sbits = record["bits"], record["group_size"], record["storage_bits"]
    (o, i), (qmin, qmax) = shape, integer_range(bits, signed=False)
    n_groups = -(-i // g)
    zeros = unpack_codes(tensors[f"{name}.qzeros"], sbits, o * n_groups).to(torch.int32)
    if int(zeros.max()) > qmax - qmin:
        raise _bad(f"{name}.qzeros holds a zero point above {qmax} for {bits}-bit codes")
    qp = QParams(tensors[f"{name}.scales"].float().reshape(o, n_groups, 1),
                 (zeros + qmin).reshape(o, n_groups, 1), qmin, qmax, PerGroup(g), bits)
    packed = PackedTensor(tensors[f"{name}.qweight"], torch.Size(shape), qp, True, sbits)
    codes = unpack(packed)
    if int(codes.max()) > qmax:
        raise _bad(f"{name}.qweight holds a code above {qmax} for {bits}-bit codes")
    return dequantize(codes, qp)


def _new_values(record: dict, tensors: dict, state: dict[str, torch.Tensor]
                ) -> dict[str, torch.Tensor]:
    """Every value the model will receive, built and checked before anything is written."""
    other = getattr(torch, record["other_dtype"])
    new = {}
    for name, shape in record["linears"].items():
        key = f"{name}.weight"
        if key not in state or list(state[key].shape) != shape:
            found = list(state[key].shape) if key in state else "missing"
            raise ValueError(f"model does not match the file: {key} is {found}, file has {shape}")
        _check_linear_tensors(name, shape, record, tensors)
        new[key] = _unpack_stored(name, shape, record, tensors)
    rest = {k: t for k, t in state.items() if k not in new}
    missing = [k for k in rest if k not in tensors]
    if missing:
        raise ValueError(f"model does not match the file: {missing[:3]} not in the file")
    packed = {f"{n}.{k}" for n in record["linears"] for k in ("qweight", "scales", "qzeros")}
    extra = [k for k in tensors if k not in rest and k not in packed]
    if extra:
        raise ValueError(f"model does not match the file: the file's {extra[:3]} are not in it")
    for name, t in rest.items():
        f = tensors[name]
        if t.shape != f.shape:
            raise ValueError(f"model does not match the file: {name} is {tuple(t.shape)}, "
                             f"file has {tuple(f.shape)}")
        want = other if t.is_floating_point() else t.dtype  # as save_quantized writes them
        if f.dtype != want:
            raise _bad(f"{name} is stored as {f.dtype}, the record implies {want}")
        new[name] = f
    return new


@torch.no_grad()
def load_quantized(path: str | os.PathLike,
                   model: nn.Module | Callable[[], nn.Module]) -> nn.Module:
    """Fill ``model`` (or ``model()``, a factory) with the weights stored at ``path``.

    ``model`` is a skeleton of the same architecture (its values are overwritten, in place);
    quantized linears receive ``s16 (q - z)``, every other tensor the stored value cast to
    the skeleton's dtype.

    The file is checked completely before the model is touched, so a failed load leaves
    ``model`` exactly as it was: the inwhale record against itself (``bits``, ``group_size``,
    ``storage_bits``, shapes), and every tensor's dtype, shape and byte count against the
    record; scales must be finite and positive, codes and zero points within ``bits``.

    Raises:
        ValueError: the file is damaged or edited (the message starts with "tampered or
            damaged file"), or it does not match the skeleton ("model does not match").
        FileNotFoundError: ``path`` is not a file.
    """
    if not isinstance(model, nn.Module):
        if not callable(model):
            raise TypeError("model must be an nn.Module or a callable returning one")
        model = model()
    device = next(model.parameters()).device
    record, tensors = _read(path, device)
    state = _unique_state(model)
    new = _new_values(_check_record(record), tensors, state)
    for name, value in new.items():  # nothing above wrote to the model
        state[name].copy_(value)
    return model


def save_float(model: nn.Module, path: str | os.PathLike,
               dtype: torch.dtype = torch.float32) -> int:
    """Write every (untied) floating tensor of ``model`` in ``dtype`` to a safetensors file;
    return the file's size in bytes (the reference point for :func:`save_quantized`)."""
    from safetensors.torch import save_file

    check_module(model, "model")
    tensors = {k: (t.to(dtype) if t.is_floating_point() else t).detach().cpu().contiguous()
               for k, t in _unique_state(model).items()}
    save_file(tensors, str(path))
    return Path(path).stat().st_size
