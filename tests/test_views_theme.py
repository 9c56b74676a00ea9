"""Light / dark / system theme as a setting, readable in all three (issue 11): chosen in
Settings → Appearance, applied at once and kept for the next start (pytest-qt, offscreen)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from app.views.theme import apply_theme, dark_wanted


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two colours."""
    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def readable(palette: QPalette) -> None:
    role = QPalette.ColorRole
    assert contrast(palette.color(role.Text), palette.color(role.Base)) >= 4.5
    assert contrast(palette.color(role.WindowText), palette.color(role.Window)) >= 4.5
    assert contrast(palette.color(role.ButtonText), palette.color(role.Button)) >= 4.5
    # An unchecked box (Base on Window) and the toolbar's overflow arrows (Dark on Window) can be seen.
    assert contrast(palette.color(role.Base), palette.color(role.Window)) >= 1.1
    assert contrast(palette.color(role.Dark), palette.color(role.Window)) >= 1.5


@pytest.fixture
def settings_dialog(qtbot: Any, sqlite_url: str) -> Iterator[Any]:
    from app.store import open_database
    from app.views.main_window import app_settings
    from app.views.settings_dialog import SettingsDialog

    app_settings().clear()
    db = open_database(sqlite_url)
    dialog = SettingsDialog(db, app_settings(), "Ann Tester")
    qtbot.addWidget(dialog)
    dialog.show()
    yield dialog
    dialog.close()
    db.dispose()
    apply_theme(QApplication.instance(), "system")  # type: ignore[arg-type]


@pytest.mark.parametrize("choice", ["dark", "light", "system"])
def test_the_theme_chosen_in_settings_is_applied_readable_and_kept(qtbot: Any, settings_dialog: Any,
                                                                   choice: str) -> None:
    import shiboken6

    dialog = settings_dialog
    dialog.theme.setCurrentIndex(dialog.theme.findData(choice))
    dialog.buttons.button(dialog.buttons.StandardButton.Save).click()
    qtbot.waitUntil(lambda: not shiboken6.isValid(dialog) or not dialog.isVisible(), timeout=5000)
    palette = QApplication.palette()
    window = palette.color(QPalette.ColorRole.Window)
    assert (window.lightness() < 100) == dark_wanted(choice)
    assert (window.lightness() < 100) == (choice == "dark") or choice == "system"
    readable(palette)
    from app.views.main_window import app_settings

    assert app_settings().value("appearance/theme") == choice
