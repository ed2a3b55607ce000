"""Offline English text for calibration and perplexity: Python's own documentation.

Every CPython ships ``pydoc_data.topics``, a dict from help-topic name (``"assert"``,
``"formatstrings"``, ...) to the text of that section of the language reference — about
465,000 characters of technical English with some code. It needs no download, so it plays the
role WikiText-2 plays in papers. Absolute perplexities are therefore *not* comparable with
published WikiText numbers; differences between quantizers are what matter.

:func:`pydoc_text` joins the topics in sorted-key order, separated by blank lines, so the text
is identical on every machine with the same Python minor version (the topics change between
Python releases: with Python 3.11 and the SmolLM2 tokenizer it is 113,000-odd tokens).

:func:`token_splits` cuts the token stream into two disjoint parts:

* **calibration** = the first ``calib_tokens`` tokens (topics early in the alphabet),
* **evaluation** = the last ``eval_tokens`` tokens (topics late in the alphabet),

so a method calibrated on one never sees the other.

Example:
    >>> from inwhale.data.text import pydoc_text
    >>> pydoc_text()[:22]
    'The "assert" statement'
"""

from __future__ import annotations

import functools
from typing import Any

import torch

__all__ = ["pydoc_text", "token_ids", "token_splits"]

_TOKEN_CACHE: dict[int, tuple[Any, torch.Tensor]] = {}  # id(tokenizer) -> (tokenizer, ids)


@functools.lru_cache(maxsize=1)
def pydoc_text() -> str:
    """Return Python's help topics as one deterministic English string.

    Returns:
        ``"\\n\\n".join(topics[k] for k in sorted(topics))`` — ~465k characters on Python 3.11.

    Example:
        >>> text = pydoc_text()
        >>> text == pydoc_text() and len(text) > 100_000
        True
    """
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def token_ids(tokenizer: Any) -> torch.Tensor:
    """Tokenize :func:`pydoc_text` once per tokenizer and return the ids.

    No special tokens (BOS/EOS) are added. The result is kept in memory per tokenizer object,
    so later calls are free; a clone is returned, so the caller may modify it.

    Args:
        tokenizer: a Hugging Face tokenizer (called as ``tokenizer(text,
            add_special_tokens=False, verbose=False)["input_ids"]``). It is kept alive by the
            cache for the life of the process.

    Returns:
        A 1-D ``torch.long`` tensor of shape ``(n_tokens,)``; about 113k tokens for SmolLM2.
    """
    entry = _TOKEN_CACHE.get(id(tokenizer))
    if entry is None or entry[0] is not tokenizer:
        # verbose=False: the text is far longer than model_max_length, which is fine here
        ids = tokenizer(pydoc_text(), add_special_tokens=False, verbose=False)["input_ids"]
        entry = (tokenizer, torch.tensor(ids, dtype=torch.long))
        _TOKEN_CACHE[id(tokenizer)] = entry
    return entry[1].clone()


def token_splits(
    tokenizer: Any, calib_tokens: int = 16_384, eval_tokens: int = 16_384
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return disjoint calibration and evaluation token ids from :func:`pydoc_text`.

    Calibration is taken from the **start** of the token stream, evaluation from the **end**;
    the tokens in between are used by neither.

    Args:
        tokenizer: a Hugging Face tokenizer.
        calib_tokens: length of the calibration split, ``>= 1``.
        eval_tokens: length of the evaluation split, ``>= 1``.

    Returns:
        ``(calib_ids, eval_ids)``, 1-D ``torch.long`` tensors of shapes ``(calib_tokens,)`` and
        ``(eval_tokens,)``.

    Raises:
        TypeError: if a length is not an ``int``.
        ValueError: if a length is below 1 or ``calib_tokens + eval_tokens`` exceeds the total
            number of tokens (the message gives the total).

    Example:
        >>> from inwhale.data.smollm2 import load_smollm2
        >>> _, tokenizer = load_smollm2(device="cpu")
        >>> calib, evl = token_splits(tokenizer, 4096, 4096)
        >>> calib.shape, evl.shape
        (torch.Size([4096]), torch.Size([4096]))
    """
    for name, value in (("calib_tokens", calib_tokens), ("eval_tokens", eval_tokens)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    ids = token_ids(tokenizer)
    if calib_tokens + eval_tokens > ids.numel():
        raise ValueError(
            f"calib_tokens + eval_tokens = {calib_tokens + eval_tokens} exceeds the "
            f"{ids.numel()} tokens of the text with this tokenizer"
        )
    return ids[:calib_tokens].clone(), ids[-eval_tokens:].clone()
