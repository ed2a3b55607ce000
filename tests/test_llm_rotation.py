"""Rotations: Hadamard matrices against scipy, orthogonality, kurtosis against scipy, and
exact float equivalence of a rotated tiny LLaMA (built from a config, no download)."""

import numpy as np
import pytest
import torch

from inwhale.llm.rotation import (
    excess_kurtosis,
    fold_norms_,
    hadamard_matrix,
    incoherence_matrix,
    random_orthogonal,
    rotate_model_,
)


def tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=128, hidden_size=96, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg).eval()
    for m in model.modules():  # non-trivial norm weights, so folding is really tested
        w = getattr(m, "weight", None)
        if isinstance(w, torch.Tensor) and w.ndim == 1:
            w.data = 1 + 0.3 * torch.randn_like(w)
    return model


@pytest.mark.parametrize("n", [1, 2, 4, 16, 128])
def test_hadamard_matches_scipy(n):
    from scipy.linalg import hadamard

    assert np.array_equal((hadamard_matrix(n) * n**0.5).round().numpy(), hadamard(n))


@pytest.mark.parametrize("n", [3, 12, 0, 576])
def test_hadamard_rejects_non_powers_of_two(n):
    with pytest.raises(ValueError, match="power of two"):
        hadamard_matrix(n)


@pytest.mark.parametrize("n", [9, 64, 96, 576])
def test_incoherence_matrix_is_orthogonal_and_seeded(n):
    Q = incoherence_matrix(n, seed=3)
    assert torch.allclose(Q @ Q.T, torch.eye(n, dtype=torch.float64), atol=1e-12)
    assert torch.equal(Q, incoherence_matrix(n, seed=3))
    assert not torch.equal(Q, incoherence_matrix(n, seed=4))
    R = random_orthogonal(n, seed=1)
    assert torch.allclose(R.T @ R, torch.eye(n, dtype=torch.float64), atol=1e-12)


def test_kurtosis_matches_scipy():
    from scipy.stats import kurtosis

    x = torch.randn(4000, generator=torch.Generator().manual_seed(0)) ** 3
    assert excess_kurtosis(x) == pytest.approx(kurtosis(x.double().numpy()), rel=1e-9)


def test_hadamard_spreads_an_outlier_column():
    torch.manual_seed(0)
    W = torch.randn(64, 128)
    W[:, 7] *= 50                                    # one outlier input channel
    Wr = (W.double() @ incoherence_matrix(128)).float()
    ratio = lambda t: float(t.abs().max() / t.pow(2).mean().sqrt())
    assert ratio(Wr) < ratio(W) / 4
    assert excess_kurtosis(Wr) < 1.0 < excess_kurtosis(W)


def test_rotated_model_has_identical_logits():
    model = tiny_llama()
    ids = torch.randint(0, 128, (2, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(ids).logits
        report = rotate_model_(model, seed=1)
        after = model(ids).logits
    assert report["readers"] == 10 and report["writers"] == 4
    assert (after - before).abs().max() < 1e-4
    assert model.lm_head.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    for m in model.modules():                       # every norm weight folded to 1
        w = getattr(m, "weight", None)
        if isinstance(w, torch.Tensor) and w.ndim == 1:
            assert torch.all(w == 1)


def test_fold_norms_alone_keeps_logits():
    model = tiny_llama(1)
    ids = torch.randint(0, 128, (1, 30), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(ids).logits
        assert fold_norms_(model) == {"pairs": 4, "final_norm": True}
        assert (model(ids).logits - before).abs().max() < 1e-4


def test_rotate_rejects_wrong_shape():
    with pytest.raises(ValueError, match="Q must have shape"):
        rotate_model_(tiny_llama(), Q=torch.eye(5))
