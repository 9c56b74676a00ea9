"""The application layer and the command line load no Qt, and no module below the command
line imports it (the GUI reaches the CLI's actor through app.api)."""

from __future__ import annotations

import re

from conftest import REPO
from test_layering import QT_PREFIXES, modules_loaded_by


def test_every_api_and_cli_module_imports_without_qt() -> None:
    names = [".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
             for package in ("api", "cli") for p in sorted((REPO / "app" / package).rglob("*.py"))]
    assert "app.api.runs" in names and "app.cli.runs" in names
    loaded = modules_loaded_by(*names)
    assert [m for m in loaded if m.startswith(QT_PREFIXES)] == []


def test_only_the_entry_point_imports_the_command_line() -> None:
    importing = []
    for path in sorted((REPO / "app").rglob("*.py")):
        relative = path.relative_to(REPO / "app")
        if relative.parts[0] == "cli" or relative.name == "__main__.py":
            continue
        if re.search(r"^\s*(from app\.cli\b|import app\.cli\b|from app import cli\b)", path.read_text(), re.M):
            importing.append(str(relative))
    assert importing == []
