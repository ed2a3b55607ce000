"""Error diffusion halftoning (Floyd & Steinberg, "An adaptive algorithm for spatial
greyscale", Proc. SID 17(2), 1976).

Scan the image in raster order; quantize each pixel and push its error onto the pixels not
yet visited, with weights that sum to 1:

              ·      x[i, j]   7/16
           3/16       5/16     1/16

    v[i, j] = x[i, j] + (diffused errors),    y[i, j] = Q(v[i, j]),    e = v − y.

This is 2-D error-feedback noise shaping: the error is high-pass, so a blurred (low-passed)
output matches the blurred input — the *local mean is preserved* — even at 1 bit per pixel.

Glossary: ``x`` input image in the quantizer's range, ``y`` output, ``e`` error, ``w`` the
diffusion kernel as ``(row offset, column offset, weight)`` triples.
"""

from __future__ import annotations

import torch

from inwhale.core import QParams
from inwhale.core.checks import check_tensor
from inwhale.signal._scalar import scalar_fake_quantizer

__all__ = ["FLOYD_STEINBERG", "error_diffusion"]

FLOYD_STEINBERG: tuple[tuple[int, int, float], ...] = (
    (0, 1, 7 / 16),
    (1, -1, 3 / 16),
    (1, 0, 5 / 16),
    (1, 1, 1 / 16),
)
"""Floyd–Steinberg weights as (row offset, column offset, weight); they sum to 1."""


def _diffuse_channel(img: list[list[float]], fq, kernel) -> list[list[float]]:
    H, W = len(img), len(img[0])
    out = [[0.0] * W for _ in range(H)]
    for i in range(H):
        row = img[i]
        for j in range(W):
            v = row[j]
            y = fq(v)
            out[i][j] = y
            e = v - y
            for di, dj, w in kernel:
                ii, jj = i + di, j + dj
                if ii < H and 0 <= jj < W:
                    img[ii][jj] += w * e
    return out


def error_diffusion(
    image: torch.Tensor, qp: QParams, kernel: tuple[tuple[int, int, float], ...] = FLOYD_STEINBERG
) -> torch.Tensor:
    """Quantize ``image`` (H, W) or (H, W, C) with error diffusion, each channel separately.

    ``qp`` (per-tensor, from :func:`inwhale.qparams_from_range`) sets the output levels, e.g.
    ``qparams_from_range(0, 1, bits=1, signed=False)`` for black/white. Errors that would
    land outside the image are dropped. A pure-Python raster loop: about a second per
    100,000 pixels; crop or downsample large images.

    >>> from inwhale import qparams_from_range
    >>> qp = qparams_from_range(torch.tensor(0.0), torch.tensor(1.0), bits=1, signed=False)
    >>> error_diffusion(torch.full((4, 8), 0.25), qp)            # a quarter grey: 1 dot in 4
    tensor([[0., 0., 0., 0., 0., 0., 0., 0.],
            [0., 1., 0., 1., 0., 1., 0., 1.],
            [0., 0., 0., 0., 0., 0., 0., 0.],
            [0., 1., 0., 1., 0., 1., 0., 1.]])
    """
    check_tensor(image, "image")
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (H, W, C), got shape {tuple(image.shape)}")
    if any(w[0] < 0 or (w[0] == 0 and w[1] <= 0) for w in kernel):
        raise ValueError("kernel may only push error to pixels after the current one")
    fq = scalar_fake_quantizer(qp)
    chans = image.unsqueeze(-1) if image.ndim == 2 else image  # (H, W, C)
    outs = [
        torch.tensor(_diffuse_channel(chans[..., c].double().cpu().tolist(), fq, kernel))
        for c in range(chans.shape[-1])
    ]
    out = torch.stack(outs, -1).to(dtype=image.dtype, device=image.device)
    return out[..., 0] if image.ndim == 2 else out
