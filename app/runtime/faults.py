"""Fault injection for crash tests: does nothing unless `CLINICFLOW_FAULT` names this point.

`CLINICFLOW_FAULT=crash_after_effect:<node_id>` kills the process after a step's effect on
the database and before its commit; `crash_after_send:<node_id>` after a message was
handed over and before its outcome is committed.

`CLINICFLOW_FAULT=<point>:<node_id>:<times>` makes `database_fault` raise a transient
database error (as a dropped connection would) the next `<times>` times the point is
reached: `db_error_before_send` (reading the integration settings, before anything is
sent), `db_error_saving_outcome` (committing a message's outcome after it was sent).

`CLINICFLOW_FAULT=raise_in_step:<node_id>:MemoryError` (or RecursionError, OverflowError,
RuntimeError) makes `raise_fault` raise that exception after the step's effects;
`raise_in_template:<node_id>.<field>:<ExceptionName>` as if rendering that field raised it.
"""

from __future__ import annotations

import os
import signal
import threading

from sqlalchemy.exc import OperationalError

ENV_FAULT = "CLINICFLOW_FAULT"
# The remaining count lives in the variable itself, so each test (and a child process)
# starts from the number it set.
_count_lock = threading.Lock()


def fault_point(name: str, node_id: str) -> None:
    spec = os.environ.get(ENV_FAULT)
    if spec and spec == f"{name}:{node_id}":
        os.kill(os.getpid(), signal.SIGKILL)


def database_fault(name: str, node_id: str) -> None:
    """Raise `OperationalError` here while `CLINICFLOW_FAULT` still counts this point."""
    prefix = f"{name}:{node_id}:"
    with _count_lock:
        spec = os.environ.get(ENV_FAULT)
        if not spec or not spec.startswith(prefix):
            return
        times = int(spec[len(prefix):] or 0)
        if times <= 0:
            return
        os.environ[ENV_FAULT] = f"{prefix}{times - 1}"
    raise OperationalError(f"-- fault injected at {name}:{node_id}", None,
                           ConnectionError("server closed the connection unexpectedly (fault injection)"))


# Exceptions `raise_fault` can raise: the unexpected failures run isolation must contain.
_RAISABLE = {"MemoryError": MemoryError, "RecursionError": RecursionError, "OverflowError": OverflowError,
             "RuntimeError": RuntimeError}


def raise_fault(name: str, node_id: str) -> None:
    """Raise the exception `CLINICFLOW_FAULT=<name>:<node_id>:<ExceptionName>` names, here.

    `raise_in_step` is reached after a step's effects and before it is recorded, so a test
    can check that an unexpected failure fails that run alone and leaves no half-written step."""
    spec = os.environ.get(ENV_FAULT)
    prefix = f"{name}:{node_id}:"
    if spec and spec.startswith(prefix):
        kind = _RAISABLE.get(spec[len(prefix):])
        if kind is not None:
            raise kind(f"fault injected at {name}:{node_id}")
