"""Fault injection for crash tests: does nothing unless `CLINICFLOW_FAULT` names this point.

`CLINICFLOW_FAULT=crash_after_effect:<node_id>` kills the process after a step's effect on
the database and before its commit; `crash_after_send:<node_id>` after a message was
handed over and before its outcome is committed.
"""

from __future__ import annotations

import os
import signal

ENV_FAULT = "CLINICFLOW_FAULT"


def fault_point(name: str, node_id: str) -> None:
    spec = os.environ.get(ENV_FAULT)
    if spec and spec == f"{name}:{node_id}":
        os.kill(os.getpid(), signal.SIGKILL)
