"""Where tensors live, and how to make a run repeat itself.

Two helpers every chapter and benchmark starts with:

* :func:`default_device` picks CUDA when a GPU is visible and the CPU otherwise; the
  environment variable ``INWHALE_DEVICE`` (e.g. ``cpu``, ``cuda:1``) overrides the choice.
* :func:`seed_everything` seeds Python's ``random``, NumPy and PyTorch (every device) and asks
  PyTorch for deterministic kernels, so a re-run prints the same numbers.

Example:
    >>> import torch
    >>> from inwhale.device import default_device, seed_everything
    >>> seed_everything(0)
    >>> a = torch.rand(2)
    >>> seed_everything(0)
    >>> torch.equal(a, torch.rand(2))
    True
    >>> isinstance(default_device(), torch.device)
    True
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["DEVICE_ENV_VAR", "default_device", "seed_everything"]

DEVICE_ENV_VAR = "INWHALE_DEVICE"
"""Name of the environment variable that overrides :func:`default_device`."""


def default_device() -> torch.device:
    """Return the device inwhale should compute on.

    Order of precedence:

    1. ``$INWHALE_DEVICE`` if set and non-empty (any string ``torch.device`` accepts,
       e.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``);
    2. ``cuda`` when ``torch.cuda.is_available()``;
    3. ``cpu``.

    Returns:
        A ``torch.device``; nothing is allocated on it.

    Raises:
        ValueError: if ``$INWHALE_DEVICE`` is not a valid device string, names a backend
            (``cuda``, ``mps``, ``xpu``) that is not available, or a CUDA index at or beyond
            ``torch.cuda.device_count()``.

    Example:
        >>> import os
        >>> os.environ["INWHALE_DEVICE"] = "cpu"
        >>> default_device()
        device(type='cpu')
        >>> del os.environ["INWHALE_DEVICE"]
    """
    requested = os.environ.get(DEVICE_ENV_VAR, "").strip()
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as err:
            raise ValueError(
                f"${DEVICE_ENV_VAR}={requested!r} is not a device torch understands "
                "(expected e.g. 'cpu', 'cuda', 'cuda:0')"
            ) from err
        _check_available(device, requested)
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def _backend_available(kind: str) -> bool:
    """Whether PyTorch can compute on the backend ``kind`` (``"cuda"``, ``"mps"``, ``"xpu"``)."""
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if kind == "xpu":
        return hasattr(torch, "xpu") and torch.xpu.is_available()
    return True  # cpu, meta: always there


def _check_available(device: torch.device, requested: str) -> None:
    """``ValueError`` naming ``$INWHALE_DEVICE`` if ``device`` cannot be used on this machine."""
    if not _backend_available(device.type):
        raise ValueError(
            f"${DEVICE_ENV_VAR}={requested!r} asks for {device.type}, but it is not available "
            f"on this machine (torch.{device.type} reports no device); unset it or set it to 'cpu'"
        )
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        if device.index >= count:
            raise ValueError(
                f"${DEVICE_ENV_VAR}={requested!r} asks for CUDA device {device.index}, but only "
                f"{count} CUDA device(s) exist (valid indices 0..{count - 1})"
            )


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed ``random``, NumPy and PyTorch, and (by default) ask for deterministic kernels.

    Args:
        seed: a non-negative integer below ``2**32`` (NumPy's limit).
        deterministic: if True, call ``torch.use_deterministic_algorithms(True,
            warn_only=True)`` (ops with no deterministic kernel warn instead of failing),
            turn off cuDNN autotuning, and set ``CUBLAS_WORKSPACE_CONFIG`` if it is unset,
            as CUDA matmuls need it to be reproducible. These are process-wide settings.

    Raises:
        TypeError: if ``seed`` is not an ``int`` (a ``bool`` is refused too).
        ValueError: if ``seed`` is outside ``[0, 2**32)``.

    Example:
        >>> seed_everything(123)
        >>> x = random.random(), float(np.random.rand()), float(torch.rand(()))
        >>> seed_everything(123)
        >>> x == (random.random(), float(np.random.rand()), float(torch.rand(())))
        True
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 -- the legacy global RNG is what np.random.* uses
    torch.manual_seed(seed)  # seeds every device, CUDA included
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
