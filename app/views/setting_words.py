"""The practice settings (the registry's keys, `clinicflow settings set`) in the Settings form's words.

Its own module so that History can name a changed setting without importing the Settings
dialog (and the start-up and sign-in code it needs) before the first window paints.
"""

from __future__ import annotations

from typing import Final

# Each field's help is the registry's own description, its range the registry's bounds.
FIELD_LABELS: Final = {
    "time_zone": "Time zone", "country": "Country of phone numbers", "quiet_hours": "Quiet hours",
    "closed_dates": "Closed dates", "alerts.email": "Alert emails to", "alerts.interval_minutes": "Alert emails",
    "auto_disable_after_failures": "Turn a workflow off", "retention_days": "Run details",
    "max_chain_depth": "Max chain depth", "max_messages_per_day": "Max messages per day",
    "max_runtime_seconds": "Max runtime of a run", "max_actions_per_run": "Max actions per run",
    "max_nodes": "Max nodes per workflow",
}
