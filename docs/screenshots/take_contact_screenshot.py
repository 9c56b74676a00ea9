"""Take the screenshots of the records view's contact preferences (demo practice, light, en-GB):
a patient's SMS opt-out ticked and Stop all automations asked for, at 1366x768.

    QT_QPA_PLATFORM=offscreen PYTHONPATH=$PWD python docs/screenshots/take_contact_screenshot.py [OUT_DIR]
"""

from __future__ import annotations

import sys

import shots
from shots import save, settle


def main() -> int:
    app = shots.start()
    window = shots.failures_window(app)
    window.show_records()
    settle(app, 1.0)
    view = window.records
    view.refresh()
    settle(app, 1.5)
    view.table.selectRow(2)
    view.table.setCurrentIndex(view.model.index(2, 0))
    settle(app, 1.0)
    panel = view.contact_panel
    panel.boxes["sms_opt_out"].click()
    settle(app, 1.0)
    panel.ask_to_stop()
    settle(app, 1.0)
    save(window, "contact-preferences.png")
    if panel.confirm is not None:
        save(panel.confirm, "contact-confirm.png")
    shots.close(app, window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
