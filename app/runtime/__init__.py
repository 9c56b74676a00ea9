"""The durable runtime: claims runs, executes steps, triggers, waits, retries, limits. No Qt."""

from .events import RuntimeEvent
from .runtime import Runtime

__all__ = ["Runtime", "RuntimeEvent"]
