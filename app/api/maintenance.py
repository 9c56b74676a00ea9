"""Retention now (`maintenance prune`, the Settings' "Apply now"): see `app.runtime.retention`."""

from __future__ import annotations

from app.runtime.retention import PRUNE_BATCH_RUNS, PruneResult, prune

__all__ = ["PRUNE_BATCH_RUNS", "PruneResult", "prune"]
