"""The Schedule trigger's timing in words: a picker writing the `cron` / `every_seconds` the
runtime already understands (DESIGN section 3), and the same timing read back as a sentence.

The runtime reads cron with APScheduler 3, where weekday 0 is Monday; the picker writes
weekday names (`mon-fri`, `mon`), which mean the same whichever convention a reader expects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from PySide6.QtCore import QTime, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from app.workflow.catalog import ScheduleTriggerConfig
from app.workflow.cron import cron_problem

DAYS: Final = (("mon", "Monday"), ("tue", "Tuesday"), ("wed", "Wednesday"), ("thu", "Thursday"),
               ("fri", "Friday"), ("sat", "Saturday"), ("sun", "Sunday"))
WEEKDAYS: Final = frozenset({"mon-fri", "0-4"})
# The picker's choices: (words, kind). "seconds" is offered only for a stored interval that
# is not a whole number of minutes.
KINDS: Final = (("Every day at", "daily"), ("Weekdays (Mon\u2013Fri) at", "weekdays"), ("Every week on", "weekly"),
                ("Every few minutes", "minutes"), ("Every few hours", "hours"), ("Custom (cron)", "cron"))
UNIT_SECONDS: Final = {"minutes": 60, "hours": 3600, "seconds": 1}
MAX_SECONDS: Final = int(next(m.le for m in ScheduleTriggerConfig.model_fields["every_seconds"].metadata
                              if getattr(m, "le", None) is not None))
_NUMBER = re.compile(r"\d{1,2}")


@dataclass(frozen=True)
class Schedule:
    """A timing as the picker shows it."""

    kind: str | None             # one of KINDS' kinds, "seconds", or None (not set)
    hour: int = 9
    minute: int = 0
    day: str = "mon"             # for weekly
    every: int = 1               # for minutes / hours / seconds
    cron: str = ""               # for custom

    def config(self) -> dict[str, Any]:
        """The stored config keys: `cron` or `every_seconds` (the other None)."""
        at = f"{self.minute} {self.hour} * *"
        if self.kind == "daily":
            return {"cron": f"{at} *", "every_seconds": None}
        if self.kind == "weekdays":
            return {"cron": f"{at} mon-fri", "every_seconds": None}
        if self.kind == "weekly":
            return {"cron": f"{at} {self.day}", "every_seconds": None}
        if self.kind in UNIT_SECONDS:
            return {"cron": None, "every_seconds": self.every * UNIT_SECONDS[self.kind]}
        if self.kind == "cron":
            return {"cron": self.cron.strip() or None, "every_seconds": None}
        return {"cron": None, "every_seconds": None}


def read_schedule(config: dict[str, Any]) -> Schedule:
    """The picker's form of a stored timing: a simple one when the cron matches a simple
    pattern, else Custom (cron)."""
    seconds = config.get("every_seconds")
    if seconds:
        for kind in ("hours", "minutes", "seconds"):
            if seconds % UNIT_SECONDS[kind] == 0:
                return Schedule(kind, every=seconds // UNIT_SECONDS[kind])
    cron = config.get("cron")
    if not cron:
        return Schedule(None)
    parts = cron.split()
    if len(parts) == 5 and _NUMBER.fullmatch(parts[0]) and _NUMBER.fullmatch(parts[1]) \
            and parts[2] == parts[3] == "*" and int(parts[0]) < 60 and int(parts[1]) < 24:
        minute, hour, weekday = int(parts[0]), int(parts[1]), parts[4].lower()
        if weekday == "*":
            return Schedule("daily", hour, minute)
        if weekday in WEEKDAYS:
            return Schedule("weekdays", hour, minute)
        names = [name for name, _words in DAYS]
        if weekday in names:
            return Schedule("weekly", hour, minute, day=weekday)
        if weekday.isdigit() and int(weekday) < 7:   # APScheduler: 0 is Monday
            return Schedule("weekly", hour, minute, day=names[int(weekday)])
    return Schedule("cron", cron=cron)


def _every(count: int, one: str, many: str) -> str:
    return f"Every {one}" if count == 1 else f"Every {count} {many}"


def schedule_words(config: dict[str, Any]) -> str:
    """The timing as a sentence: "Every weekday at 09:00", "Every 2 hours"."""
    s = read_schedule(config)
    at = f"{s.hour:02d}:{s.minute:02d}"
    if s.kind == "daily":
        return f"Every day at {at}"
    if s.kind == "weekdays":
        return f"Every weekday at {at}"
    if s.kind == "weekly":
        return f"Every {dict(DAYS)[s.day]} at {at}"
    if s.kind == "hours":
        return _every(s.every, "hour", "hours")
    if s.kind == "minutes":
        return _every(s.every, "minute", "minutes")
    if s.kind == "seconds":
        return _every(s.every, "second", "seconds")
    if s.kind == "cron":
        return f"Custom timetable ({s.cron})"
    return "Timing not set"


class ScheduleEditor(QWidget):
    """Choose when a Schedule trigger fires, in words; emits the config keys it changed."""

    edited = Signal(dict)   # {"cron": str | None, "every_seconds": int | None}

    def __init__(self, config: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("field_schedule")
        shown = read_schedule(config)
        self._last = shown.config()
        self.kind_box = QComboBox(self)
        self.kind_box.setObjectName("schedule_kind")
        if shown.kind is None:
            self.kind_box.addItem("(choose)", None)
        for words, kind in KINDS:
            self.kind_box.addItem(words, kind)
        if shown.kind == "seconds":
            self.kind_box.insertItem(self.kind_box.count() - 1, "Every few seconds", "seconds")
        self.kind_box.setCurrentIndex(max(0, self.kind_box.findData(shown.kind)))
        self.day_box = QComboBox(self)
        self.day_box.setObjectName("schedule_day")
        for value, words in DAYS:
            self.day_box.addItem(words, value)
        self.day_box.setCurrentIndex(max(0, self.day_box.findData(shown.day)))
        self.time_edit = QTimeEdit(QTime(shown.hour, shown.minute), self)
        self.time_edit.setObjectName("schedule_time")
        self.time_edit.setDisplayFormat("HH:mm")
        self.every_spin = QSpinBox(self)
        self.every_spin.setObjectName("schedule_every")
        self.every_spin.setValue(1)
        self.every_spin.setRange(1, MAX_SECONDS)
        self.every_spin.setValue(shown.every)
        self.cron_edit = QLineEdit(shown.cron, self)
        self.cron_edit.setObjectName("schedule_cron")
        self.cron_edit.setPlaceholderText("minute hour day month weekday, e.g. 30 8 * * mon-fri")
        self.words = QLabel(self)
        self.words.setObjectName("schedule_words")
        self.words.setWordWrap(True)
        self.error = QLabel(self)
        self.error.setObjectName("schedule_error")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d13b3b;")
        self.error.hide()
        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.kind_box, 1)
        line.addWidget(self.day_box)
        line.addWidget(self.time_edit)
        line.addWidget(self.every_spin)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(line)
        layout.addWidget(self.cron_edit)
        layout.addWidget(self.words)
        layout.addWidget(self.error)
        self._arrange()
        self.kind_box.currentIndexChanged.connect(lambda _i: self._changed())
        self.day_box.currentIndexChanged.connect(lambda _i: self._changed())
        self.time_edit.editingFinished.connect(self._changed)
        self.every_spin.editingFinished.connect(self._changed)
        self.every_spin.valueChanged.connect(lambda _v: None if self.every_spin.hasFocus() else self._changed())
        self.cron_edit.editingFinished.connect(self._changed)

    def schedule(self) -> Schedule:
        time = self.time_edit.time()
        return Schedule(self.kind_box.currentData(), time.hour(), time.minute(), self.day_box.currentData(),
                        self.every_spin.value(), self.cron_edit.text())

    def _arrange(self) -> None:
        kind = self.kind_box.currentData()
        self.day_box.setVisible(kind == "weekly")
        self.time_edit.setVisible(kind in ("daily", "weekdays", "weekly"))
        self.every_spin.setVisible(kind in UNIT_SECONDS)
        self.every_spin.setSuffix({"minutes": " minutes", "hours": " hours", "seconds": " seconds"}.get(kind, ""))
        if kind in UNIT_SECONDS:
            self.every_spin.setMaximum(MAX_SECONDS // UNIT_SECONDS[kind])
        self.cron_edit.setVisible(kind == "cron")
        self.words.setText(schedule_words(self.schedule().config()))

    def _changed(self) -> None:
        if self.kind_box.currentData() == "cron" and not self.cron_edit.text().strip():
            self.cron_edit.setText(self._last["cron"] or "")   # start from the simple timing shown before
        self._arrange()
        config = self.schedule().config()
        problem = cron_problem(config["cron"]) if config["cron"] else None
        self.error.setText(f"Not applied: {problem}" if problem else "")
        self.error.setVisible(problem is not None)
        if problem is None and config != self._last:
            self._last = config
            self.edited.emit(config)
