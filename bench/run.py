"""Runtime benchmarks: `python bench/run.py` prints one JSON object per line (DESIGN section 12).

Each line is {"bench", "value", "unit", "baseline", "ratio"} plus "n" (the sample size used
here) and "target". Throughput baselines are measured in the same process run: a plain
loop of one-step transactions (INSERT a step row + UPDATE a run row + COMMIT) with the same
driver and durability settings on the same database; "two runtimes" compares two runtime
processes with one. For latencies, waits and memory the baseline is the issue's target and
ratio = target / value (>= 1 means the target is met).

- throughput: --runs ready runs of a 5-node workflow (manual, condition, create task,
  update record, add note), executed by one runtime.
- latency: trigger (run created) to its first step started, runs started 20 ms apart,
  with the runtime in this process and in another process (`clinicflow runtime`).
- waits: --waits runs waiting until times spread over 5 s; lateness = resumed - due.
- memory: resident memory growth of a runtime over --memory-runs runs of the 5-node
  workflow after a warm-up of 2,000.
PostgreSQL benchmarks run when CLINICFLOW_BENCH_PG_URL or CLINICFLOW_TEST_PG_URL is set.
Sizes are scaled down from the issue's (100,000 runs for memory) so a run takes minutes;
pass larger numbers to measure at full size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine as bench  # noqa: E402


def emit(name: str, value: float, unit: str, baseline: float, ratio: float, **extra: Any) -> None:
    print(json.dumps({"bench": name, "value": round(value, 3), "unit": unit, "baseline": round(baseline, 3),
                      "ratio": round(ratio, 3), **extra}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 2000)),
                        help="ready runs of the 5-node workflow for throughput (default 2000)")
    parser.add_argument("--baseline-steps", type=int, default=int(os.environ.get("BENCH_BASELINE_STEPS", 1000)))
    parser.add_argument("--latency-samples", type=int, default=int(os.environ.get("BENCH_LATENCY", 200)))
    parser.add_argument("--waits", type=int, default=int(os.environ.get("BENCH_WAITS", 1000)))
    parser.add_argument("--memory-runs", type=int, default=int(os.environ.get("BENCH_MEMORY_RUNS", 20000)))
    parser.add_argument("--only", help="comma-separated bench names to run "
                        "(throughput, parallel, latency, waits, memory, editor, views)")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    pg = os.environ.get("CLINICFLOW_BENCH_PG_URL") or os.environ.get("CLINICFLOW_TEST_PG_URL")
    tmp = Path(tempfile.mkdtemp(prefix="clinicflow-bench-"))

    def wanted(name: str) -> bool:
        return only is None or name in only

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
    if wanted("waits"):
        with bench.sqlite_database(tmp) as url:
            values = bench.wait_lateness(url, args.waits)
        p99 = bench.percentile(values, 99)
        emit("wait_resume_lateness_p99_sqlite", p99, "ms", 100.0, 100.0 / max(p99, 1e-6), n=len(values),
             p50=round(bench.percentile(values, 50), 3), target="p99 <= 100 ms")
    if wanted("memory"):
        with bench.sqlite_database(tmp) as url:
            before, after = bench.memory_growth(url, args.memory_runs)
        growth = after - before
        emit("runtime_memory_growth_sqlite", growth, "MB", 20.0, 20.0 / max(growth, 1e-6), n=args.memory_runs,
             rss_before_mb=round(before, 1), rss_after_mb=round(after, 1), target="<= 20 MB over 100,000 runs")
    tmp.rmdir()
    # The desktop benchmarks run in their own processes: each measures a cold Qt start-up.
    for name, script in (("editor", "gui_editor.py"), ("views", "gui_views.py")):
        if wanted(name):
            run_script(Path(__file__).resolve().parent / script)
    return 0


def run_script(script: Path) -> None:
    """Run another benchmark script and pass its JSON lines through."""
    import subprocess

    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env)
    sys.stdout.write(proc.stdout)
    sys.stdout.flush()
    if proc.returncode != 0:
        print(json.dumps({"bench": script.stem, "error": proc.stderr.strip().splitlines()[-1:]}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
