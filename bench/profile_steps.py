"""Statements and round trips per start and per step, and where the time goes (cProfile).

`python bench/profile_steps.py URL [RUNS]` starts RUNS runs of the five-write workflow with `start_run`
(no runtime running), then executes them with `Runtime.run_once`, counting every statement the
driver receives (an SQLAlchemy `before_cursor_execute` listener, and the statements `app.store.hot`
hands to SQLite's driver itself; with `executemany` one call is one round trip) plus the
transactions (BEGIN/COMMIT), and prints a JSON summary and cProfile's top
functions by cumulative time for each phase.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine as bench
from peer import FIVE_WRITES, WRITE_STEPS
from sqlalchemy import event

from app.runtime import Runtime
from app.runtime.control import start_run
from app.store import hot, open_database


class Counting:
    """Counts statements (by their first words) and commits on one engine."""

    def __init__(self, engine: Any) -> None:
        self.statements: Counter[str] = Counter()
        self.commits = 0
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)
        through_driver = hot.execute

        def counted(conn: Any, statement: Any, params: dict[str, Any]) -> Any:
            if conn.dialect.name == "sqlite" and hot._form(conn, statement, tuple(params)) is not None:
                self._statement(conn, None, str(statement), params, None, False)  # no SQLAlchemy event
            return through_driver(conn, statement, params)

        hot.execute = counted  # type: ignore[assignment]

    def _statement(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                   executemany: bool) -> None:
        words = statement.split()
        head = words[0].upper() if words else ""
        if head in ("INSERT", "UPDATE", "DELETE"):
            kind = " ".join(words[:3])
        elif "FROM" in words:
            kind = f"{head} FROM {words[words.index('FROM') + 1]}"
        else:
            kind = " ".join(words[:2])
        self.statements[kind] += 1

    def _commit(self, conn: Any) -> None:
        self.commits += 1

    def reset(self) -> dict[str, Any]:
        total = sum(self.statements.values())
        result = {"statements": total, "commits": self.commits, "by_kind": dict(self.statements.most_common(12))}
        self.statements.clear()
        self.commits = 0
        return result


def top(profile: cProfile.Profile, count: int = 18) -> str:
    stream = io.StringIO()
    pstats.Stats(profile, stream=stream).sort_stats("cumulative").print_stats(count)
    return stream.getvalue()


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else None
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    folder = Path(tempfile.mkdtemp(prefix="clinicflow-profile-"))
    context = bench.sqlite_database(folder) if url in (None, "sqlite") else bench.pg_database(url)
    with context as real_url:
        db = open_database(real_url)
        workflow_id, refs = bench.setup(db, FIVE_WRITES, patients=runs)
        counting = Counting(db.engine)
        start_run(db, workflow_id, record=refs[0], actor="warm")  # the first start parses the version
        Runtime(db, "warm").run_once()
        counting.reset()
        # Counted without the profiler (it slows the batch down, which cuts batches short), then profiled.
        for i in range(runs):
            start_run(db, workflow_id, record=refs[i], actor="bench")
        starts = counting.reset()
        steps = Runtime(db, "bench").run_once()
        execute = counting.reset()
        profile = cProfile.Profile()
        profile.enable()
        for i in range(runs):
            start_run(db, workflow_id, record=refs[i], actor="bench")
        profile.disable()
        start_top = top(profile)
        profile = cProfile.Profile()
        profile.enable()
        Runtime(db, "bench").run_once()
        profile.disable()
        execute_top = top(profile)
        db.dispose()
    folder.rmdir()
    per_start = {k: round(v / runs, 2) for k, v in starts["by_kind"].items()}
    per_step = {k: round(v / (runs * WRITE_STEPS), 2) for k, v in execute["by_kind"].items()}
    print(json.dumps({"database": "postgresql" if url not in (None, "sqlite") else "sqlite", "runs": runs,
                      "statements_per_start": round(starts["statements"] / runs, 2),
                      "commits_per_start": round(starts["commits"] / runs, 2), "start_by_kind": per_start,
                      "steps_executed": steps,
                      "statements_per_write_step": round(execute["statements"] / (runs * WRITE_STEPS), 2),
                      "statements_per_run": round(execute["statements"] / runs, 2),
                      "commits_per_run": round(execute["commits"] / runs, 3), "execute_by_kind": per_step}, indent=1))
    print("--- start_run, cumulative ---")
    print(start_top)
    print("--- executing, cumulative ---")
    print(execute_top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
