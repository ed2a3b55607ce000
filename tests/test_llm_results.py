"""The Part VI results table on a tiny random LLaMA: every row is present, the float model is
left untouched, the nearly lossless settings stay next to the baseline, and the bits-per-weight
column matches a hand count."""

import pytest
import torch

from inwhale.llm.results import block_linear_bits, format_table, results_table


def tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=192,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=128, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg).eval()


def test_bits_per_weight_hand_count():
    model = tiny_llama()
    # per block: q 64x64, k 32x64, v 32x64, o 64x64, gate/up 192x64, down 64x192
    # g=32: a 64-column row has 2 groups, a 192-column row 6; each group costs 32 bits
    sizes = [(64, 64), (32, 64), (32, 64), (64, 64), (192, 64), (192, 64), (64, 192)]
    total = sum(o * i for o, i in sizes)
    extra = sum(o * (i // 32) * 32 for o, i in sizes)
    assert block_linear_bits(model, 4, 32) == pytest.approx(4 + extra / total)
    assert block_linear_bits(model, 8, None, symmetric=True) == pytest.approx(
        8 + sum(o * 16 for o, _ in sizes) / total)


@pytest.fixture(autouse=True)
def results_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("INWHALE_RESULTS", str(tmp_path / "results"))


def test_results_table_rows_and_sanity():
    model = tiny_llama()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 128, (2048,), generator=g)
    rows = results_table(model, ids[:1024], ids[1024:], bits=(4,), group_size=32,
                         kv_bits=(8, 2), context_len=64, n_samples=8, seq_len=64)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    methods = [r.method for r in rows]
    assert methods[:6] == ["float", "RTN", "GPTQ", "AWQ", "HQQ", "rotation + RTN"]
    assert [r.family for r in rows].count("W8A8") == 4
    assert [r.family for r in rows].count("KV cache") == 2
    base = rows[0].ppl
    assert all(r.n_tokens == rows[0].n_tokens and torch.isfinite(torch.tensor(r.ppl))
               for r in rows)
    by = {(r.family, r.method): r.ppl for r in rows}
    assert by[("W8A8", "per-token acts")] == pytest.approx(base, rel=0.02)
    assert by[("KV cache", "K per-channel, V per-token, 8 bits")] == pytest.approx(base, rel=0.01)
    assert "| KV cache |" in format_table(rows)


def test_bad_arguments_name_the_argument():
    model = tiny_llama()
    ids = torch.randint(0, 128, (256,))
    with pytest.raises(ValueError, match="kv_bits"):
        results_table(model, ids, ids, kv_bits=(1,))
    with pytest.raises(ValueError, match="group_size"):
        results_table(model, ids, ids, group_size=0)
    with pytest.raises(ValueError, match="families"):
        results_table(model, ids, ids, families=("weights",))


def test_stored_rows_are_reused_only_for_identical_inputs(monkeypatch):
    import inwhale.llm.results as res

    model = tiny_llama(seed=2)
    ids = torch.randint(0, 128, (1024,), generator=torch.Generator().manual_seed(3))
    kw = dict(bits=(3,), group_size=32, kv_bits=(4,), context_len=64, n_samples=4, seq_len=64,
              families=("weight-only", "KV cache"), methods=("RTN", "HQQ",
                                                             "K per-channel, V per-token, 4 bits"))
    first = res.results_table(model, ids[:512], ids[512:], **kw)
    assert [r.method for r in first] == ["float", "RTN", "HQQ",
                                         "K per-channel, V per-token, 4 bits"]

    def boom(*a, **k):
        raise AssertionError("recomputed a stored row")

    monkeypatch.setattr(res, "perplexity", boom)
    again = res.results_table(model, ids[:512], ids[512:], **kw)
    assert again == first                                  # all four served from the store
    assert [r.token_nll for r in again] == [r.token_nll for r in first]  # per-token NLLs too
    with pytest.raises(AssertionError, match="recomputed"):
        res.results_table(model, ids[:512], ids[520:], **kw)   # other eval tokens: new rows
    other = tiny_llama(seed=5)
    with pytest.raises(AssertionError, match="recomputed"):
        res.results_table(other, ids[:512], ids[512:], **kw)   # other weights: new rows


def test_rows_keep_per_token_nll_for_paired_comparisons():
    from inwhale.llm.harness import perplexity
    from inwhale.llm.uncertainty import compare_perplexity

    model = tiny_llama(seed=4)
    ids = torch.randint(0, 128, (1536,), generator=torch.Generator().manual_seed(6))
    rows = results_table(model, ids[:512], ids[512:], bits=(3,), group_size=32, context_len=64,
                         n_samples=4, seq_len=64, families=("weight-only",),
                         methods=("RTN", "HQQ"))
    direct = perplexity(model, ids[512:], context_len=64, progress=False)
    base = rows[0].as_perplexity()
    assert len(rows[0].token_nll) == rows[0].n_tokens == sum(rows[0].window_tokens)
    assert torch.allclose(base.token_nll, direct.token_nll, atol=1e-5)
    ci = compare_perplexity(base, rows[1].as_perplexity())   # RTN W3 against float
    assert ci.ratio == pytest.approx(rows[1].ppl / rows[0].ppl, rel=1e-4)
    assert ci.n_blocks == len(rows[0].window_tokens) == 16
