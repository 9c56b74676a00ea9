"""Demo data: a small practice and the four example workflows, for trying Clinicflow out.

Records go through `add_record`, so they carry their events and history like any other
change. The examples are read from `resources/workflows/` (installed as
`app.resources`), published as version 1 and left disabled: enabling a workflow that
sends messages is the user's decision.
"""

from __future__ import annotations

import random
import unicodedata
from datetime import date, datetime, time, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Final

from sqlalchemy import Connection, select, text, update

from app.workflow import load_workflow

from .database import Database
from .history import record_action
from .records import add_record, count_records
from .schema import record_events, workflows
from .workflows import create_workflow, publish

# (first name, last name, has email, has mobile): a practice where not everyone can be
# reached every way, so the examples' "has email?" branches both get used.
PATIENTS: Final[tuple[tuple[str, str, bool, bool], ...]] = (
    ("Ann", "Smith", True, True), ("Bilal", "Hussain", True, True), ("Chloé", "Martin", True, False),
    ("Dmitri", "Volkov", False, True), ("Eleanor", "O'Brien", True, True), ("Femi", "Adeyemi", True, True),
    ("Grace", "Nakamura", True, True), ("Hamza", "Rahman", False, True), ("Ingrid", "Johansson", True, True),
    ("Jamal", "Williams", True, False), ("Kirsty", "MacLeod", True, True), ("Luca", "Bianchi", False, False),
    ("Maria", "García López", True, True), ("Niamh", "Kelly", True, True), ("Oluwaseun", "Bello", False, True),
    ("Priya", "Patel", True, True), ("Quentin", "Dubois", True, True), ("Rosa", "Fernández", True, False),
    ("Sven", "Andersson", False, True), ("Tamsin", "Hughes", True, True), ("Uma", "Krishnan", True, True),
    ("Victor", "Nguyen", True, True), ("Wiktoria", "Kowalska", False, True), ("Xavier", "Mendes", True, True),
    ("Yasmin", "Haddad", True, True), ("Zoltán", "Szabó", True, False), ("Aisha", "Mohammed", True, True),
    ("Ben", "Carter", False, True), ("Catriona", "Fraser", True, True), ("Declan", "Murphy", True, True),
    ("Esther", "Goldberg", True, True), ("Farid", "Karimi", False, False), ("Gemma", "Thompson", True, True),
    ("Hiroshi", "Tanaka", True, True), ("Isla", "Campbell", True, False), ("Jonas", "Becker", True, True),
    ("Kwame", "Mensah", False, True), ("Leila", "Nasser", True, True), ("Mei", "Chen", True, True),
    ("Noah", "Evans", True, True),
)

PRACTITIONERS: Final = ("Dr Amara Okafor", "Dr Tomasz Nowak", "Dr Sofia Lindqvist", "Priya Shah (hygienist)")
REASONS: Final = ("Check-up", "Hygiene visit", "Filling", "Follow-up", "Toothache", "Crown fitting",
                  "Blood pressure review", "New patient assessment")
RECALL_TYPES: Final = ("6-month check-up", "Hygiene visit", "Annual review", "Blood pressure check")
SEED: Final = 20240611  # the same demo practice every time

_EXAMPLES: Final = ("appointment-reminder.json", "recall-reminder.json",
                    "follow-up-after-appointment.json", "new-patient-welcome.json")


def example_workflow_files() -> list[Traversable]:
    """The example workflows shipped in `resources/workflows/`, in the order they are loaded."""
    folder = files("app.resources") / "workflows"
    return [folder / name for name in _EXAMPLES]


def load_demo(db: Database, actor: str) -> str:
    """Fill an empty practice with demo records and example workflows; one-line summary.

    Adds nothing if the practice already has patients or workflows.
    """
    with db.write() as conn:
        if db.is_postgresql:
            # Two workstations loading the demo at once: the second sees the first's data.
            conn.execute(text("SELECT pg_advisory_xact_lock(7312002)"))
        existing_workflows = conn.execute(select(workflows.c.id).limit(1)).first() is not None
        if count_records(conn, "patient") or existing_workflows:
            return "Demo data not added: this database already has patients or workflows."
        first_event = conn.execute(select(record_events.c.id).order_by(record_events.c.id.desc())
                                   .limit(1)).scalar()
        counts = _add_practice(conn, actor)
        # The demo's records stand for the practice's past: no enabled workflow was
        # listening when they were made, so the runtime must not replay them later.
        conn.execute(update(record_events).where(record_events.c.id > (first_event or 0))
                     .values(dispatched=True))
        workflow_ids = []
        for resource in example_workflow_files():
            workflow = load_workflow(resource.read_text(encoding="utf-8"))
            workflow_id = create_workflow(conn, workflow, actor)
            publish(conn, workflow_id, actor, note="Demo example")
            workflow_ids.append(workflow_id)
        record_action(conn, actor, "demo.load", "practice", {**counts, "workflows": workflow_ids})
    ids = ", ".join(str(i) for i in workflow_ids)
    return (f"Demo practice loaded: {counts['patients']} patients, {counts['appointments']} appointments, "
            f"{counts['recalls']} recalls, {counts['tasks']} tasks, and 4 example workflows "
            f"(ids {ids}) published as version 1 but disabled; "
            f"enable one with: clinicflow workflow enable ID")


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    """A clinic time on `day`, in the computer's local time zone."""
    return datetime.combine(day, time(hour, minute)).astimezone()


def _add_practice(conn: Connection, actor: str) -> dict[str, int]:
    rng = random.Random(SEED)
    today = date.today()
    patient_ids: list[int] = []
    for index, (first, last, has_email, has_mobile) in enumerate(PATIENTS):
        values: dict[str, Any] = {
            "first_name": first, "last_name": last,
            "date_of_birth": date(1940 + rng.randrange(68), rng.randrange(1, 13), rng.randrange(1, 29)),
        }
        if has_email:
            plain = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
            local_part = plain.lower().replace(" ", "-").replace("'", "")
            values["email"] = f"{local_part}@example.org"
        if has_mobile:
            values["mobile"] = f"+44 7700 900{index:03d}"  # Ofcom's range reserved for drama
        # Consent as a real practice has it: a few opted out of texts or email, some
        # agreed to marketing (DESIGN section 13).
        if has_mobile and index % 7 == 3:
            values["sms_opt_out"] = True
        if has_email and index % 11 == 5:
            values["email_opt_out"] = True
        if index % 3 == 0:
            values["marketing_consent"] = True
        if index % 9 == 4:
            values["notes"] = rng.choice(("Prefers morning appointments.", "Nervous patient; allow extra time.",
                                          "Hard of hearing: call rather than text.", "Wheelchair user."))
        patient_ids.append(add_record(conn, "patient", values, actor).id)

    appointments = 0
    for index, patient_id in enumerate(patient_ids):
        # Past visits: mostly completed, a few missed or cancelled.
        for _ in range(1 + index % 2):
            day = today - timedelta(days=rng.randrange(1, 120))
            status = rng.choices(("completed", "no_show", "cancelled"), weights=(8, 1, 1))[0]
            appointments += _appointment(conn, actor, rng, patient_id, day, status)
        # Upcoming visits for most patients: tomorrow onwards, the odd one already cancelled.
        if index % 4 != 3:
            day = today + timedelta(days=1 + rng.randrange(0, 45) if index % 5 else 1)
            status = "cancelled" if index % 11 == 7 else "booked"
            appointments += _appointment(conn, actor, rng, patient_id, day, status)

    recalls = 0
    for index, patient_id in enumerate(patient_ids[::2]):
        if index % 3 == 0:
            due, status = today - timedelta(days=rng.randrange(1, 60)), "due"   # overdue
        elif index % 3 == 1:
            due, status = today + timedelta(days=rng.randrange(14, 180)), "due"  # not yet due
        else:
            due, status = today + timedelta(days=rng.randrange(1, 30)), rng.choice(("booked", "done"))
        add_record(conn, "recall", {"patient_id": patient_id, "recall_type": rng.choice(RECALL_TYPES),
                                    "due_date": due, "status": status}, actor)
        recalls += 1

    task_list: tuple[tuple[str, int | None, str, int, str], ...] = (
        ("Send referral letter to orthodontist", patient_ids[2], "Dr Tomasz Nowak", 2, "open"),
        ("Chase unpaid invoice", patient_ids[7], "Reception", -3, "open"),
        ("Order X-ray films", None, "Practice manager", 5, "open"),
        ("Call back about treatment plan", patient_ids[12], "Dr Amara Okafor", 1, "open"),
        ("Update medical history form", patient_ids[20], "Reception", -10, "done"),
    )
    for title, for_patient, assignee, due_in_days, status in task_list:
        values = {"title": title, "assignee": assignee, "status": status,
                  "due_at": _local(today + timedelta(days=due_in_days), 12)}
        if for_patient is not None:
            values["patient_id"] = for_patient
        add_record(conn, "task", values, actor)
    return {"patients": len(patient_ids), "appointments": appointments, "recalls": recalls,
            "tasks": len(task_list)}


def _appointment(conn: Connection, actor: str, rng: random.Random, patient_id: int, day: date,
                 status: str) -> int:
    if day.weekday() >= 5:  # the clinic is closed at weekends: past visits Friday, upcoming Monday
        day += timedelta(days=7 - day.weekday()) if day > date.today() else -timedelta(days=day.weekday() - 4)
    starts = _local(day, rng.randrange(8, 17), rng.choice((0, 15, 30, 45)))
    add_record(conn, "appointment", {
        "patient_id": patient_id, "starts_at": starts, "ends_at": starts + timedelta(minutes=30),
        "practitioner": rng.choice(PRACTITIONERS), "reason": rng.choice(REASONS), "status": status,
    }, actor)
    return 1
