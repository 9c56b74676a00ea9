"""Cold start A/B used for notes/coldstart.md: main's code, this branch's code and the bare-Qt window,
alternated, each to the first paint of its window; prints wall ms and CPU ms (process_time in the child).

    python notes/coldstart_ab.py MAIN_REPO BRANCH_REPO sqlite:////tmp/cold.sqlite3 [bench|real] [N]

`bench` runs bench/gui_views.py's own _COLD_APP script; `real` runs `python -m app --db URL` (the
CLI, run_app, the start-up check, the runtime on) and quits at the first paint. The database should
hold the demo practice (bench/gui_views.py bench_cold_start makes one the same way).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAINTED = 'print("painted", flush=True)'
TIMED = 'print("painted", time.process_time(), flush=True)'
REAL = '''
import sys, time
import app.cli
import app.cli.gui as gui
_open = gui.open_app
def open_app(args, ctx):
    import app.views.app  # PySide6 now, as run_app does
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication
    from app.views import startup
    real = startup.open_main_window
    class Painted(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint:
                print("painted", time.process_time(), flush=True); QApplication.instance().exit(0)
            return False
    def wrapped(*a, **k):
        window = real(*a, **k)
        if window is not None:
            window._painted = Painted(); window.installEventFilter(window._painted)
        return window
    startup.open_main_window = wrapped
    return _open(args, ctx)
gui.open_app = open_app
sys.exit(app.cli.main(sys.argv[1:]))
'''


def scripts(repo: str) -> tuple[str, str]:
    src = (Path(repo) / "bench" / "gui_views.py").read_text()
    app = src.split('_COLD_APP = """')[1].split('"""')[0].replace(PAINTED, TIMED)
    base = "import time\n" + src.split('_COLD_BASE = """')[1].split('"""')[0].replace(PAINTED, TIMED)
    return app, base


def spawn(code: str, repo: str, config: str, *args: str) -> tuple[float, float]:
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": repo, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": config}
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            cwd=repo, env=env, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("painted"):
            wall, cpu = time.perf_counter() - start, float(line.split()[1])
            break
    else:
        raise RuntimeError("the window never painted")
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    return wall * 1000, cpu * 1000


def main() -> None:
    main_repo, branch_repo, url = sys.argv[1:4]
    mode = sys.argv[4] if len(sys.argv) > 4 else "bench"
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    repos = {"main": main_repo, "branch": branch_repo}
    codes = {k: (scripts(r)[0] if mode == "bench" else REAL) for k, r in repos.items()}
    base = scripts(branch_repo)[1]
    args = (url,) if mode == "bench" else ("--db", url)
    results: dict[str, list[tuple[float, float]]] = {"main": [], "branch": [], "bare Qt": []}
    with tempfile.TemporaryDirectory() as config:  # never the user's window layout
        for key, repo in repos.items():
            spawn(codes[key], repo, config, *args)  # warm the disk cache
        spawn(base, branch_repo, config)
        for _ in range(n):
            for key, repo in repos.items():
                results[key].append(spawn(codes[key], repo, config, *args))
            results["bare Qt"].append(spawn(base, branch_repo, config))

    def line(values: list[float]) -> str:
        return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"

    for key, runs in results.items():
        print(f"{mode} {key:8} wall {line([r[0] for r in runs])} cpu {line([r[1] for r in runs])}")


if __name__ == "__main__":
    main()
