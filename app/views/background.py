"""Long work off the GUI thread: run a function on a pool thread, get its result as a queued signal.

Widgets call `run_in_background(fn, on_done, on_error)`; the callbacks run on the GUI thread
(the receiver object lives there, so Qt queues the signal), and never after the receiver died.
This is the GUI's one way to work off the GUI thread (the editor uses it too); a `pool` with
one thread keeps jobs in order (the editor's draft saves).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEventLoop, QObject, QRunnable, QThreadPool, Signal

from app.api import Refused

log = logging.getLogger("clinicflow.gui")


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self._fn = fn
        self._relay = relay

    def run(self) -> None:
        try:
            result = self._fn()
        except Exception as exc:
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            if not isinstance(exc, Refused):  # a refusal is for the person; anything else also for the log
                log.warning("background job failed: %s", reason(exc), exc_info=exc)
            self._relay.failed.emit(exc)
        else:
            self._relay.done.emit(result)


_live_relays: set[_Relay] = set()


def reason(exc: BaseException) -> str:
    """An error's first line, for a person (never the exception's class name)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else "something went wrong (details are in the log)"


def run_in_background(fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
                      on_error: Callable[[Exception], None] | None = None,
                      *, context: QObject | None = None, pool: QThreadPool | None = None) -> None:
    """Call `fn()` on a pool thread (the global one unless `pool`); `on_done(result)` /
    `on_error(exc)` on the GUI thread.

    With `context`, the callbacks are dropped if that object has been destroyed meanwhile.
    """
    relay = _Relay()
    _live_relays.add(relay)

    def finish() -> None:
        _live_relays.discard(relay)
        relay.deleteLater()

    alive = [True]

    def deliver(callback: Callable[[Any], None] | None, value: Any) -> None:
        finish()
        if callback is not None and alive[0]:
            callback(value)

    if context is not None:
        context.destroyed.connect(lambda *_: alive.__setitem__(0, False))
    relay.done.connect(lambda result: deliver(on_done, result))
    relay.failed.connect(lambda exc: deliver(on_error, exc))
    (pool or QThreadPool.globalInstance()).start(_Job(fn, relay))


def run_and_wait(fn: Callable[[], Any], *, pool: QThreadPool | None = None) -> Any:
    """`fn()` on a pool thread while the GUI thread waits for it in a local event loop (it keeps
    painting; clicks and keys wait), for the few steps that must finish before the next one can
    start: the editor's flush on close (after any pending save, with the editor's save pool),
    Publish, the Enabled switch, reading the workflow an editor opens on. Returns `fn`'s result
    or raises its exception."""
    loop = QEventLoop()
    outcome: list[Any] = []

    def done(result: Any) -> None:
        outcome.append((True, result))
        loop.quit()

    def failed(exc: Exception) -> None:
        outcome.append((False, exc))
        loop.quit()

    run_in_background(fn, done, failed, pool=pool)
    if not outcome:
        loop.exec(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
    ok, value = outcome[0]
    if not ok:
        raise value
    return value
