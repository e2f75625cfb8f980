"""The monitor function's tests run as its Lambda layer is: without scipy."""

from __future__ import annotations

import importlib
import sys

import pytest

# Publisher-side packages the tests' Given steps use to convert models; they import scipy
# themselves and are never in a function asset (the layer test checks the real thing).
_PUBLISHER_SIDE = ("sklearn", "treelite", "xgboost", "lightgbm")


@pytest.fixture
def without_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any import of scipy (or a submodule) from here on raises ImportError, as in the layer;
    only the publisher-side packages, imported first, keep the scipy they hold."""
    for package in _PUBLISHER_SIDE:
        importlib.import_module(package)
    for name in [n for n in sys.modules if n == "scipy" or n.startswith("scipy.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "scipy", None)
