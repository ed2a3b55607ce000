"""Shared, cached tiny trained digits models for the nn/ptq/qat tests."""

import functools

import torch

from inwhale.data.images import digits_split
from inwhale.device import seed_everything
from inwhale.models import digits_cnn, digits_mlp, train_classifier


@functools.lru_cache(maxsize=1)
def split():
    return digits_split()


@functools.lru_cache(maxsize=2)
def trained(kind: str):
    torch.set_num_threads(1)
    Xtr, ytr, _, _ = split()
    seed_everything(0)
    m = digits_mlp() if kind == "mlp" else digits_cnn()
    train_classifier(m, Xtr, ytr, epochs=6 if kind == "mlp" else 4)
    return m
