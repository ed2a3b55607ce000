"""Optional dependencies: the one place that imports them and says how to install them.

``pip install inwhale`` brings torch and numpy only. Progress bars (``tqdm``), Hugging Face
models (``transformers``), safetensors files and plots need extras; a missing one is reported
with the command that installs it, not a bare ``ModuleNotFoundError``.

Example:
    >>> bars = [x for x in tqdm(range(3), desc="no bar", disable=True)]  # tqdm not imported
    >>> bars
    [0, 1, 2]
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType
from typing import Any

__all__ = ["optional_import", "tqdm"]

PIP_NAMES = {"sklearn": "scikit-learn"}
"""Import name → pip name where they differ."""


def optional_import(module: str, purpose: str, extra: str = "book") -> ModuleType:
    """Import ``module`` or raise ``ModuleNotFoundError`` naming the extra that installs it.

    Args:
        module: dotted module name, e.g. ``"tqdm.auto"``.
        purpose: what needs it, for the message (e.g. ``"save_quantized"``).
        extra: the ``inwhale[...]`` extra that lists the package.

    Raises:
        ModuleNotFoundError: ``"... needs the optional package 'tqdm': pip install
            'inwhale[book]' (or pip install tqdm)"``.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        top = module.split(".")[0]
        if err.name is not None and err.name.split(".")[0] != top:
            raise  # the package is there but one of its own dependencies is not
        pip = PIP_NAMES.get(top, top)
        raise ModuleNotFoundError(
            f"{purpose} needs the optional package {top!r}: pip install 'inwhale[{extra}]' "
            f"(or pip install {pip})", name=top) from err


class _NoBar:
    """What ``tqdm(total=..., disable=True)`` returns: a context manager that ignores updates."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        return None

    def close(self) -> None:
        return None


def tqdm(iterable: Iterable | None = None, *, disable: bool = False, **kwargs: Any) -> Any:
    """``tqdm.auto.tqdm(iterable, **kwargs)``, or — with ``disable=True`` — ``iterable``
    itself (or a no-op bar for ``tqdm(total=n)``) without importing tqdm, so
    ``progress=False`` works on a bare ``pip install inwhale``."""
    if disable:
        return _NoBar() if iterable is None else iterable
    auto = optional_import("tqdm.auto", "a progress bar (progress=True; pass progress=False)")
    return auto.tqdm(iterable, **kwargs)
