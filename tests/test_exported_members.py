"""Each package's public surface is its curated ``__all__``: every public name it holds is
listed, every listed name exists once (as httpx checks its own; ruff keeps it sorted)."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = ["streaming", "streaming.backends", "app", "tailcast"]
MODULES_WITH_ALL = ["tailcast.client"]


@pytest.mark.parametrize("name", PACKAGES)
def test_a_package_exports_exactly_its_public_names(name: str) -> None:
    package = importlib.import_module(name)
    public = {
        member
        for member, value in vars(package).items()
        if not member.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(package.__all__) - {"__version__"} == public


@pytest.mark.parametrize("name", PACKAGES + MODULES_WITH_ALL)
def test_all_names_what_exists_once_each(name: str) -> None:
    module = importlib.import_module(name)
    assert len(set(module.__all__)) == len(module.__all__)
    assert [member for member in module.__all__ if not hasattr(module, member)] == []
