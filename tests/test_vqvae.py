"""VQ-VAE codebook: straight-through gradient, the two loss terms, and a short training run."""

import torch

from inwhale.data.images import digits
from inwhale.vq import TinyVQVAE, VQCodebook, train_vqvae


def test_straight_through_gradient_is_identity():
    torch.manual_seed(0)
    cb = VQCodebook(8, 3)
    z_e = torch.randn(5, 3, requires_grad=True)
    z_q, codes, _ = cb(z_e)
    # forward value is the nearest codeword (brute force)
    ref = torch.cdist(z_e.detach(), cb.embedding.detach()).argmin(1)
    assert torch.equal(codes, ref)
    assert torch.allclose(z_q.detach(), cb.embedding.detach()[ref], atol=1e-7)
    upstream = torch.randn(5, 3)
    (z_q * upstream).sum().backward()
    assert torch.equal(z_e.grad, upstream)  # copied straight through
    assert cb.embedding.grad is None  # the decoder path does not train the codebook


def test_codebook_and_commitment_gradients():
    cb = VQCodebook(2, 1, beta=0.25)
    cb.embedding.data = torch.tensor([[0.0], [10.0]])
    z_e = torch.tensor([[1.0], [9.0]], requires_grad=True)
    _, _, loss = cb(z_e)
    assert loss.item() == (1 + 0.25) * 1.0  # both vectors are 1 away from their codeword
    loss.backward()
    # d/de mean((sg[z]-e)^2) = -2 (z - e) / B ; d/dz of β mean((z - sg[e])^2) = 2 β (z - e) / B
    assert torch.allclose(cb.embedding.grad, torch.tensor([[-1.0], [1.0]]))
    assert torch.allclose(z_e.grad, torch.tensor([[0.25], [-0.25]]))


def test_training_lowers_reconstruction_error():
    torch.manual_seed(0)
    X = digits()[0].unsqueeze(1)  # (1797, 1, 8, 8)
    model = TinyVQVAE(num_codes=16)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: threading only adds overhead
    try:
        h = train_vqvae(model, X, steps=40, batch_size=32, lr=1e-2)
    finally:
        torch.set_num_threads(threads)
    first = sum(r["rec"] for r in h[:5]) / 5
    last = sum(r["rec"] for r in h[-5:]) / 5
    assert last < 0.5 * first
