"""Docstrings are the book's API reference: they must hold no control characters (a ``\\b``
written in a non-raw docstring becomes a backspace), and every public module has one."""

import importlib
import inspect
import pkgutil

import inwhale

CONTROL = {chr(c) for c in range(32)} - {"\n", "\t"}


def _objects():
    for info in pkgutil.walk_packages(inwhale.__path__, "inwhale."):
        module = importlib.import_module(info.name)
        yield info.name, module
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) == info.name and (
                    inspect.isfunction(obj) or inspect.isclass(obj)):
                yield f"{info.name}.{name}", obj
                if inspect.isclass(obj):
                    for meth_name, meth in vars(obj).items():
                        if inspect.isfunction(meth):
                            yield f"{info.name}.{name}.{meth_name}", meth


def test_no_control_characters_in_docstrings():
    bad = [(name, sorted(repr(c) for c in set(obj.__doc__) & CONTROL))
           for name, obj in _objects() if obj.__doc__ and set(obj.__doc__) & CONTROL]
    assert bad == []


def test_the_check_sees_a_backspace():
    def f():
        """F_{l-1}\big(k\big)"""  # the mistake this test exists to catch

    assert set(f.__doc__) & CONTROL == {"\b"}
