"""Remake every screenshot in docs/screenshots/, one script after another (each in its own process).

    QT_QPA_PLATFORM=offscreen CLINICFLOW_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \
        PYTHONPATH=$PWD python docs/screenshots/take_all.py [OUT_DIR]

Without CLINICFLOW_TEST_PG_URL the Team picture (team-settings.png) is left as it is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "take_screenshots.py",
    "take_operations_screenshots.py",
    "take_contact_screenshot.py",
    "take_limit_screenshots.py",
    "take_run_viewer_screenshots.py",
    "take_settings_screenshots.py",
    "take_testrun_rules_screenshots.py",
)


def main() -> int:
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    failed = []
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script), *sys.argv[1:]], env=env).returncode:
            failed.append(script)
    if failed:
        print("failed:", ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
