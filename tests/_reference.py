"""Reference libraries the tests compare against: skipped locally when missing, an error in CI.

A test that checks inwhale against an independent implementation (``gguf``, ``safetensors``,
``hqq``, ``faiss``, ``scipy``, ``transformers``, ``audioop``, ``tensorly``, ``sklearn``) gets
the module from :func:`require`. On a developer's machine a missing library skips the test
with its reason (``pytest -rs`` lists them); with ``CI=true`` — the CI run, and
``scripts/test.sh`` — a missing library fails the test, so a reference can never silently
stop being checked.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def in_ci() -> bool:
    """True when ``CI`` is set to a true value (``true``, ``1``, ``yes``)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(name: str) -> ModuleType:
    """Import ``name`` (e.g. ``"scipy.stats"``); skip the test if it is missing, fail in CI."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        msg = f"reference library {name!r} is not installed ({err}); see requirements.txt"
        if in_ci():
            pytest.fail(f"CI=true: {msg}", pytrace=False)
        pytest.skip(msg)
