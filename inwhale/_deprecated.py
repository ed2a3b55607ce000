"""Old names kept importable for one release, with a :class:`DeprecationWarning`.

inwhale names functions *method first, then the verb* (``gptq_quantize_``, ``nf4_quantize``,
``kv_quantize_``, ``q4_0_quantize``), and every function that changes its argument in place
ends in ``_`` (``calibrate_``, ``convert_``). A name that broke the rule was renamed; the old
name is an alias made here, so code written against it keeps running and says what to use.

Aliases are not in any ``__all__`` (the API reference lists each object once, under its new
name) and carry ``__inwhale_renamed_to__`` so tests can tell them from public callables.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["renamed"]


def renamed(func: Callable[..., Any], old_name: str) -> Callable[..., Any]:
    """A deprecated alias ``old_name`` that warns once per call site and calls ``func``.

    Args:
        func: the function under its new name.
        old_name: the name it had before.

    Returns:
        A function that emits ``DeprecationWarning("<old> is deprecated; use <new>")`` and
        returns ``func(*args, **kwargs)``.

    Example:
        >>> import warnings
        >>> def kv_quantize_(x): return x + 1
        >>> quantize_kv_ = renamed(kv_quantize_, "quantize_kv_")
        >>> with warnings.catch_warnings(record=True) as w:
        ...     warnings.simplefilter("always")
        ...     quantize_kv_(1), str(w[0].message)
        (2, 'quantize_kv_ is deprecated; use kv_quantize_ (same arguments)')
    """
    message = f"{old_name} is deprecated; use {func.__name__} (same arguments)"

    @functools.wraps(func)
    def alias(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return func(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name
    alias.__doc__ = f"Deprecated: {message}."
    alias.__inwhale_renamed_to__ = func.__name__  # type: ignore[attr-defined]
    del alias.__wrapped__  # type: ignore[attr-defined]  # keep the alias out of doctest finders
    return alias
