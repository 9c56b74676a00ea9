"""Screenshot of the records view's contact preferences (demo practice, light, en-GB):

    QT_QPA_PLATFORM=offscreen PYTHONPATH=$PWD python docs/screenshots/take_contact_screenshot.py docs/screenshots
"""
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path.cwd() / "docs" / "screenshots"))
import take_operations_screenshots as shots
from PySide6.QtCore import QCoreApplication, QLocale
from PySide6.QtWidgets import QApplication
from take_operations_screenshots import demo_with_failures, light, save, settle

QCoreApplication.setOrganizationName("ClinicflowScreenshots")
QLocale.setDefault(QLocale(QLocale.Language.English, QLocale.Country.UnitedKingdom))
app = QApplication.instance() or QApplication([])
light(app)
from app.views import create_main_window  # noqa: E402
from app.views.main_window import app_settings  # noqa: E402

home = Path(tempfile.mkdtemp(prefix="clinicflow-shots-"))
os.environ["XDG_DATA_HOME"] = str(home / "data")
app_settings().clear()
window = create_main_window(f"sqlite:///{home / 'demo.sqlite3'}", start_runtime=False, actor="Ann Baker")
demo_with_failures(window)
window.workflows.reload()
window.resize(1366, 768)
window.show()
settle(app)
window.apply_default_dock_widths()
window.show_all_runs()
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
shots.OUT = Path(sys.argv[1])
save(window, "contact-preferences.png")
if panel.confirm is not None:
    save(panel.confirm, "contact-confirm.png")
