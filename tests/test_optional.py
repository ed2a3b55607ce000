"""Installs that say what is missing (issue 13 §4): optional packages go through one helper."""

import sys

import pytest
import torch
from torch import nn

from inwhale._optional import optional_import, tqdm
from inwhale.llm.rtn import rtn_quantize_


@pytest.fixture
def no_tqdm(monkeypatch):
    """Make ``import tqdm`` fail, as on ``pip install inwhale`` (torch + numpy only)."""
    for name in [m for m in sys.modules if m == "tqdm" or m.startswith("tqdm.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 8))


def test_progress_false_needs_no_tqdm(no_tqdm) -> None:
    model = mlp()
    before = model[0].weight.clone()
    rtn_quantize_(model, bits=4, group_size=32, progress=False)
    assert not torch.equal(model[0].weight, before)  # it ran
    with tqdm(total=3, disable=True) as bar:  # the perplexity form
        bar.update(1)


def test_progress_true_names_the_extra(no_tqdm) -> None:
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'inwhale\[book\]'"):
        rtn_quantize_(mlp(), bits=4, group_size=32, progress=True)


def test_optional_import_message_and_pip_name(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if scikit-learn were missing
    with pytest.raises(ModuleNotFoundError, match=r"needs the optional package 'sklearn'.*"
                                                  r"pip install scikit-learn"):
        optional_import("sklearn", "the digits data")
    assert optional_import("math", "x").sqrt(4.0) == 2.0
