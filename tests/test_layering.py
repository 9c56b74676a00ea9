"""The engine layers never load Qt: they must run headless on a server and in benchmarks."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

QT_PREFIXES = ("PySide6", "NodeGraphQt", "shiboken6")


def modules_loaded_by(*imports: str) -> list[str]:
    code = ("import json, sys\n" + "".join(f"import {name}\n" for name in imports)
            + "print(json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_workflow_store_runtime_and_cli_import_without_qt() -> None:
    loaded = modules_loaded_by("app.workflow", "app.store", "app.store.demo", "app.runtime", "app.cli")
    assert "app.store" in loaded and "app.runtime" in loaded
    assert [m for m in loaded if m.startswith(QT_PREFIXES)] == []


def test_every_engine_module_imports_without_qt() -> None:
    """Each module file under app/workflow, app/store and app/runtime, so a new one is covered too."""
    names = []
    for package in ("workflow", "store", "runtime"):
        for path in sorted((REPO / "app" / package).rglob("*.py")):
            relative = path.relative_to(REPO).with_suffix("")
            if "migrations" in relative.parts:
                continue  # Alembic scripts run only inside a migration
            names.append(".".join(relative.parts).removesuffix(".__init__"))
    loaded = modules_loaded_by(*names)
    assert [m for m in loaded if m.startswith(QT_PREFIXES)] == []
