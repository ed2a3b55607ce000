"""The helper that turns a missing reference library into a failure under CI=true."""

import pytest
from _pytest.outcomes import Failed, Skipped
from _reference import require


def test_present_library_is_returned(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert require("json").dumps([1]) == "[1]"


def test_missing_library_skips_locally_and_fails_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(Skipped, match="not installed"):
        require("inwhale_no_such_module")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="CI=true"):
        require("inwhale_no_such_module")
