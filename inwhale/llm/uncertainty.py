"""Is one perplexity really lower than another? A paired bootstrap over evaluation windows.

Two models scored on the *same* tokens make correlated mistakes: a hard token is hard for
both. Their perplexities must therefore be compared *paired*, token by token, not as two
numbers each with its own error bar. With per-token negative log-likelihoods
:math:`a_t` (model A) and :math:`b_t` (model B) on tokens :math:`t = 1..n`,

.. math::
    \\Delta = \\frac{1}{n}\\sum_t (b_t - a_t) = \\mathrm{NLL}_B - \\mathrm{NLL}_A,
    \\qquad \\frac{\\mathrm{PPL}_B}{\\mathrm{PPL}_A} = e^{\\Delta}.

Neighbouring tokens are not independent (they share a context), so the resampling unit is a
*block* of consecutive tokens — by default one evaluation window. The bootstrap draws
:math:`W` blocks with replacement out of the :math:`W` blocks, recomputes
:math:`\\Delta^* = \\sum_{w} D_w / \\sum_{w} n_w` (block sums :math:`D_w` of
:math:`b_t - a_t` and block sizes :math:`n_w` over the drawn blocks), and reports the
percentile interval of :math:`\\Delta^*` over ``n_boot`` draws. The draws come from a seeded
generator: the same inputs give the same interval on every run and machine.

Glossary: ``a``, ``b`` per-token NLLs (nats); ``D`` block sums of ``b - a``; ``n`` block
sizes; ``W`` number of blocks; ``level`` the interval's coverage (0.95).

Read the result as: the difference is *resolved* when the interval excludes 0; only then
may prose say that B is better or worse than A. Few blocks make the interval itself
unreliable (the bootstrap cannot see variation it has no blocks for), so fewer than
``MIN_BLOCKS`` = 8 blocks is refused: cut the windows into smaller blocks (``block_tokens``,
e.g. 64 tokens for two windows of 512 — blocks inside one window share context, so such an
interval is somewhat optimistic) or evaluate more tokens.

Example:
    >>> import torch
    >>> a = torch.arange(16.0)                               # per-token NLLs of model A
    >>> r = paired_bootstrap(a, a + 0.5, block_tokens=2)     # B: every token 0.5 nats worse
    >>> r.diff, r.lo, r.hi, r.n_blocks
    (0.5, 0.5, 0.5, 8)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from inwhale.llm.harness import PerplexityResult

__all__ = ["MIN_BLOCKS", "PairedInterval", "block_sums", "compare_perplexity",
           "paired_bootstrap"]

MIN_BLOCKS = 8
"""The fewest resampling blocks :func:`paired_bootstrap` accepts."""


@dataclass(frozen=True)
class PairedInterval:
    """A paired difference of mean NLLs, ``B - A``, with its bootstrap interval.

    Attributes:
        diff: observed ``NLL_B - NLL_A`` in nats per token (negative: B is better).
        lo, hi: the percentile bootstrap interval of ``diff`` at coverage ``level``.
        level: coverage, e.g. 0.95.
        n_blocks: resampling blocks ``W``.
        n_tokens: tokens compared.
        n_boot: bootstrap draws.

    The ratio of perplexities ``PPL_B / PPL_A = exp(diff)`` and its interval
    ``[exp(lo), exp(hi)]`` are :attr:`ratio`, :attr:`ratio_lo`, :attr:`ratio_hi`.

    >>> r = PairedInterval(diff=0.1, lo=0.05, hi=0.15, level=0.95, n_blocks=16,
    ...                    n_tokens=8176, n_boot=2000)
    >>> r.resolved, round(r.ratio, 3)
    (True, 1.105)
    >>> print(r)
    PPL ratio B/A 1.105 [1.051, 1.162] (95% paired bootstrap, 16 blocks, 8,176 tokens)
    """

    diff: float
    lo: float
    hi: float
    level: float
    n_blocks: int
    n_tokens: int
    n_boot: int

    @property
    def ratio(self) -> float:
        """``PPL_B / PPL_A``."""
        return math.exp(self.diff)

    @property
    def ratio_lo(self) -> float:
        """Lower end of the interval of ``PPL_B / PPL_A``."""
        return math.exp(self.lo)

    @property
    def ratio_hi(self) -> float:
        """Upper end of the interval of ``PPL_B / PPL_A``."""
        return math.exp(self.hi)

    @property
    def resolved(self) -> bool:
        """True if the interval excludes 0: the data tell which model is better."""
        return self.lo > 0 or self.hi < 0

    def __str__(self) -> str:
        return (f"PPL ratio B/A {self.ratio:.3f} [{self.ratio_lo:.3f}, {self.ratio_hi:.3f}] "
                f"({self.level:.0%} paired bootstrap, {self.n_blocks} blocks, "
                f"{self.n_tokens:,} tokens)")


def block_sums(values: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Sum ``values`` (n,) over consecutive blocks of the given ``sizes`` (summing to n).

    >>> block_sums(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]), [2, 3])
    tensor([ 3., 12.], dtype=torch.float64)
    """
    if sum(sizes) != values.numel():
        raise ValueError(f"sizes must sum to the {values.numel()} values, got {sum(sizes)}")
    return torch.stack([part.double().sum() for part in values.split(list(sizes))])


def _blocks(n: int, window_tokens: Sequence[int] | None, block_tokens: int | None) -> list[int]:
    """Block sizes: the windows, or runs of ``block_tokens`` (the last run takes the rest)."""
    if block_tokens is None:
        return list(window_tokens) if window_tokens else [n]
    if not isinstance(block_tokens, int) or block_tokens < 1:
        raise ValueError(f"block_tokens must be a positive int or None, got {block_tokens!r}")
    sizes = [block_tokens] * (n // block_tokens)
    if n % block_tokens:
        sizes.append(n % block_tokens)
    return sizes


def paired_bootstrap(
    nll_a: torch.Tensor,
    nll_b: torch.Tensor,
    window_tokens: Sequence[int] | None = None,
    *,
    block_tokens: int | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedInterval:
    """Paired percentile bootstrap of ``mean(nll_b) - mean(nll_a)`` over blocks of tokens.

    Args:
        nll_a: per-token NLLs of model A, shape ``(n,)``.
        nll_b: per-token NLLs of model B on the same tokens, shape ``(n,)``.
        window_tokens: tokens per evaluation window (summing to ``n``), the default blocks.
        block_tokens: if given, blocks of this many consecutive tokens instead of windows.
        n_boot: bootstrap draws (2,000 gives the 2.5 % quantile to about ±0.3 % coverage).
        level: coverage of the interval, in (0, 1).
        seed: seed of the generator that draws the blocks.

    Returns:
        A :class:`PairedInterval`.

    Raises:
        TypeError: if ``nll_a`` or ``nll_b`` is not a tensor.
        ValueError: if the shapes differ or are not 1-D, a setting is out of range, or there
            are fewer than :data:`MIN_BLOCKS` blocks.

    Example:
        >>> g = torch.Generator().manual_seed(1)
        >>> a = torch.rand(4096, generator=g) * 5               # per-token NLLs of A
        >>> b = a + 0.2 + 0.1 * torch.randn(4096, generator=g)  # B: 0.2 nats worse, noisy
        >>> r = paired_bootstrap(a, b, block_tokens=256)
        >>> r.lo < 0.2 < r.hi, r.resolved
        (True, True)
    """
    for name, t in (("nll_a", nll_a), ("nll_b", nll_b)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if nll_a.ndim != 1 or nll_a.shape != nll_b.shape or nll_a.numel() == 0:
        raise ValueError(f"nll_a and nll_b must be non-empty 1-D tensors of equal shape, got "
                         f"{tuple(nll_a.shape)} and {tuple(nll_b.shape)}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {n_boot!r}")
    sizes = _blocks(nll_a.numel(), window_tokens, block_tokens)
    if len(sizes) < MIN_BLOCKS:
        raise ValueError(f"{len(sizes)} blocks are too few for a bootstrap (at least "
                         f"{MIN_BLOCKS}): pass a smaller block_tokens or evaluate more tokens")
    d = block_sums(nll_b.double() - nll_a.double(), sizes)  # (W,) block sums of b - a
    n = torch.tensor(sizes, dtype=torch.float64)  # (W,) block sizes
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(sizes), (n_boot, len(sizes)), generator=gen)  # (n_boot, W)
    boot = d[pick].sum(1) / n[pick].sum(1)  # (n_boot,)
    tail = (1 - level) / 2
    lo, hi = torch.quantile(boot, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    diff = (d.sum() / n.sum()).item()
    return PairedInterval(diff=diff, lo=min(lo, diff), hi=max(hi, diff), level=level,
                          n_blocks=len(sizes), n_tokens=nll_a.numel(), n_boot=n_boot)


def compare_perplexity(
    a: PerplexityResult,
    b: PerplexityResult,
    *,
    block_tokens: int | None = None,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedInterval:
    """:func:`paired_bootstrap` of two :func:`~inwhale.llm.harness.perplexity` results.

    Both must come from the same token ids and windows (same ``context_len`` and stride);
    the blocks are the evaluation windows unless ``block_tokens`` is given.

    Raises:
        ValueError: if a result has no per-token NLLs, or the two were scored on different
            windows.

    Example:
        SmolLM2 before and after 4-bit RTN (groups of 128) on 1,024 tokens, in blocks of 64
        tokens (the two windows alone are too few blocks for a bootstrap):

        >>> import copy
        >>> from inwhale.data.smollm2 import load_smollm2
        >>> from inwhale.data.text import token_ids
        >>> from inwhale.llm.harness import perplexity
        >>> from inwhale.llm.rtn import rtn_quantize_
        >>> model, tok = load_smollm2(device="cpu")
        >>> eval_ids = token_ids(tok)[:1024]
        >>> quantized = copy.deepcopy(model)
        >>> _ = rtn_quantize_(quantized, bits=4, group_size=128, progress=False)
        >>> base = perplexity(model, eval_ids, progress=False)
        >>> w4 = perplexity(quantized, eval_ids, progress=False)
        >>> print(compare_perplexity(base, w4, block_tokens=64))
        PPL ratio B/A 1.348 [1.250, 1.454] (95% paired bootstrap, 16 blocks, 1,022 tokens)
    """
    for name, r in (("a", a), ("b", b)):
        if not isinstance(r, PerplexityResult) or r.token_nll is None:
            raise ValueError(f"{name} must be a PerplexityResult with per-token NLLs "
                             "(as returned by perplexity())")
    if a.window_tokens != b.window_tokens or a.context_len != b.context_len:
        raise ValueError("a and b were scored on different windows: evaluate both on the same "
                         "ids with the same context_len and stride")
    return paired_bootstrap(a.token_nll, b.token_nll, a.window_tokens,
                            block_tokens=block_tokens, n_boot=n_boot, level=level, seed=seed)
