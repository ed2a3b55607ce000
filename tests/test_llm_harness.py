"""Tests of inwhale.llm.harness on a toy language model and on SmolLM2."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from inwhale.data import load_smollm2, token_splits
from inwhale.llm import (
    PerplexityResult,
    calibration_batches,
    capture_linear_inputs,
    find_linears,
    for_each_linear_input,
    linear_input_absmax,
    norm_linear_pairs,
    perplexity,
)


class ToyLM(nn.Module):
    """Embedding -> norm -> two linears -> vocabulary: a 'causal' LM that looks at one token."""

    def __init__(self, vocab: int = 11, dim: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, 16)
        self.gate = nn.Linear(dim, 16)
        self.down = nn.Linear(16, dim)
        self.lm_head = nn.Linear(dim, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.embed(ids))  # (B, T, dim)
        return self.lm_head(self.down(self.up(h) * torch.sigmoid(self.gate(h))))  # (B, T, V)


@pytest.fixture
def toy() -> ToyLM:
    torch.manual_seed(0)
    return ToyLM()


@pytest.fixture(scope="module")
def smollm2():
    return load_smollm2(device="cpu")


def nll_by_hand(model: nn.Module, ids: torch.Tensor, length: int, stride: int) -> tuple[float, int]:
    """Mean NLL written out token by token, HF's sliding-window recipe."""
    total, count, prev_end = 0.0, 0, 0
    for begin in range(0, len(ids) - length + 1, stride):
        window = ids[begin : begin + length]
        logp = torch.log_softmax(model(window[None])[0].double(), dim=-1)  # (L, V)
        first = max(prev_end - begin, 1)  # positions already scored, or the context-less first
        for t in range(first, length):
            total -= logp[t - 1, window[t]].item()
            count += 1
        prev_end = begin + length
    return total / count, count


# ------------------------------------------------------------------------------ perplexity


@pytest.mark.parametrize("length,stride,batch", [(8, None, 1), (8, None, 3), (8, 3, 2), (5, 5, 4)])
def test_perplexity_equals_exp_mean_nll_by_hand(toy, length, stride, batch):
    ids = torch.randint(0, 11, (50,), generator=torch.Generator().manual_seed(1))
    result = perplexity(toy, ids, context_len=length, stride=stride, batch_size=batch,
                        progress=False)
    nll, count = nll_by_hand(toy, ids, length, stride or length)
    assert result.n_tokens == count and result.context_len == length
    assert result.nll == pytest.approx(nll, rel=1e-5)
    assert result.ppl == pytest.approx(math.exp(nll), rel=1e-5)


def test_perplexity_edge_cases(toy):
    ids = torch.arange(6)
    short = perplexity(toy, ids, context_len=512, progress=False)  # one window of 6
    assert short.context_len == 6 and short.n_tokens == 5
    assert perplexity(toy, ids[None], context_len=512, progress=False) == short  # (1, N) works
    toy.train()
    perplexity(toy, ids, progress=False)
    assert toy.training  # the mode is restored
    with pytest.raises(TypeError, match="ids"):
        perplexity(toy, ids.float(), progress=False)
    with pytest.raises(ValueError, match="stride"):
        perplexity(toy, ids, context_len=4, stride=5, progress=False)
    with pytest.raises(ValueError, match="ids"):
        perplexity(toy, ids[:1], progress=False)


def test_perplexity_result_prints_nicely():
    result = PerplexityResult(ppl=23.4112, nll=math.log(23.4112), n_tokens=16384, context_len=512)
    assert str(result) == "ppl 23.41 on 16,384 tokens, context 512"


# ------------------------------------------------------------------------------ layers


def test_find_linears_by_type_with_skip(toy):
    assert list(find_linears(toy)) == ["up", "gate", "down"]
    assert list(find_linears(toy, skip=())) == ["up", "gate", "down", "lm_head"]
    assert list(find_linears(toy, skip=["lm_head", "gate"])) == ["up", "down"]
    wrapped = nn.ModuleDict({"model": toy})
    assert "model.lm_head" not in find_linears(wrapped)  # a suffix matches
    assert find_linears(wrapped, skip="model") == {}  # so does a prefix


def test_norm_linear_pairs_on_toy(toy):
    pairs = norm_linear_pairs(toy)
    assert [(p.norm_name, p.linear_names) for p in pairs] == [("norm", ["up", "gate"])]
    assert pairs[0].norm is toy.norm and pairs[0].linears == [toy.up, toy.gate]


def test_smollm2_layers(smollm2):
    model, _ = smollm2
    linears = find_linears(model)
    assert len(linears) == 30 * 7
    assert len(find_linears(model, skip=())) == 30 * 7 + 1
    assert all(isinstance(m, nn.Linear) for m in linears.values())
    pairs = norm_linear_pairs(model)
    assert len(pairs) == 60
    assert pairs[0].norm_name == "model.layers.0.input_layernorm"
    assert [n.rsplit(".", 1)[1] for n in pairs[0].linear_names] == ["q_proj", "k_proj", "v_proj"]
    assert [n.rsplit(".", 1)[1] for n in pairs[1].linear_names] == ["gate_proj", "up_proj"]
    # lm_head reads a slice of model.norm's output (a new tensor), so it is never paired
    assert len(norm_linear_pairs(model, skip=())) == 60


# ------------------------------------------------------------------------------ calibration


def test_calibration_batches_even_and_disjoint():
    ids = torch.arange(100)
    batches = calibration_batches(ids, n_samples=4, seq_len=10)
    assert batches.shape == (4, 10)
    assert batches[:, 0].tolist() == [0, 30, 60, 90]
    assert torch.equal(batches, calibration_batches(ids, 4, 10))
    assert calibration_batches(ids, 10, 10).unique().numel() == 100
    with pytest.raises(ValueError, match="exceeds"):
        calibration_batches(ids, 11, 10)


def test_capture_and_absmax_match_a_manual_forward(toy):
    batches = torch.randint(0, 11, (5, 7), generator=torch.Generator().manual_seed(2))
    inputs = capture_linear_inputs(toy, ["up", "down"], batches, max_rows=None, batch_size=2)
    with torch.no_grad():
        h = toy.norm(toy.embed(batches)).reshape(-1, 8)  # (35, 8)
        mid = (toy.up(h) * torch.sigmoid(toy.gate(h)))  # (35, 16)
    assert torch.allclose(inputs["up"], h, atol=1e-6)
    assert torch.allclose(inputs["down"], mid, atol=1e-6)
    bounded = capture_linear_inputs(toy, find_linears(toy), batches, max_rows=10)
    assert {k: v.shape[0] for k, v in bounded.items()} == {"up": 10, "gate": 10, "down": 10}
    assert torch.equal(bounded["up"], inputs["up"][:10])
    absmax = linear_input_absmax(toy, ["up", "down"], batches, batch_size=3)
    assert torch.allclose(absmax["down"], mid.abs().amax(dim=0), atol=1e-6)
    # every hook is gone afterwards
    assert all(not m._forward_pre_hooks for m in toy.modules())


def test_hooks_are_removed_on_error(toy):
    def boom(name, x):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        for_each_linear_input(toy, ["up"], torch.zeros(1, 3, dtype=torch.long), boom)
    assert not toy.up._forward_pre_hooks
    with pytest.raises(ValueError, match="names"):
        capture_linear_inputs(toy, ["norm"], torch.zeros(1, 3, dtype=torch.long))


def test_smollm2_absmax_shows_outlier_channels(smollm2):
    model, tok = smollm2
    calib, _ = token_splits(tok, calib_tokens=2048, eval_tokens=2048)
    name = "model.layers.0.self_attn.q_proj"
    absmax = linear_input_absmax(model, [name], calibration_batches(calib, 2, 32))[name]
    assert absmax.shape == (576,) and torch.isfinite(absmax).all()
    assert absmax.max() > 5 * absmax.median()  # a few channels dominate, as in every LLM


def test_for_each_linear_input_runs_without_autograd():
    """Statistics hooks must see tensors that do not require grad (no graph is built)."""
    from inwhale.llm.harness import for_each_linear_input

    net = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 4))
    seen = []
    for_each_linear_input(net, ["1"], torch.zeros(2, 3, dtype=torch.long),
                          lambda n, x: seen.append(x.requires_grad))
    assert seen and not any(seen)
