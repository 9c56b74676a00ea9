"""Take the pictures of the editor in a practice manager's words: the Schedule trigger's picker,
a Condition's rules (fields in words, a date picker) and a Send email node's properties, light
and dark, at 1280x800 and 1366x768, on the demo practice.

    QT_QPA_PLATFORM=offscreen python docs/screenshots/take_editor_words_screenshots.py [OUT_DIR]
"""

from __future__ import annotations

import sys

import shots
from shots import save, settle


def main() -> int:
    app = shots.start()
    from app.api import workflows as workflows_api
    from app.views.theme import apply_theme

    window = shots.demo_window()
    window.show()
    ids = {w.name: w.id for w in workflows_api.list_workflows(window.db)}
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        for width, height in ((1280, 800), (1366, 768)):
            size = f"{theme}-{width}x{height}"
            window.resize(width, height)
            window.set_workspace("build")
            settle(app)
            window.apply_default_dock_widths()
            settle(app)

            page = window.open_workflow(ids["Recall reminder"])
            page.show_editor()
            settle(app)
            editor = page.editor
            editor.fit_to_view()
            editor.select_node("start")
            settle(app)
            save(window, f"schedule-picker-{size}.png")

            page = window.open_workflow(ids["New patient welcome"])
            page.show_editor()
            settle(app)
            editor = page.editor
            editor.fit_to_view()
            editor.select_node("has_email")
            settle(app)
            rules = editor.properties.editors["rules"]
            if rules.table.rowCount() == 1:   # a second rule on a date field, as a manager adds one
                rules.add_rule()
                field_box, op_box, value = rules._row_widgets(1)
                field_box.setCurrentIndex(field_box.findData("patient.created_at"))
                op_box.setCurrentIndex(op_box.findData("after"))
                value.date_edit.setDate(value.date_edit.date().currentDate().addDays(-30))
                settle(app)
                editor.select_node("welcome")
                settle(app)
                editor.select_node("has_email")
                settle(app)
            save(window, f"condition-rules-{size}.png")

            editor.select_node("welcome")
            settle(app)
            save(window, f"email-properties-{size}.png")
            if size == "light-1366x768":
                editor.properties.editors["advanced"].click()   # the node's reference name, unfolded
                settle(app)
                save(window, f"email-properties-advanced-{size}.png")
                page = window.open_workflow(ids["Recall reminder"])
                page.show_editor()
                page.editor.select_node("start")
                settle(app)
                picker = page.editor.properties.editors["cron"]
                picker.kind_box.setCurrentIndex(picker.kind_box.findData("weekly"))
                picker.day_box.setCurrentIndex(picker.day_box.findData("mon"))
                settle(app)
                save(window, f"schedule-picker-weekly-{size}.png")
    apply_theme(app, "system")
    shots.close(app, window)
    return 0


if __name__ == "__main__":
    sys.exit(main())
