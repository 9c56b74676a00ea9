"""The Monitor workspace with its Records panel in front, light and dark, at 1280x800 and 1366x768:
every column of the patients table in view, none scrolled to (issue 11).

    QT_QPA_PLATFORM=offscreen python docs/screenshots/take_layout_screenshots.py [OUT_DIR]
"""

from __future__ import annotations

import sys

import shots
from shots import save, settle


def main() -> int:
    app = shots.start()
    from app.views.theme import apply_theme

    window = shots.demo_window()
    window.show()
    shots.welcome_runs(window.db)
    settle(app, 1.0)
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        for width, height in ((1280, 800), (1366, 768)):
            window.resize(width, height)
            window.set_workspace("monitor")
            window.show_all_runs()
            settle(app)
            window.apply_default_dock_widths()
            window.show_records()
            settle(app, 1.0)
            save(window, f"monitor-records-{theme}-{width}x{height}.png")
    apply_theme(app, "system")
    shots.close(app, window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
