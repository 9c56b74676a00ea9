"""`clinicflow workflow ...` end to end: output, JSON shapes, exit codes, one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import run_clinicflow

# The manual recall reminder of DESIGN section 3 (the demo's own is a daily schedule now).
REMINDER = {
    "format": "clinicflow.workflow/1",
    "name": "Recall reminder",
    "description": "Email patients whose recall is due; call those without email.",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {"record_type": "recall"}, "position": [0, 0]},
        {"id": "has_email", "type": "logic.condition",
         "config": {"match": "all", "rules": [{"field": "patient.email", "op": "is_set"}]}, "position": [250, 0]},
        {"id": "mail", "type": "action.send_email",
         "config": {"subject": "Time for your check-up",
                    "body": "Hi {{ patient.first_name }}, your {{ recall.recall_type }} is due."},
         "position": [500, -100]},
        {"id": "call", "type": "action.create_task",
         "config": {"title": "Call {{ patient.first_name }} {{ patient.last_name }} about recall"},
         "position": [500, 100]},
    ],
    "edges": [
        {"from": "start", "to": "has_email"},
        {"from": "has_email", "port": "true", "to": "mail"},
        {"from": "has_email", "port": "false", "to": "call"},
    ],
}


def write(tmp_path: Path, data: dict[str, Any] | str, name: str = "wf.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def one_line_refusal(result: Any) -> str:
    assert result.code == 1, result
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("clinicflow: ")
    return lines[0].removeprefix("clinicflow: ")


def test_import_prints_the_new_id_and_list_json_has_the_design_shape(cli, tmp_path: Path) -> None:
    result = cli("workflow", "import", write(tmp_path, REMINDER))
    assert (result.code, result.out) == (0, "1\n")
    listed = cli("workflow", "list", "--json")
    assert listed.code == 0
    assert json.loads(listed.out) == [{"id": 1, "name": "Recall reminder", "trigger": "trigger.manual", "enabled": False,
                                       "published_version": None, "has_unpublished_changes": True}]


def test_import_reads_standard_input(cli) -> None:
    result = cli("workflow", "import", "-", stdin=json.dumps(REMINDER))
    assert (result.code, result.out) == (0, "1\n")


def test_publish_enable_disable_and_versions(cli, tmp_path: Path) -> None:
    cli("workflow", "import", write(tmp_path, REMINDER))
    assert cli("workflow", "publish", "1", "--note", "first cut", "--as", "ann").out == "1\n"
    changed = {**REMINDER, "description": "changed"}
    assert cli("workflow", "update", "1", write(tmp_path, changed, "v2.json")).code == 0
    assert cli("workflow", "publish", "1", "--as", "bob").out == "2\n"
    versions = cli("workflow", "versions", "1", "--json")
    shown = json.loads(versions.out)
    assert [(v["number"], v["published_by"], v["note"]) for v in shown] == [(2, "bob", None), (1, "ann", "first cut")]
    assert set(shown[0]) == {"number", "published_at", "published_by", "note"}
    assert shown[0]["published_at"].endswith("+00:00")

    assert cli("workflow", "enable", "1").code == 0
    assert json.loads(cli("workflow", "list", "--json").out)[0]["enabled"] is True
    again = cli("workflow", "enable", "1")
    assert (again.code, again.err) == (0, "workflow 1 was already enabled\n")
    assert cli("workflow", "disable", "1").code == 0
    assert json.loads(cli("workflow", "list", "--json").out)[0]["enabled"] is False


def test_export_gives_the_draft_or_a_numbered_version(cli, tmp_path: Path) -> None:
    cli("workflow", "import", write(tmp_path, REMINDER))
    cli("workflow", "publish", "1")
    cli("workflow", "update", "1", write(tmp_path, {**REMINDER, "name": "Recall reminder v2"}, "v2.json"))
    draft = json.loads(cli("workflow", "export", "1").out)
    live = json.loads(cli("workflow", "export", "1", "--version", "1").out)
    assert draft["name"] == "Recall reminder v2" and live["name"] == "Recall reminder"
    assert live["format"] == "clinicflow.workflow/1"
    assert live["nodes"] == REMINDER["nodes"] and live["edges"] == REMINDER["edges"]
    # an export imports again unchanged
    assert cli("workflow", "import", write(tmp_path, json.dumps(live), "again.json")).out == "2\n"
    assert json.loads(cli("workflow", "export", "2").out) == live


def test_a_draft_with_publish_problems_is_saved_but_cannot_be_published(cli, tmp_path: Path) -> None:
    unfinished = {**REMINDER, "nodes": [*REMINDER["nodes"][:2], {"id": "mail", "type": "action.send_email",
                                                                  "config": {"subject": "Hi"}}, REMINDER["nodes"][3]]}
    assert cli("workflow", "import", write(tmp_path, unfinished)).code == 0
    reason = one_line_refusal(cli("workflow", "publish", "1"))
    assert reason == "Cannot publish: node 'mail', field 'body': is required"
    assert json.loads(cli("workflow", "versions", "1", "--json").out) == []


def test_invalid_file_is_refused_and_nothing_is_stored(cli, tmp_path: Path) -> None:
    bad = {**REMINDER, "nodes": [{**REMINDER["nodes"][0], "config": {"record_type": "invoice"}}, *REMINDER["nodes"][1:]]}
    reason = one_line_refusal(cli("workflow", "import", write(tmp_path, bad)))
    assert reason.startswith("Invalid workflow file: node 'start', field 'config.record_type': must be ")
    assert json.loads(cli("workflow", "list", "--json").out) == []


def test_invalid_update_leaves_the_draft_alone(cli, tmp_path: Path) -> None:
    cli("workflow", "import", write(tmp_path, REMINDER))
    reason = one_line_refusal(cli("workflow", "update", "1", write(tmp_path, '{"format": "clinicflow.workflow/1",', "b.json")))
    assert reason.startswith("Invalid workflow file: not valid JSON")
    assert json.loads(cli("workflow", "export", "1").out)["nodes"] == REMINDER["nodes"]


@pytest.mark.parametrize("args, reason", [
    (("workflow", "enable", "1"), "workflow 1 has no published version; publish it before enabling it"),
    (("workflow", "publish", "7"), "there is no workflow 7"),
    (("workflow", "export", "1", "--version", "3"), "workflow 1 has no version 3"),
    (("workflow", "export", "1", "--version", "0"), "workflow 1 has no version 0"),
    (("workflow", "versions", "7"), "there is no workflow 7"),
    (("workflow", "disable", "7"), "there is no workflow 7"),
    (("workflow", "enable", "99999999999"), "there is no workflow 99999999999"),
    (("workflow", "export", "1", "--version", "99999999999"), "workflow 1 has no version 99999999999"),
])
def test_refusals_are_one_line_with_exit_1(cli, tmp_path: Path, args: tuple[str, ...], reason: str) -> None:
    cli("workflow", "import", write(tmp_path, REMINDER))
    assert one_line_refusal(cli(*args)) == reason


def test_missing_file_is_a_refusal(cli, tmp_path: Path) -> None:
    assert one_line_refusal(cli("workflow", "import", str(tmp_path / "nope.json"))) == \
        f"{tmp_path / 'nope.json'}: No such file or directory"


@pytest.mark.parametrize("args", [("workflow",), ("workflow", "publish", "abc"), ("workflow", "frobnicate"),
                                  ("workflow", "export")])
def test_usage_errors_exit_2(cli, args: tuple[str, ...]) -> None:
    assert cli(*args).code == 2


def test_publish_history_names_the_team_member(cli, db_url: str, tmp_path: Path) -> None:
    from app.store import open_database
    from app.store.history import history_of

    cli("workflow", "import", write(tmp_path, REMINDER), "--as", "ann")
    cli("--as", "bob", "workflow", "publish", "1")
    db = open_database(db_url)
    try:
        with db.read() as conn:
            assert [(h.action, h.actor) for h in history_of(conn, "workflow:1")] == [
                ("workflow.publish", "bob"), ("workflow.create", "ann")]
    finally:
        db.dispose()


# --- the real entry point, as a user runs it ---------------------------------------------------

def test_entry_point_imports_publishes_and_lists(db_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, REMINDER)
    assert run_clinicflow("--db", db_url, "workflow", "import", path).out == "1\n"
    published = run_clinicflow("--db", db_url, "--as", "ann", "workflow", "publish", "1")
    assert (published.code, published.out) == (0, "1\n")
    listed = run_clinicflow("workflow", "list", "--json", env={"CLINICFLOW_DATABASE_URL": db_url})
    assert listed.code == 0
    assert json.loads(listed.out) == [{"id": 1, "name": "Recall reminder", "trigger": "trigger.manual",
                                       "enabled": False, "published_version": 1, "has_unpublished_changes": False}]
    versions = run_clinicflow("--db", db_url, "workflow", "versions", "1", "--json")
    assert [(v["number"], v["published_by"]) for v in json.loads(versions.out)] == [(1, "ann")]


def test_entry_point_refusal_and_usage_exit_codes(sqlite_url: str, tmp_path: Path) -> None:
    refused = run_clinicflow("--db", sqlite_url, "workflow", "enable", "5")
    assert (refused.code, refused.out, refused.err) == (1, "", "clinicflow: there is no workflow 5\n")
    usage = run_clinicflow("--db", sqlite_url, "workflow", "enable")
    assert usage.code == 2 and "the following arguments are required: ID" in usage.err


def test_entry_point_refuses_an_unusable_database_url() -> None:
    result = run_clinicflow("--db", "mysql://u@h/db", "workflow", "list")
    assert (result.code, result.err) == (1, "clinicflow: unsupported database 'mysql': use SQLite or PostgreSQL\n")


def test_a_file_saved_with_a_byte_order_mark_imports(cli, tmp_path: Path) -> None:
    """Windows Notepad writes UTF-8 with a BOM."""
    path = tmp_path / "notepad.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(REMINDER).encode("utf-8"))
    assert cli("workflow", "import", str(path)).out == "1\n"


def test_a_file_that_is_not_utf8_is_refused_in_one_line(cli, tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(json.dumps({**REMINDER, "name": "Rappel"}).encode("utf-8").replace(b"Rappel", b"R\xe9el"))
    reason = one_line_refusal(cli("workflow", "import", str(path)))
    assert reason.startswith(f"Invalid workflow file: {path} is not UTF-8 text (byte ")


def test_publish_warns_of_an_unconnected_integration_and_missing_addresses_but_publishes(cli, tmp_path: Path) -> None:
    """The command line gives the same pre-flight warnings as the app's Publish dialog."""
    cli("workflow", "import", write(tmp_path, REMINDER))
    cli("record", "add", "patient", "first_name=Ann", "last_name=Smith")  # no email address
    cli("record", "add", "recall", "patient_id=1", "recall_type=Check-up", "due_date=2026-12-01")
    result = cli("workflow", "publish", "1")
    assert (result.code, result.out) == (0, "1\n")  # stdout stays the version number alone
    warnings = result.err.strip().splitlines()
    assert "warning: Email integration is not connected: no SMTP server configured" in warnings[0]
    assert "(clinicflow integration set smtp host=... from=...)" in warnings[0]  # the command line keeps its advice
    assert "warning: 1 of 1 recalls is for a patient with no email address" in warnings

    cli("integration", "set", "smtp", "host=127.0.0.1", "port=2525", "from=clinic@example.org")
    cli("record", "update", "patient:1", "email=ann@example.org")
    cli("workflow", "update", "1", write(tmp_path, {**REMINDER, "description": "v2"}))
    again = cli("workflow", "publish", "1")
    assert (again.code, again.out, again.err) == (0, "2\n", "")


@pytest.mark.parametrize(("text", "reason"), [
    (json.dumps({**REMINDER, "nodes": [{**REMINDER["nodes"][0], "type": ["trigger.manual"]}]}),
     "unknown node type [\"trigger.manual\"]"),
    (json.dumps({**REMINDER, "nodes": [{**REMINDER["nodes"][0], "position": [0, float("nan")]}]}),
     "field 'position.1': must be a finite number, not NaN"),
    (json.dumps({**REMINDER, "description": "@"}).replace('"@"', "[" * 100_000 + "]" * 100_000),
     "nested more than 64 levels deep"),
    (json.dumps({**REMINDER, "description": "x" * (6 * 1024 * 1024)}), "the file is 6.0 MB"),
])
def test_hostile_files_are_refused_in_one_line_and_nothing_is_stored(cli, tmp_path: Path, text: str,
                                                                     reason: str) -> None:
    line = one_line_refusal(cli("workflow", "import", write(tmp_path, text)))
    assert line.startswith("Invalid workflow file: ") and reason in line, line
    assert cli("workflow", "list", "--json").out.strip() == "[]"
