"""PTQ of the real all-MiniLM-L6-v2 encoder (book/part4/04): the pipeline on a Hugging Face
BERT, the embedding metrics, and the activation-outlier finding the chapter is built on."""

from __future__ import annotations

import pytest
import torch

from inwhale.core import PerAxis, PerToken
from inwhale.data.minilm import embed, load_minilm
from inwhale.models.minilm_eval import (
    embed_sorted,
    embedding_agreement,
    pydoc_sentences,
    sentence_input_absmax,
)
from inwhale.nn.fake_quant import FakeQuantize
from inwhale.nn.modules import swap_layers
from inwhale.ptq.pipeline import QConfig, calibrate_, convert_, prepare

SKIP = ("pooler.dense",)
FFN_IN = "encoder.layer.3.intermediate.dense"


@pytest.fixture(scope="module")
def encoder():
    torch.set_num_threads(1)
    model, tok = load_minilm("cpu")
    sentences = pydoc_sentences()
    picked = sentences[:: len(sentences) // 24][:24]
    evals, calib = picked[:16], picked[16:]  # disjoint
    return model, tok, evals, calib, embed_sorted(evals, model, tok)


def _weight_only(model, bits):
    return convert_(prepare(model, QConfig(bits, mode="weight_only", skip=SKIP)))


def test_embed_sorted_matches_embed_one_sentence_at_a_time(encoder):
    model, tok, evals, _, e = encoder
    ref = torch.cat([embed(s, model, tok) for s in evals[:6]])  # no padding at all
    torch.testing.assert_close(e[:6], ref, atol=1e-5, rtol=0)


def test_pipeline_weights_equal_torch_per_channel_fake_quant(encoder):
    model, *_ = encoder
    q = _weight_only(model, 4)
    W = model.get_submodule(FFN_IN).weight.detach()
    scale = W.abs().amax(dim=1) / 7  # symmetric narrow range [-7, 7]
    ref = torch.fake_quantize_per_channel_affine(W, scale, torch.zeros(len(W), dtype=torch.int32),
                                                 0, -7, 7)
    torch.testing.assert_close(q.get_submodule(FFN_IN).quantized_weight(), ref)
    assert q.get_submodule("pooler.dense").__class__ is torch.nn.Linear  # skipped stays float


def test_weight_only_w8_is_near_lossless_and_fewer_bits_hurt_more(encoder):
    model, tok, evals, _, e_float = encoder
    cos = {b: embedding_agreement(embed_sorted(evals, _weight_only(model, b), tok), e_float)
           ["cosine"] for b in (8, 6, 4, 3)}
    assert cos[8] > 0.99
    assert cos[8] > cos[6] > cos[4] > cos[3]
    assert cos[3] < 0.9  # three bits per channel really do break the encoder


def test_static_range_is_set_by_cls_and_per_token_beats_it(encoder):
    model, tok, evals, calib, e_float = encoder
    ids = [tok(s, return_tensors="pt")["input_ids"] for s in calib]
    static = convert_(calibrate_(prepare(model, QConfig(8, 8, skip=SKIP)), ids))
    # the calibrated input range of the FFN is set by the [CLS] token: without it, far smaller
    seen = []
    h = model.get_submodule(FFN_IN).register_forward_pre_hook(lambda m, a: seen.append(a[0][0]))
    with torch.no_grad():
        for x in ids:
            model(x)
    h.remove()
    qp = static.get_submodule(FFN_IN).act_fq.qparams()
    full = float(torch.cat(seen).max() - torch.cat(seen).min())
    torch.testing.assert_close(float(qp.scale) * 255, full, rtol=1e-5, atol=0)
    no_cls = torch.cat([t[1:] for t in seen])
    assert float(no_cls.max() - no_cls.min()) < 0.7 * full
    absmax = sentence_input_absmax(model, tok, calib, [FFN_IN])[FFN_IN]
    assert absmax.max() > 8 * absmax.median()  # an outlier channel

    wfq = lambda layer: FakeQuantize(8, symmetric=True, narrow_range=True, granularity=PerAxis(0))
    afq = lambda layer: FakeQuantize(8, dynamic=True, granularity=PerToken())
    per_token = convert_(swap_layers(model, wfq, afq, skip=SKIP))
    c_static = embedding_agreement(embed_sorted(evals, static, tok), e_float)["cosine"]
    c_token = embedding_agreement(embed_sorted(evals, per_token, tok), e_float)["cosine"]
    assert 0.95 < c_static < c_token
    assert 1 - c_token < 0.5 * (1 - c_static)


def test_metrics_and_sentences_reject_bad_input():
    e = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    with pytest.raises(ValueError, match="shape"):
        embedding_agreement(e, e[:3])
    with pytest.raises(ValueError, match="unit-norm"):
        embedding_agreement(2 * e, e)
    with pytest.raises(ValueError, match="min_words"):
        pydoc_sentences(min_words=10, max_words=5)
    # a hand computation: flipping one row's direction changes its cosine to -1
    flipped = e.clone()
    flipped[0] = -flipped[0]
    assert embedding_agreement(flipped, e)["cosine_min"] == pytest.approx(-1.0, abs=1e-6)
