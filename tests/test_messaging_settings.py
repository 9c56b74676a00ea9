"""Practice settings for the messaging rules (`settings show/set`) and the Publish
pre-flight's reach: consent and quiet hours."""

from __future__ import annotations

import json
from typing import Any

from runtime_workflows import add_patient, chain, make_workflow, node

from app.api.settings import set_practice_setting
from app.runtime.integrations.preflight import preflight
from app.store.workflows import get_version


def test_settings_show_lists_every_key_with_defaults(cli) -> None:
    shown = json.loads(cli("settings", "show", "--json").out)
    assert shown["quiet_hours"] == "off"  # the test suite's default (CLINICFLOW_DEFAULT_QUIET_HOURS)
    assert (shown["max_chain_depth"], shown["auto_disable_after_failures"], shown["max_messages_per_day"]) == (3, 10, 500)
    assert shown["closed_dates"] == [] and shown["country"] == "GB"
    assert {"time_zone", "max_runtime_seconds", "max_actions_per_run", "max_nodes"} <= set(shown)


def test_settings_set_stores_a_checked_value_and_refuses_a_bad_one_naming_it(cli, monkeypatch) -> None:
    monkeypatch.delenv("CLINICFLOW_DEFAULT_QUIET_HOURS")
    assert json.loads(cli("settings", "show", "--json").out)["quiet_hours"] == "Mon-Fri 08:00-20:00; Sat 09:00-13:00"
    done = cli("settings", "set", "quiet_hours", "mon-fri 8:30-18:00; sat 9:00-12:00")
    assert done.code == 0 and done.err == "quiet_hours: Mon-Fri 08:30-18:00; Sat 09:00-12:00\n"
    assert cli("settings", "set", "closed_dates", "2026-12-26, 2026-12-25").code == 0
    assert cli("settings", "set", "time_zone", "Europe/London").code == 0
    assert cli("settings", "set", "max_actions_per_run", "40").code == 0
    shown = json.loads(cli("settings", "show", "--json").out)
    assert shown["closed_dates"] == ["2026-12-25", "2026-12-26"] and shown["time_zone"] == "Europe/London"
    assert shown["max_actions_per_run"] == 40
    for key, value, message in [
        ("quiet_hours", "Mon-Fri 8-20", "setting 'quiet_hours': '8' in 'Mon-Fri 8-20' is not a time (use HH:MM, e.g. 08:00)"),
        ("time_zone", "Mars/Olympus", "setting 'time_zone': 'Mars/Olympus' is not a time zone (use a name such as Europe/London)"),
        ("closed_dates", "25/12/2026", "setting 'closed_dates': '25/12/2026' is not a date (use YYYY-MM-DD, comma-separated)"),
        ("max_chain_depth", "0", "setting 'max_chain_depth': 0 is not between 1 and 100"),
        ("shoe_size", "9", "unknown setting 'shoe_size'"),
    ]:
        refused = cli("settings", "set", key, value)
        assert refused.code == 1, key
        assert refused.err.startswith(f"clinicflow: {message}"), refused.err
    assert json.loads(cli("settings", "show", "--json").out)["max_chain_depth"] == 3


def workflow_definition(db: Any, workflow_id: int) -> Any:
    with db.read() as conn:
        return get_version(conn, workflow_id, 1)


def test_preflight_states_how_many_get_no_message_because_of_consent(db) -> None:
    service = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("text", "action.send_sms", body="Hi"),
    ], chain("start", "text"))
    marketing = make_workflow(db, [
        node("start", "trigger.manual", record_type="patient"),
        node("mail", "action.send_email", subject="Offer", body="Hi", purpose="marketing"),
    ], chain("start", "mail"))
    add_patient(db, mobile="07700 900123", email="a@example.org", sms_opt_out="true", marketing_consent="true")
    add_patient(db, mobile="07700 900124", email="b@example.org", marketing_consent="true")
    add_patient(db, mobile="07700 900125", email="c@example.org")
    with db.read() as conn:
        service_warnings = preflight(conn, workflow_definition(db, service))
        marketing_warnings = preflight(conn, workflow_definition(db, marketing))
    assert "1 of 3 patients would get no SMS: opted out (the step is skipped)" in service_warnings
    assert ("1 of 3 patients would get no marketing email: opted out or no marketing consent (the step is skipped)"
            in marketing_warnings)


def test_preflight_counts_scheduled_runs_in_quiet_hours(db, monkeypatch) -> None:
    monkeypatch.delenv("CLINICFLOW_DEFAULT_QUIET_HOURS")
    set_practice_setting(db, "time_zone", "UTC", "maria")
    hourly = make_workflow(db, [
        node("start", "trigger.schedule", every_seconds=3600),
        node("mail", "action.send_email", to="desk@clinic.example", subject="Report", body="Hi"),
    ], chain("start", "mail"))
    with db.read() as conn:
        warnings = preflight(conn, workflow_definition(db, hourly))
    # A week of hourly ticks: Mon-Fri 12 h and Sat 4 h of 168 are open, so 104 or so are not.
    [reach] = [w for w in warnings if "quiet hours" in w]
    quiet, total = int(reach.split()[0]), int(reach.split()[4])
    assert total in (167, 168) and 100 <= quiet <= 106
    set_practice_setting(db, "quiet_hours", "off", "maria")
    with db.read() as conn:
        assert not [w for w in preflight(conn, workflow_definition(db, hourly)) if "quiet hours" in w]
