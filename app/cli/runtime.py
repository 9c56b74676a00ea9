"""`clinicflow runtime [--once] [--name NAME] [--http HOST:PORT]`: the engine, headless."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from app.api import engine

from .common import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, CliContext, add_command


def register(sub: Any) -> None:
    p = add_command(sub, "runtime", "run the engine headless until SIGINT/SIGTERM", _runtime)
    p.add_argument("--once", action="store_true", help="do all due work, then exit")
    p.add_argument("--name", metavar="NAME", help="this runtime's name (default: HOST-PID)")
    p.add_argument("--http", metavar="HOST:PORT", help="also serve webhook triggers on HOST:PORT")


def _runtime(args: argparse.Namespace, ctx: CliContext) -> int:
    http = None
    if args.http:
        http = engine.parse_http(args.http)
        if http is None:
            print(f"clinicflow runtime: --http '{args.http}' is not HOST:PORT (e.g. 127.0.0.1:8080)", file=sys.stderr)
            return EXIT_USAGE
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine.mask_secrets_in_logs()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    runtime = engine.open_runtime(ctx.db, args.name, http=http)
    log = logging.getLogger("clinicflow.runtime")
    if args.once:
        steps = runtime.run_once()
        log.info("runtime --once: %d step(s) executed", steps)
        # A cron job running `runtime --once` also sends the alert digest and prunes old runs
        # when they are due (each at most once per interval/day across runtimes, as when running).
        try:
            runtime.maintenance_once()
        except Exception as exc:  # the runs are done: a digest or prune problem must not hide that
            log.warning("runtime --once: alerts/retention skipped: %s", " ".join(str(exc).split()))
        return EXIT_OK
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("%s received: finishing the current step", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        runtime.start()
    except (OSError, RuntimeError) as exc:
        print(f"clinicflow runtime: cannot serve webhooks on {args.http}: {exc}", file=sys.stderr)
        runtime.stop()
        return EXIT_REFUSED
    while not stop.wait(0.5):
        pass
    runtime.stop()
    return EXIT_OK
