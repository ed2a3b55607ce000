"""benchmarks/llm_table.py validates its settings against the model before the baseline."""

import argparse
import importlib.util
from pathlib import Path

import pytest
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("llm_table", ROOT / "benchmarks/llm_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _args(**kw) -> argparse.Namespace:
    base = dict(eval_tokens=1024, calib_samples=8, seq_len=256, context=512, group_size=128)
    return argparse.Namespace(**{**base, **kw})


def test_group_wider_than_the_model_is_refused_first() -> None:
    bench, p = _bench(), argparse.ArgumentParser(prog="llm_table")
    narrow = nn.Sequential(nn.Linear(96, 64), nn.ReLU(), nn.Linear(64, 8))
    bench.check_settings(p, _args(group_size=64), narrow)  # fits
    with pytest.raises(SystemExit):  # argparse's error: exit status 2 with a message
        bench.check_settings(p, _args(group_size=128), narrow)
    with pytest.raises(SystemExit):
        bench.check_settings(p, _args(seq_len=0), narrow)
