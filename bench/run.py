"""Runtime benchmarks: `python bench/run.py` prints one JSON object per line (DESIGN section 12).

Each line is {"bench", "value", "unit", "baseline", "ratio"} plus "value_min"/"value_max" and
"baseline_min"/"baseline_max" (the range over the repetitions), "reps", "n" and "target".
Value and baseline are medians of --reps repetitions (default 5) measured alternately in this
one process run (A, B, A, B, ...), each repetition in a fresh process and a fresh database.

The peer (`--only peer`, bench/peer.py): Clinicflow and DBOS Transact (the `bench` extra) on the
same job, a workflow of five steps that each write (task, note, record change, task, note), one
patient per run, runs started one by one (`start_run` / `DBOS.start_workflow`):
- start -> first step latency p50 and p99 (runs started 20 ms apart) against DBOS plain steps;
- started -> completed steps/s against DBOS transactional steps (exactly once, like ours);
- execute-only steps/s (runs created in bulk, then executed) against the naive durable loop (one
  transaction per step with the same write, step row and cursor; same database settings), and
  started -> completed / execute-only (starts must not halve throughput).
- waits (`--only waits`): --waits runs all due at one instant (seconds until all resumed and
  completed, against executing as many ready one-step runs) and due over waits/167 s (the issue's
  10,000 over 60 s rate; p99 lateness against 1,000 ms). Scaled down from 10,000 (--waits 2000)
  and repeated --wait-reps times (default 3) so the whole file runs in minutes.
The older figures (engine throughput against a commit-per-step loop without effects, two runtimes
against one, memory) stay available by name (--only throughput,parallel,memory). PostgreSQL
figures run when CLINICFLOW_BENCH_PG_URL or CLINICFLOW_TEST_PG_URL is set.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine as bench


def emit(name: str, value: float, unit: str, baseline: float, ratio: float, **extra: Any) -> None:
    print(json.dumps({"bench": name, "value": round(value, 3), "unit": unit, "baseline": round(baseline, 3),
                      "ratio": round(ratio, 3), **extra}), flush=True)


PEER = Path(__file__).resolve().parent / "peer.py"


def measure(system: str, figure: str, url: str, n: int) -> dict[str, Any]:
    """One repetition in a fresh process (each system gets a cold interpreter and its own registry)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run([sys.executable, str(PEER), system, figure, url, str(n)], capture_output=True, text=True,
                          env=env, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{system} {figure} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(lines[-1])


def spread(values: list[float], prefix: str) -> dict[str, float]:
    return {f"{prefix}_min": round(min(values), 3), f"{prefix}_max": round(max(values), 3)}


def alternate(reps: int, a: Any, b: Any) -> tuple[list[Any], list[Any]]:
    """A, B, A, B, ...: both sides see the same machine load, repetition by repetition."""
    first, second = [], []
    for _ in range(reps):
        first.append(a())
        second.append(b())
    return first, second


def peer_benchmarks(label: str, fresh: Any, n_latency: int, n_runs: int, reps: int) -> None:
    """Clinicflow against DBOS (and the naive loop) on one database kind; `fresh()` gives a new URL."""
    def run(system: str, figure: str, n: int) -> dict[str, Any]:
        with fresh() as url:
            return measure(system, figure, url, n)

    ours, theirs = alternate(reps, lambda: run("clinicflow", "latency", n_latency),
                             lambda: run("dbos", "latency", n_latency))
    for p in (50, 99):
        a = [bench.percentile(r["samples"], p) for r in ours]
        b = [bench.percentile(r["samples"], p) for r in theirs]
        va, vb = statistics.median(a), statistics.median(b)
        emit(f"start_to_first_step_p{p}_{label}", va, "ms", vb, va / vb, baseline_is="DBOS plain steps",
             **spread(a, "value"), **spread(b, "baseline"), reps=reps, n=n_latency, target="ratio <= 1.0")
    ours, theirs = alternate(reps, lambda: run("clinicflow", "throughput", n_runs),
                             lambda: run("dbos", "throughput", n_runs))
    a, b = [r["value"] for r in ours], [r["value"] for r in theirs]
    started = statistics.median(a)
    emit(f"started_to_completed_{label}", started, "steps/s", statistics.median(b), started / statistics.median(b),
         baseline_is="DBOS transactional steps", **spread(a, "value"), **spread(b, "baseline"), reps=reps,
         n=n_runs * 5, target=">= 20 ratio" if label == "sqlite" else ">= 5 ratio")
    ours, naive = alternate(reps, lambda: run("clinicflow", "execute", n_runs), lambda: run("naive", "execute", n_runs))
    c, d = [r["value"] for r in ours], [r["value"] for r in naive]
    execute = statistics.median(c)
    emit(f"execute_only_{label}", execute, "steps/s", statistics.median(d), execute / statistics.median(d),
         baseline_is="naive loop, one transaction per step, same writes", **spread(c, "value"),
         **spread(d, "baseline"), reps=reps, n=n_runs * 5)
    emit(f"started_vs_execute_only_{label}", started, "steps/s", execute, started / execute,
         baseline_is="Clinicflow execute-only", **spread(a, "value"), **spread(c, "baseline"), reps=reps,
         n=n_runs * 5, target=">= 0.5 ratio")


def wait_benchmarks(label: str, fresh: Any, n: int, reps: int) -> None:
    def run(system: str, figure: str) -> dict[str, Any]:
        with fresh() as url:
            return measure(system, figure, url, n)

    instant, one_step = alternate(reps, lambda: run("clinicflow", "waits_instant"),
                                  lambda: run("clinicflow", "one_step"))
    a, b = [r["value"] for r in instant], [r["value"] for r in one_step]
    va, vb = statistics.median(a), statistics.median(b)
    emit(f"waits_due_at_once_{label}", va, "s", vb, va / vb, baseline_is=f"executing {n} ready one-step runs",
         **spread(a, "value"), **spread(b, "baseline"), reps=reps, n=n, target="ratio <= 1.2")
    late = [bench.percentile(run("clinicflow", "waits_spread")["samples"], 99) for _ in range(reps)]
    value = statistics.median(late)
    emit(f"waits_spread_lateness_p99_{label}", value, "ms", 1000.0, value / 1000.0, **spread(late, "value"),
         reps=reps, n=n, over_seconds=round(n / 167, 1), target="p99 <= 1000 ms (ratio <= 1.0)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 2000)),
                        help="ready runs of the 5-node workflow for throughput (default 2000)")
    parser.add_argument("--baseline-steps", type=int, default=int(os.environ.get("BENCH_BASELINE_STEPS", 1000)))
    parser.add_argument("--latency-samples", type=int, default=int(os.environ.get("BENCH_LATENCY", 200)))
    parser.add_argument("--waits", type=int, default=int(os.environ.get("BENCH_WAITS", 2000)))
    parser.add_argument("--memory-runs", type=int, default=int(os.environ.get("BENCH_MEMORY_RUNS", 20000)))
    parser.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", 5)))
    parser.add_argument("--peer-runs", type=int, default=int(os.environ.get("BENCH_PEER_RUNS", 300)),
                        help="runs per repetition for the started->completed and execute-only figures")
    parser.add_argument("--peer-latency", type=int, default=int(os.environ.get("BENCH_PEER_LATENCY", 100)),
                        help="runs per repetition for the latency figures (started 20 ms apart)")
    parser.add_argument("--wait-reps", type=int, default=int(os.environ.get("BENCH_WAIT_REPS", 3)))
    parser.add_argument("--only", help="comma-separated bench names to run (default: peer,waits,editor,views; "
                        "also throughput, parallel, latency, memory)")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else {"peer", "waits", "editor", "views"}
    pg = os.environ.get("CLINICFLOW_BENCH_PG_URL") or os.environ.get("CLINICFLOW_TEST_PG_URL")
    tmp = Path(tempfile.mkdtemp(prefix="clinicflow-bench-"))

    def wanted(name: str) -> bool:
        return name in only

    kinds: list[tuple[str, Any]] = [("sqlite", lambda: bench.sqlite_database(tmp))]
    if pg:
        kinds.append(("postgresql", lambda: bench.pg_database(pg)))
    if wanted("peer"):
        for label, fresh in kinds:
            peer_benchmarks(label, fresh, args.peer_latency, args.peer_runs, args.reps)
    if wanted("waits"):
        for label, fresh in kinds:
            wait_benchmarks(label, fresh, args.waits, args.wait_reps)
    if wanted("throughput"):
        with bench.sqlite_database(tmp) as url:
            r = bench.engine_throughput(url, args.runs, args.baseline_steps)
        emit("engine_throughput_sqlite", r["value"], "steps/s", r["baseline"], r["value"] / r["baseline"],
             n=args.runs * 5, target=">= 1.0 ratio")
        if pg:
            with bench.pg_database(pg) as url:
                r = bench.engine_throughput(url, args.runs, args.baseline_steps)
            emit("engine_throughput_postgresql", r["value"], "steps/s", r["baseline"], r["value"] / r["baseline"],
                 n=args.runs * 5, target=">= 1.0 ratio")
    if wanted("parallel") and pg:
        r = bench.parallel_runtimes(pg, args.runs)
        emit("two_runtimes_vs_one_postgresql", r["value"], "steps/s", r["baseline"], r["value"] / r["baseline"],
             n=args.runs * 5, target=">= 1.6 ratio")
    if wanted("latency"):
        targets = [("in_process_sqlite", "sqlite", bench.latency_in_process, 50.0),
                   ("cross_process_sqlite", "sqlite", bench.latency_cross_process, 250.0)]
        if pg:
            targets += [("in_process_postgresql", "pg", bench.latency_in_process, 50.0),
                        ("cross_process_postgresql", "pg", bench.latency_cross_process, 100.0)]
        for name, kind, measure, target in targets:
            context = bench.sqlite_database(tmp) if kind == "sqlite" else bench.pg_database(pg)  # type: ignore[arg-type]
            with context as url:
                values = measure(url, args.latency_samples)
            p50, p99 = bench.percentile(values, 50), bench.percentile(values, 99)
            emit(f"trigger_latency_p50_{name}", p50, "ms", target, target / max(p50, 1e-6), n=len(values))
            emit(f"trigger_latency_p99_{name}", p99, "ms", target, target / max(p99, 1e-6), n=len(values),
                 target=f"p99 <= {target:g} ms")
    if wanted("memory"):
        with bench.sqlite_database(tmp) as url:
            before, after = bench.memory_growth(url, args.memory_runs)
        growth = after - before
        emit("runtime_memory_growth_sqlite", growth, "MB", 20.0, 20.0 / max(growth, 1e-6), n=args.memory_runs,
             rss_before_mb=round(before, 1), rss_after_mb=round(after, 1), target="<= 20 MB over 100,000 runs")
    for leftover in tmp.iterdir():
        leftover.unlink()
    tmp.rmdir()
    # The desktop benchmarks run in their own processes: each measures a cold Qt start-up.
    for name, script in (("editor", "gui_editor.py"), ("views", "gui_views.py")):
        if wanted(name):
            run_script(Path(__file__).resolve().parent / script)
    return 0


def run_script(script: Path) -> None:
    """Run another benchmark script and pass its JSON lines through."""
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env)
    sys.stdout.write(proc.stdout)
    sys.stdout.flush()
    if proc.returncode != 0:
        print(json.dumps({"bench": script.stem, "error": proc.stderr.strip().splitlines()[-1:]}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
