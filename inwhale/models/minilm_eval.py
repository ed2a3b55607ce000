"""Measuring a quantized sentence encoder against its float self (all-MiniLM-L6-v2).

A sentence encoder is judged by its embeddings, not by an accuracy: the quantized model
``q`` is compared with the float model ``f`` on the same sentences ``x_1..x_n``:

* **cosine** — ``cos_i = <e_q(x_i), e_f(x_i)>`` (embeddings are unit vectors), averaged;
* **nearest-neighbour agreement** — the share of sentences whose nearest neighbour among
  the *other* sentences is the same under ``q`` as under ``f``:

  .. math::  \\mathrm{NN}(i) = \\arg\\max_{j \\ne i} \\langle e(x_i), e(x_j) \\rangle,\\qquad
             \\text{agreement} = \\frac1n \\sum_i [\\mathrm{NN}_q(i) = \\mathrm{NN}_f(i)]

  — what a semantic-search user notices first.

The sentences come offline from Python's own documentation (:func:`pydoc_sentences`), and
:func:`embed_sorted` embeds them in order of length so that a batch carries little padding.
:func:`sentence_input_absmax` records the per-channel input range of chosen linears, where
a transformer encoder's activation outliers show up (Bondarenko et al., 2021).

Glossary: ``e`` embedding (unit vector, 384 wide for MiniLM), ``f`` float model, ``q``
quantized model, ``n`` number of sentences.

Three 2-D "sentences"; the quantized model turns the middle one towards the third, whose
nearest neighbour it becomes (rows 0 and 2 keep theirs):

>>> ref = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
>>> q = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
>>> {k: round(v, 3) for k, v in embedding_agreement(q, ref).items()}
{'cosine': 0.987, 'cosine_min': 0.96, 'nn_agreement': 0.667}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["embed_sorted", "embedding_agreement", "pydoc_sentences", "sentence_input_absmax"]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def pydoc_sentences(min_words: int = 8, max_words: int = 20) -> list[str]:
    """English prose sentences from :func:`inwhale.data.text.pydoc_text`, in text order.

    Each paragraph's whitespace is collapsed and it is cut after ``.``, ``!`` or ``?``
    followed by a capital letter. A sentence is kept if it has ``min_words..max_words``
    words, starts with a capital, ends with a full stop and is at least 90 % letters and
    spaces (grammar rules and code are left out); duplicates are dropped (first kept).

    Args:
        min_words, max_words: inclusive word-count bounds, ``1 <= min_words <= max_words``.

    Returns:
        The sentences; about 960 with the defaults on Python 3.11.

    Raises:
        ValueError: if the bounds are not ``1 <= min_words <= max_words``.

    >>> s = pydoc_sentences()
    >>> len(s) > 500, all(8 <= len(x.split()) <= 20 for x in s), len(set(s)) == len(s)
    (True, True, True)
    """
    if not (isinstance(min_words, int) and isinstance(max_words, int)
            and 1 <= min_words <= max_words):
        raise ValueError(f"need 1 <= min_words <= max_words, got min_words={min_words!r}, "
                         f"max_words={max_words!r}")
    from inwhale.data.text import pydoc_text

    kept: dict[str, None] = {}
    for paragraph in pydoc_text().split("\n\n"):
        for s in _SENTENCE_END.split(" ".join(paragraph.split())):
            n_words = len(s.split())
            prose = sum(c.isalpha() or c == " " for c in s) >= 0.9 * len(s)
            if min_words <= n_words <= max_words and s[0].isupper() and s.endswith(".") \
                    and prose:
                kept.setdefault(s)
    return list(kept)


@torch.no_grad()
def embed_sorted(sentences: Sequence[str], model: Any, tokenizer: Any,
                 batch_size: int = 32) -> torch.Tensor:
    """:func:`inwhale.data.minilm.embed`, run in order of length, rows in the input order.

    Sorting by length puts sentences of similar length in one batch, so little compute is
    spent on padding; each row is the same as ``embed`` would give (padding is masked).

    Returns:
        ``(len(sentences), 384)`` unit-norm float32 embeddings, row ``i`` for
        ``sentences[i]``.

    Raises:
        ValueError: if ``sentences`` is empty or ``batch_size < 1``.

    >>> from inwhale.data.minilm import load_minilm
    >>> model, tok = load_minilm()
    >>> E = embed_sorted(["A longer sentence.", "Short."], model, tok)
    >>> E.shape, torch.linalg.vector_norm(E, dim=1).round(decimals=4).tolist()
    (torch.Size([2, 384]), [1.0, 1.0])
    """
    from inwhale.data.minilm import embed

    if len(sentences) == 0:
        raise ValueError("sentences must contain at least one sentence")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    e = embed([sentences[i] for i in order], model, tokenizer, batch_size=batch_size)
    out = torch.empty_like(e)
    out[torch.tensor(order, device=e.device)] = e
    return out


def _nearest_neighbours(e: torch.Tensor) -> torch.Tensor:
    """Index of each row's most similar *other* row: ``(n,)``."""
    sim = e @ e.T  # (n, n)
    sim.fill_diagonal_(float("-inf"))
    return sim.argmax(dim=1)


@torch.no_grad()
def embedding_agreement(e: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    """Compare embeddings ``e`` with reference embeddings ``ref`` of the same sentences.

    ``cosine`` = mean over rows of ``<e_i, ref_i>``, ``cosine_min`` its smallest value, and
    ``nn_agreement`` = share of rows whose nearest other row is the same in ``e`` as in
    ``ref`` (ties go to the lowest index). Rows must be unit vectors (as ``embed`` returns).

    Args:
        e, ref: ``(n, d)`` floating tensors, ``n >= 2``.

    Returns:
        ``{"cosine": ..., "cosine_min": ..., "nn_agreement": ...}`` as Python floats.

    Raises:
        ValueError: if the shapes differ, ``n < 2``, or a row is not of unit norm (1e-3).

    >>> ref = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    >>> embedding_agreement(ref, ref)
    {'cosine': 1.0, 'cosine_min': 1.0, 'nn_agreement': 1.0}
    """
    if e.shape != ref.shape or e.ndim != 2 or e.shape[0] < 2:
        raise ValueError(f"e and ref must both have shape (n >= 2, d), got {tuple(e.shape)} "
                         f"and {tuple(ref.shape)}")
    for name, t in (("e", e), ("ref", ref)):
        if not torch.allclose(t.norm(dim=1), torch.ones(len(t), device=t.device), atol=1e-3):
            raise ValueError(f"{name} must have unit-norm rows (L2-normalize the embeddings)")
    cos = (e.float() * ref.float()).sum(dim=1)  # (n,)
    agree = _nearest_neighbours(e.float()) == _nearest_neighbours(ref.float())
    return {"cosine": float(cos.mean()), "cosine_min": float(cos.min()),
            "nn_agreement": float(agree.float().mean())}


@torch.no_grad()
def sentence_input_absmax(model: nn.Module, tokenizer: Any, sentences: Sequence[str],
                          names: Iterable[str], batch_size: int = 32) -> dict[str, torch.Tensor]:
    """Per-input-channel ``max |x_j|`` of the named linears over every token of ``sentences``.

    Forward pre-hooks record ``amax_t |x_{t j}|`` of each layer's input (padding tokens
    included: they pass through the linears like any token) while :func:`embed_sorted`
    runs; the hooks are removed afterwards, also on error.

    Args:
        model, tokenizer: an encoder (float, or prepared for quantization) and its tokenizer.
        sentences: the calibration sentences.
        names: module names (as in ``named_modules``) of linears.

    Returns:
        ``{name: (in_features,) float32 tensor}`` on the model's device.

    Raises:
        ValueError: if a name is not a module of ``model`` with an ``in_features``.
    """
    modules = dict(model.named_modules())
    names = list(names)
    bad = [n for n in names if not hasattr(modules.get(n), "in_features")]
    if bad:
        raise ValueError(f"names must name linear layers of the model; not found: {bad[:5]}")
    stats: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            m = args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(dim=0).float()
            stats[name] = m if name not in stats else torch.maximum(stats[name], m)
        return hook

    handles = [modules[n].register_forward_pre_hook(hook_for(n)) for n in names]
    try:
        embed_sorted(sentences, model, tokenizer, batch_size)
    finally:
        for h in handles:
            h.remove()
    return stats
