"""The seed document's Quick start must keep working verbatim."""

import contextlib
import io

import torch

QUICK_START = '''
import torch
from inwhale.core.uniform import SymmetricUniformQuantizer
from inwhale.observers.minmax import MinMaxObserver
from inwhale.rounding.nearest import NearestRounding

x = torch.tensor([1.2, -0.7, 0.4, 2.3, -1.9])

observer = MinMaxObserver()
rounding = NearestRounding()
quant = SymmetricUniformQuantizer(bits=8, observer=observer, rounding=rounding)

qx = quant.quantize(x)
dx = quant.dequantize(qx)

print("Original:", x)
print("Quantized:", qx)
print("Dequantized:", dx)
print("Absolute error:", (x - dx).abs())
'''


def test_quick_start_runs_verbatim_and_is_right():
    out = io.StringIO()
    scope: dict = {}
    with contextlib.redirect_stdout(out):
        exec(QUICK_START, scope)
    text = out.getvalue()
    assert "Quantized:" in text and "Absolute error:" in text
    x, qx, dx = scope["x"], scope["qx"], scope["dx"]
    assert qx.dtype == torch.int8
    # symmetric int8, PyTorch convention: s = max|x| / 127.5, z = 0
    s = 2.3 / 127.5
    expected = torch.clamp(torch.round(x * (1 / torch.tensor(s))), -128, 127)
    assert torch.equal(qx.to(torch.float32), expected)
    assert torch.allclose(dx, expected * s)
    assert float((x - dx).abs().max()) <= s / 2 + 1e-7


def test_quick_start_is_in_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert QUICK_START.strip() in readme
