"""QLoRA: NF4 base weights (packed) with LoRA adapters."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inwhale.core import unpack_codes
from inwhale.formats.nf4 import nf4_quantize, nf4_values
from inwhale.llm.qlora import (
    NF4Linear,
    QLoRALinear,
    lora_parameters,
    prepare_qlora_,
    train_lora,
)


def _lin(i: int = 96, o: int = 40, bias: bool = True, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(i, o, bias=bias)


@pytest.mark.parametrize("double_quant", [False, True])
def test_nf4_base_equals_inwhale_nf4_reference(double_quant: bool) -> None:
    lin = _lin(100, 30)  # 3000 weights: the last block of 64 is short (3000 = 46*64 + 56)
    ref = nf4_quantize(lin.weight.detach(), block_size=64, double_quant=double_quant)
    q = NF4Linear.from_linear(lin, double_quant=double_quant)
    assert torch.equal(q.dequantize_weight(), ref.dequantize())
    assert torch.equal(q.block_absmax(), ref.absmax)
    # the packed bytes hold exactly the reference codes, two per byte
    assert torch.equal(unpack_codes(q.packed, 4, 3000).view(30, 100), ref.codes)
    # and a hand decode: c * NF[code], block by block
    hand = nf4_values()[ref.codes.long()].flatten()
    hand = torch.cat([hand, hand.new_zeros(8)]).view(-1, 64) * ref.absmax[:, None]
    assert torch.equal(q.dequantize_weight(), hand.flatten()[:3000].view(30, 100))


def test_memory_is_packed_codes_not_floats() -> None:
    lin = _lin(128, 64)
    q = NF4Linear.from_linear(lin)
    assert q.packed.dtype == torch.uint8 and q.packed.numel() == 128 * 64 // 2
    assert not any(t.is_floating_point() and t.numel() >= lin.weight.numel()
                   for t in q.state_dict().values())
    assert q.weight_nbytes == 4096 + 4 * 128  # 4.5 bits per weight
    dq = NF4Linear.from_linear(lin, double_quant=True)
    # 8192 codes / 64 = 128 blocks: 128 fp8 bytes + 1 c2 (float32) + 1 mu (float32)
    assert dq.weight_nbytes == 4096 + 128 + 4 + 4
    big = _lin(256, 256)  # 1024 blocks = 4 whole second-level blocks: no padding anywhere
    ref = nf4_quantize(big.weight.detach(), double_quant=True)
    nbits = 8 * NF4Linear.from_linear(big, double_quant=True).weight_nbytes
    assert nbits / 65536 == pytest.approx(ref.bits_per_param())


def test_zero_adapter_output_equals_nf4_linear_exactly() -> None:
    lin = _lin()
    q = QLoRALinear.from_linear(lin, rank=4, alpha=8)
    x = torch.randn(3, 7, 96)
    w_hat = nf4_quantize(lin.weight.detach()).dequantize()
    assert torch.equal(q(x), F.linear(x, w_hat, lin.bias))
    assert torch.equal(q(x), NF4Linear.from_linear(lin)(x))


def test_adapter_formula_against_hand_computation() -> None:
    lin = _lin(bias=False)
    q = QLoRALinear.from_linear(lin, rank=3, alpha=6)
    with torch.no_grad():
        q.lora_B.normal_()
    x = torch.randn(5, 96)
    expect = x @ q.dequantize_weight().T + 2.0 * (x @ q.lora_A.T @ q.lora_B.T)  # alpha/r = 2
    torch.testing.assert_close(q(x), expect, atol=1e-5, rtol=1e-5)


def test_inits() -> None:
    lin = _lin(256, 64)
    g = torch.Generator().manual_seed(0)
    k = QLoRALinear.from_linear(lin, rank=16, generator=g)
    bound = 1 / math.sqrt(256)  # kaiming_uniform(a=sqrt 5) on fan_in 256
    assert torch.all(k.lora_B == 0) and k.lora_A.abs().max() <= bound
    assert k.lora_A.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    gau = QLoRALinear.from_linear(lin, rank=16, init="gaussian", generator=g)
    assert gau.lora_A.std().item() == pytest.approx(1 / 16, rel=0.05)
    a1 = QLoRALinear.from_linear(lin, generator=torch.Generator().manual_seed(3)).lora_A
    a2 = QLoRALinear.from_linear(lin, generator=torch.Generator().manual_seed(3)).lora_A
    assert torch.equal(a1, a2)


class _TinyLM(nn.Module):
    def __init__(self, vocab: int = 32, d: int = 64) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.block = nn.ModuleDict({"q_proj": nn.Linear(d, d), "v_proj": nn.Linear(d, d),
                                    "up": nn.Linear(d, d)})
        self.lm_head = nn.Linear(d, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids)
        h = h + torch.tanh(self.block["q_proj"](h)) * self.block["v_proj"](h)
        return self.lm_head(h + torch.relu(self.block["up"](h)))


def test_prepare_gradient_only_on_adapters() -> None:
    torch.manual_seed(0)
    model = _TinyLM()
    ids = torch.randint(0, 32, (2, 12))
    with torch.no_grad():
        nf4_ref = {n: nf4_quantize(m.weight).dequantize() for n, m in model.named_modules()
                   if n.startswith("block.")}
    rep = prepare_qlora_(model, rank=4, alpha=8, targets=("q_proj", "v_proj"))
    assert rep["nf4_layers"] == 3 and rep["lora_layers"] == 2
    assert type(model.block["up"]) is NF4Linear and type(model.lm_head) is nn.Linear
    assert rep["trainable_params"] == 2 * 4 * (64 + 64)
    assert rep["base_nbytes"] == 3 * (64 * 64 // 2 + 4 * 64) and rep["float32_nbytes"] == 3 * 4 * 4096
    for n, m in model.named_modules():
        if n in nf4_ref:
            assert torch.equal(m.dequantize_weight(), nf4_ref[n])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"block.{k}.lora_{ab}" for k in ("q_proj", "v_proj") for ab in "AB"}
    logits = model(ids)
    F.cross_entropy(logits.flatten(0, 1), ids.flatten()).backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == (n in trainable), n
    # with B = 0 the gradient reaches B (not A): dL/dA = (alpha/r) B^T (...) = 0
    q = model.block["q_proj"]
    assert q.lora_B.grad.abs().sum() > 0 and torch.all(q.lora_A.grad == 0)
    assert all(not b.requires_grad for b in model.buffers())


def test_train_lora_lowers_loss_and_leaves_base_alone() -> None:
    torch.manual_seed(0)
    model = _TinyLM()
    prepare_qlora_(model, rank=4, alpha=8, targets=("q_proj", "v_proj", "up"))
    base = {n: b.clone() for n, b in model.named_buffers()}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    batches = torch.randint(0, 8, (4, 16)) * 3 % 32  # a small repetitive language
    losses = train_lora(model, batches, steps=40, lr=1e-2, batch_size=4)
    assert len(losses) == 40 and losses[-1] < 0.8 * losses[0]
    assert all(torch.equal(b, base[n]) for n, b in model.named_buffers())
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    assert any(p.abs().sum() > 0 for p in lora_parameters(model) if p.shape[1] == 4)  # B moved


def test_bad_arguments_raise() -> None:
    lin = _lin()
    with pytest.raises(ValueError, match="rank"):
        QLoRALinear.from_linear(lin, rank=0)
    with pytest.raises(ValueError, match="alpha"):
        QLoRALinear.from_linear(lin, alpha=0)
    with pytest.raises(ValueError, match="init"):
        QLoRALinear.from_linear(lin, init="zeros")
    with pytest.raises(TypeError, match=r"nn\.Linear"):
        NF4Linear.from_linear(nn.Conv1d(2, 2, 1))
    with pytest.raises(ValueError, match="block_size"):
        NF4Linear.from_linear(lin, block_size=0)
    with pytest.raises(ValueError, match="targets"):
        prepare_qlora_(_TinyLM(), targets=("k_proj",))
    with pytest.raises(ValueError, match="requires grad"):
        train_lora(_TinyLM().requires_grad_(False), torch.zeros(2, 4, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="batches"):
        train_lora(_TinyLM(), torch.zeros(4, dtype=torch.long), 1)
