"""Running slow calls (database saves, pre-flight checks, test runs) off the GUI thread.

`run_in_background` runs a function on a thread pool and reports back through queued
signals, so results are always handled on the GUI thread.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

# Calls still running or whose result is not yet delivered; kept alive until then.
_ACTIVE: set[BackgroundCall] = set()


class _Signals(QObject):
    finished = Signal(object)
    failed = Signal(str)


class BackgroundCall(QRunnable):
    """One function call on a pool thread."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self._fn = fn
        self.signals = _Signals()

    def run(self) -> None:
        try:
            result = self._fn()
        except Exception as exc:  # reported to the person, never swallowed
            text = str(exc).strip()
            traceback.print_exc()
            self.signals.failed.emit(text.splitlines()[0] if text else type(exc).__name__)
            return
        self.signals.finished.emit(result)


class _Relay(QObject):
    """Lives in the GUI thread and hands the result to the callbacks there."""

    def __init__(self, call: BackgroundCall, on_done: Callable[[Any], None],
                 on_error: Callable[[str], None], receiver: QObject) -> None:
        super().__init__(receiver)
        self._call, self._on_done, self._on_error = call, on_done, on_error

    @Slot(object)
    def done(self, result: Any) -> None:
        _ACTIVE.discard(self._call)
        self.deleteLater()
        self._on_done(result)

    @Slot(str)
    def error(self, message: str) -> None:
        _ACTIVE.discard(self._call)
        self.deleteLater()
        self._on_error(message)


def run_in_background(pool: QThreadPool, fn: Callable[[], Any], on_done: Callable[[Any], None],
                      on_error: Callable[[str], None], *, receiver: QObject) -> BackgroundCall:
    """Start `fn` on `pool`; `on_done(result)` or `on_error(message)` run in the GUI thread.

    If `receiver` is destroyed first, the result is dropped.
    """
    call = BackgroundCall(fn)
    relay = _Relay(call, on_done, on_error, receiver)
    call.signals.finished.connect(relay.done)
    call.signals.failed.connect(relay.error)
    relay.destroyed.connect(lambda *_: _ACTIVE.discard(call))
    _ACTIVE.add(call)
    pool.start(call)
    return call
