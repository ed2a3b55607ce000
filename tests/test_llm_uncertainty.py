"""Tests of inwhale.llm.uncertainty: the paired bootstrap of two perplexities."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from inwhale.llm.harness import PerplexityResult, perplexity
from inwhale.llm.uncertainty import block_sums, compare_perplexity, paired_bootstrap


def test_identical_inputs_give_a_zero_interval():
    a = torch.rand(1000, generator=torch.Generator().manual_seed(0)) * 4
    r = paired_bootstrap(a, a.clone(), [125] * 8)
    assert (r.diff, r.lo, r.hi) == (0.0, 0.0, 0.0)
    assert not r.resolved and r.ratio == 1.0


def test_known_shift_is_recovered_and_resolved():
    g = torch.Generator().manual_seed(3)
    a = torch.rand(8192, generator=g) * 6
    b = a + 0.05 + 0.3 * torch.randn(8192, generator=g)  # true shift 0.05 nats, noisy
    r = paired_bootstrap(a, b, [512] * 16)
    assert r.lo < 0.05 < r.hi
    assert r.resolved and r.lo > 0
    assert r.ratio == pytest.approx(math.exp(b.double().mean() - a.double().mean()), rel=1e-9)


def test_coverage_of_the_interval_on_independent_noise():
    """Over 200 independent data sets with true shift 0, a 90 % interval covers 0 about 180
    times; a binomial(200, 0.9) lies in [165, 193] with probability > 0.999."""
    g = torch.Generator().manual_seed(7)
    covered = 0
    for k in range(200):
        a = torch.rand(640, generator=g)
        b = a + torch.randn(640, generator=g)
        r = paired_bootstrap(a, b, block_tokens=32, n_boot=400, level=0.9, seed=k)
        covered += r.lo <= 0 <= r.hi
    assert 165 <= covered <= 193


def test_pairing_is_what_narrows_the_interval():
    """Two models sharing hard tokens: the paired interval is far narrower than the spread
    of either perplexity's own noise, so a small, consistent gap is resolved."""
    g = torch.Generator().manual_seed(5)
    hard = torch.rand(4096, generator=g) * 8  # shared per-token difficulty
    a = hard
    b = hard + 0.02 + 0.01 * torch.randn(4096, generator=g)
    r = paired_bootstrap(a, b, block_tokens=256)
    assert r.resolved and r.hi - r.lo < 0.01
    own = paired_bootstrap(torch.zeros(4096), a, block_tokens=256)  # spread of NLL_A alone
    assert own.hi - own.lo > 20 * (r.hi - r.lo)


def test_same_seed_same_interval_other_seed_other_draws():
    g = torch.Generator().manual_seed(11)
    a, b = torch.rand(2048, generator=g), torch.rand(2048, generator=g)
    r1, r2 = paired_bootstrap(a, b, [256] * 8), paired_bootstrap(a, b, [256] * 8)
    r3 = paired_bootstrap(a, b, [256] * 8, seed=1)
    assert r1 == r2
    assert (r3.lo, r3.hi) != (r1.lo, r1.hi) and r3.diff == r1.diff


def test_block_sums_and_blocks():
    assert block_sums(torch.arange(6.0), [1, 2, 3]).tolist() == [0.0, 3.0, 12.0]
    r = paired_bootstrap(torch.zeros(30), torch.ones(30), block_tokens=4)
    assert r.n_blocks == 8 and r.n_tokens == 30  # 7 x 4 + 2
    with pytest.raises(ValueError, match="too few"):
        paired_bootstrap(torch.zeros(30), torch.ones(30), block_tokens=5)  # 6 blocks
    with pytest.raises(ValueError, match="sizes"):
        block_sums(torch.arange(6.0), [1, 2])


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(nll_a=[1.0], nll_b=torch.ones(1)), TypeError, "nll_a"),
        (dict(nll_a=torch.ones(3), nll_b=torch.ones(4)), ValueError, "nll_a and nll_b"),
        (dict(nll_a=torch.ones(9), nll_b=torch.ones(9), level=1.0), ValueError, "level"),
        (dict(nll_a=torch.ones(9), nll_b=torch.ones(9), n_boot=0), ValueError, "n_boot"),
        (dict(nll_a=torch.ones(9), nll_b=torch.ones(9), block_tokens=0), ValueError,
         "block_tokens"),
        (dict(nll_a=torch.ones(9), nll_b=torch.ones(9)), ValueError, "too few"),
    ],
)
def test_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        paired_bootstrap(**kwargs)


class Bigram(nn.Module):
    """A causal LM that looks at the previous token only: logits = table[ids]."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table[ids]  # (B, T, V)


def test_perplexity_returns_the_per_token_nll_it_averages():
    torch.manual_seed(0)
    model = Bigram(torch.randn(7, 7))
    ids = torch.randint(0, 7, (300,))
    res = perplexity(model, ids, context_len=64, stride=32, progress=False)
    logp = torch.log_softmax(model.table.detach().double(), -1)
    by_hand = -logp[ids[:-1], ids[1:]]  # (299,) every next-token NLL
    assert res.window_tokens[0] == 63 and set(res.window_tokens[1:]) == {32}
    assert sum(res.window_tokens) == res.n_tokens == res.token_nll.numel()
    # the windows score tokens 1..63, then the last 32 of each later window, in order
    assert torch.allclose(res.token_nll.double(), by_hand[: res.n_tokens], atol=1e-5)
    assert res.token_nll.double().mean().item() == pytest.approx(res.nll, rel=1e-6)


def test_compare_perplexity_on_two_models():
    torch.manual_seed(1)
    table = torch.randn(7, 7) * 2
    ids = torch.randint(0, 7, (4096,))
    good = Bigram(table)
    worse = Bigram(table + 0.5 * torch.randn(7, 7))
    ra = perplexity(good, ids, context_len=256, progress=False)
    rb = perplexity(worse, ids, context_len=256, progress=False)
    r = compare_perplexity(ra, rb)
    assert r.n_blocks == 16 and r.ratio == pytest.approx(rb.ppl / ra.ppl, rel=1e-6)
    same = compare_perplexity(ra, perplexity(good, ids, context_len=256, progress=False))
    assert (same.lo, same.hi) == (0.0, 0.0)
    with pytest.raises(ValueError, match="different windows"):
        compare_perplexity(ra, perplexity(good, ids, context_len=128, progress=False))
    with pytest.raises(ValueError, match="per-token"):
        compare_perplexity(PerplexityResult(2.0, math.log(2.0), 10, 11), rb)
