"""Input checks shared by the core: clear errors that name the offending argument."""

from __future__ import annotations

import torch

SUPPORTED_BITS = range(1, 17)


def check_tensor(x: object, name: str = "x", *, allow_empty: bool = False) -> torch.Tensor:
    """Return ``x`` if it is a finite floating-point tensor, else raise naming ``name``.

    Raises ``TypeError`` for a non-tensor or an integer/bool dtype, and ``ValueError`` for an
    empty tensor (unless ``allow_empty``) or one holding NaN or ±inf.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (float32/float16/bfloat16/float64), "
            f"got dtype {x.dtype}; convert integer data with {name}.float() first"
        )
    if x.numel() == 0:
        if allow_empty:
            return x
        raise ValueError(f"{name} is empty: cannot estimate a range from no values")
    # A sum is finite when every element is (the cheap test); it can also overflow for
    # huge finite values, so only a non-finite sum triggers the element-wise check.
    if not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
        n_bad = int((~torch.isfinite(x)).sum())
        raise ValueError(
            f"{name} contains {n_bad} NaN or inf value(s); quantization needs finite input"
        )
    return x


def check_bits(bits: object, name: str = "bits", *, lo: int = 1, hi: int = 16) -> int:
    """Return ``bits`` if it is an int in ``lo..hi`` (default 1..16), else raise naming ``name``.

    The one validator for code widths: a format that needs a narrower range (storage packs
    2..8 bits, a sign-plus-magnitude code needs 2) passes ``lo``/``hi``.

    >>> check_bits(4), check_bits(8, lo=2, hi=8)
    (4, 8)
    >>> check_bits(1, lo=2)
    Traceback (most recent call last):
    ...
    ValueError: bits must be between 2 and 16, got 1
    """
    if not isinstance(bits, int) or isinstance(bits, bool):
        raise TypeError(f"{name} must be an int, got {type(bits).__name__}")
    if not (lo <= bits <= hi and bits in SUPPORTED_BITS):
        raise ValueError(f"{name} must be between {lo} and {hi}, got {bits}")
    return bits


def check_group_size(
    group_size: object, width: int | None = None, name: str = "group_size", *,
    allow_none: bool = True,
) -> int | None:
    """Return ``group_size`` if it is a positive int (or ``None`` when allowed), else raise.

    With ``width`` given (the length of the grouped axis, e.g. a weight's ``in_features``),
    a group larger than the axis is an error: use one parameter per row (``None``) instead.
    A ``group_size`` that does not divide ``width`` is fine (the last group is shorter).

    >>> check_group_size(128, 576), check_group_size(None)
    (128, None)
    >>> check_group_size(32, 16)
    Traceback (most recent call last):
    ...
    ValueError: group_size=32 is larger than the grouped axis (16)
    """
    if group_size is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be an int, got None")
    if not isinstance(group_size, int) or isinstance(group_size, bool):
        raise TypeError(f"{name} must be an int or None, got {type(group_size).__name__}")
    if group_size < 1:
        raise ValueError(f"{name} must be a positive int, got {group_size}")
    if width is not None and group_size > width:
        raise ValueError(f"{name}={group_size} is larger than the grouped axis ({width})")
    return group_size


def check_module(module: object, name: str = "model") -> torch.nn.Module:
    """Return ``module`` if it is a ``torch.nn.Module``, else raise ``TypeError`` naming ``name``.

    >>> check_module(torch.nn.Linear(2, 2)).in_features
    2
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(module).__name__}")
    return module


def check_codes(codes: object, name: str = "codes", low: int | None = None,
                high: int | None = None) -> torch.Tensor:
    """Return ``codes`` if it is an integer tensor with values in ``[low, high]``, else raise.

    Empty tensors are allowed (decoding nothing gives nothing). ``TypeError`` for a
    non-tensor or a floating/complex/bool dtype, ``ValueError`` for a value out of range.

    >>> check_codes(torch.tensor([0, 3], dtype=torch.uint8), "codes", 0, 15).tolist()
    [0, 3]
    """
    if not isinstance(codes, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of integer codes, got "
                        f"{type(codes).__name__}")
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor (codes), got dtype {codes.dtype}")
    if codes.numel() and low is not None and int(codes.min()) < low:
        raise ValueError(f"{name} must hold codes in [{low}, {high}], got {int(codes.min())}")
    if codes.numel() and high is not None and int(codes.max()) > high:
        raise ValueError(f"{name} must hold codes in [{low}, {high}], got {int(codes.max())}")
    return codes
