"""QAT on real digits: learned quantizers recover accuracy that PTQ loses at 2 bits."""

import torch
from _digits_p45 import split, trained
from torch import nn

from inwhale.device import seed_everything
from inwhale.models import DigitsTransformer, accuracy, train_classifier
from inwhale.nn import FakeQuantize, QuantLinear, swap_layers
from inwhale.ptq import QConfig, ptq_quantize
from inwhale.qat import PACT, LSQQuantizer, kurtosis_loss


def _qat(model, wf, af, epochs=3):
    Xtr, ytr, Xte, yte = split()
    seed_everything(0)
    q = swap_layers(model, wf, af)
    train_classifier(q, Xtr, ytr, epochs=epochs, lr=3e-3)
    return accuracy(q, Xte, yte)


def test_lsq_pact_beat_ptq_at_2_bits():
    m = trained("mlp")
    Xtr, _, Xte, yte = split()
    ptq = accuracy(ptq_quantize(m, QConfig(2, 2), [Xtr[:512]]), Xte, yte)
    lsq = _qat(m, lambda layer: LSQQuantizer(2, per_channel=True),
               lambda layer: LSQQuantizer(2, signed=False))
    pact = _qat(m, lambda layer: LSQQuantizer(2, per_channel=True), lambda layer: PACT(2, 2.0))
    assert lsq > ptq + 0.1 and pact > ptq + 0.1


def test_swap_layers_and_fake_quant_in_attention():
    seed_everything(0)
    t = DigitsTransformer(d=16, heads=2)
    q = swap_layers(t, lambda layer: FakeQuantize(8, symmetric=True), lambda layer: None)
    assert sum(isinstance(x, QuantLinear) for x in q.modules()) == 8
    for blk in q.blocks:
        blk.attn.p_fq = FakeQuantize(8, signed=False)
    x = split()[0][:16]
    y = q(x)
    assert y.shape == (16, 10)
    assert torch.allclose(y, t(x), atol=0.1)  # 8-bit everywhere stays close to float
    assert isinstance(t.embed, nn.Linear) and not isinstance(t.embed, QuantLinear)


def test_kurtosis_regularizer_lowers_kurtosis():
    Xtr, ytr, _, _ = split()
    from inwhale.models import digits_mlp
    from inwhale.qat import kurtosis
    seed_everything(0)
    m = digits_mlp()
    lin = lambda mm: [x.weight for x in mm.modules() if isinstance(x, nn.Linear)]
    train_classifier(m, Xtr, ytr, epochs=3, extra_loss=lambda mm: 1e-2 * kurtosis_loss(lin(mm)))
    seed_everything(0)
    plain = digits_mlp()
    train_classifier(plain, Xtr, ytr, epochs=3)
    k_reg = [float(kurtosis(w.detach())) for w in lin(m)]
    k_plain = [float(kurtosis(w.detach())) for w in lin(plain)]
    assert all(k < 2.1 for k in k_reg)  # pulled towards the target 1.8
    assert all(a < b - 0.3 for a, b in zip(k_reg, k_plain, strict=True))
