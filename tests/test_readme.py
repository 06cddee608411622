"""The README's configuration table against app/settings.py."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Configuration"


def _env(name: str) -> str:
    return f"TAILCAST_{name.upper()}"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _table_rows() -> list[list[str]]:
    """The cells of each setting row of the table in the README's Configuration section."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("|") and "`TAILCAST_" in line
    ]


def test_readme_documents_every_setting() -> None:
    rows = _table_rows()
    missing = [
        f"{name} (`{_env(name)}`, `{_flag(name)}`)"
        for name in Settings.model_fields
        if not any(f"`{_env(name)}`" in row and f"`{_flag(name)}`" in row for row in rows)
    ]
    assert not missing, (
        f"app/settings.py has settings that README.md's {SECTION} table lacks (a row naming "
        f"both the variable and the flag): {', '.join(missing)}"
    )


def test_readme_documents_no_unknown_setting() -> None:
    known = {_env(name) for name in Settings.model_fields}
    named = {env for row in _table_rows() for env in re.findall(r"`(TAILCAST_\w+)`", row[0])}
    assert named <= known, (
        f"README.md's {SECTION} table documents variables app/settings.py does not have: "
        f"{sorted(named - known)}"
    )


def test_readme_defaults_match_settings() -> None:
    # variable -> its default cell
    defaults = {row[0].strip("`"): row[2] for row in _table_rows() if len(row) >= 4}
    wrong = [
        f"{_env(name)}: README says {defaults[_env(name)]!r}, app/settings.py has {field.default!r}"
        for name, field in Settings.model_fields.items()
        if field.default is not None
        and _env(name) in defaults
        and f"`{field.default}`" not in defaults[_env(name)]
    ]
    assert not wrong, "README.md's configuration defaults differ:\n  " + "\n  ".join(wrong)
