"""docs/ARCHITECTURE.md matches the code: every module is described, every module and
function it names exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
PACKAGES = {"streaming": "streaming/", "app": "app/"}


def _described(package: str) -> set[str]:
    """The module files the table under ``### `<package>/`...`` names (relative paths)."""
    section = DOC.split(f"### `{package}/`", 1)[1].split("\n### ", 1)[0]
    named: set[str] = set()
    for row in re.findall(r"^\| (.+?) \|", section, re.M):
        for name in re.findall(r"`([\w/]+(?:\.py)?/?)`", row):
            named.add(name)
    return named


def _modules(package: str) -> set[str]:
    base = ROOT / package
    return {
        str(path.relative_to(base))
        for path in base.rglob("*.py")
        if path.name not in {"__init__.py", "__main__.py"}
    }


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_module_is_described(package: str) -> None:
    named = _described(package)
    folders = {name for name in named if name.endswith("/")}
    files = {name if name.endswith(".py") else f"{name}.py" for name in named - folders}
    # A name without a folder is in the row's folder ("backends/_grouped.py, _scripts.py").
    undescribed = {
        module
        for module in _modules(package)
        if module not in files
        and Path(module).name not in files
        and not any(module.startswith(folder) for folder in folders)
    }
    assert undescribed == set()


def test_every_dotted_name_resolves() -> None:
    missing = []
    for dotted in sorted(set(re.findall(r"`((?:app|streaming)\.[\w.]+)`", DOC))):
        parts = dotted.split(".")
        for split in range(len(parts), 0, -1):
            try:
                target: object = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            for attribute in parts[split:]:
                target = getattr(target, attribute, None)
            if target is None:
                missing.append(dotted)
            break
        else:
            missing.append(dotted)
    assert missing == []
