"""The team (DESIGN section 15): who is connected and what they may do, team members as
PostgreSQL login roles (add, list, change role, remove), and a database refusal in words.

On PostgreSQL the database enforces every rule (GRANTs, see `app.store.roles`); this module
only tells the app what to hide and words what was refused. On SQLite (one workstation)
there is no team: the operating-system login is the actor and everything is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from app.store import roles
from app.store.database import Database
from app.store.errors import NotFound, WrongState
from app.store.history import record_action
from app.store.roles import EVERYTHING, GROUP_ROLES, MAY, PEOPLE_ROLES, RUNTIME, SHORT_NAMES, Permission

from .actor import default_actor

__all__ = [
    "ACTION_WORDS", "GROUP_ROLES", "TEAMS_NEED_POSTGRESQL", "Member", "Permission", "TeamMember",
    "add_member", "current_member", "is_privilege_refusal", "list_members", "may_not", "parse_role",
    "refused_in_words", "remove_member", "set_role", "setup_roles", "why_not",
]

TEAMS_NEED_POSTGRESQL: Final = ("teams need PostgreSQL: on SQLite (one workstation) the operating-system login "
                                "is the actor and every action is allowed")
INSUFFICIENT_PRIVILEGE: Final = "42501"
# The team functions' refusals (app.store.roles), shown as their message.
_TEAM_REFUSALS: Final = frozenset({"42710", "42704", "42809", "22023", "55006", "2BP01"})

# Each use case (a command, or the app's action) -> what it needs and how to say it.
ACTION_WORDS: Final[dict[str, tuple[Permission, str]]] = {
    "workflow.list": (Permission.READ, "list workflows"),
    "workflow.import": (Permission.DESIGN_WORKFLOWS, "import workflows"),
    "workflow.create": (Permission.DESIGN_WORKFLOWS, "create workflows"),
    "workflow.update": (Permission.DESIGN_WORKFLOWS, "edit workflows"),
    "workflow.rename": (Permission.DESIGN_WORKFLOWS, "rename workflows"),
    "workflow.duplicate": (Permission.DESIGN_WORKFLOWS, "duplicate workflows"),
    "workflow.restore": (Permission.DESIGN_WORKFLOWS, "restore workflow versions"),
    "workflow.delete": (Permission.DESIGN_WORKFLOWS, "delete workflows"),
    "workflow.publish": (Permission.DESIGN_WORKFLOWS, "publish workflows"),
    "workflow.webhook": (Permission.DESIGN_WORKFLOWS, "make webhook tokens"),
    "workflow.enable": (Permission.ENABLE_WORKFLOWS, "enable workflows"),
    "workflow.disable": (Permission.ENABLE_WORKFLOWS, "disable workflows"),
    "run.start": (Permission.START_RUNS, "start runs"),
    "run.again": (Permission.START_RUNS, "start runs"),
    "run.retry": (Permission.CONTROL_RUNS, "retry runs"),
    "run.retry_step": (Permission.CONTROL_RUNS, "retry steps"),
    "run.cancel": (Permission.CONTROL_RUNS, "cancel runs"),
    "record.add": (Permission.EDIT_RECORDS, "add records"),
    "record.update": (Permission.EDIT_RECORDS, "update records"),
    "record.erase": (Permission.ERASE_PATIENTS, "erase patients"),
    "integration.set": (Permission.INTEGRATIONS, "change integrations"),
    "integration.test": (Permission.INTEGRATIONS, "test integrations"),
    "settings.set": (Permission.SETTINGS, "change practice settings"),
    "team.add": (Permission.TEAM, "manage the team"),
    "team.list": (Permission.TEAM, "manage the team"),
    "team.set-role": (Permission.TEAM, "manage the team"),
    "team.remove": (Permission.TEAM, "manage the team"),
    "runtime": (Permission.EXECUTE_RUNS, "run the runtime"),
    "maintenance.prune": (Permission.EXECUTE_RUNS, "prune old runs"),
    "init": (Permission.TEAM, "upgrade the database"),
}


@dataclass(frozen=True)
class Member:
    """The connected person: their login, their clinicflow role (None for the owner or a
    superuser doing setup, and on SQLite), and what they may do."""

    name: str
    role: str | None
    may: frozenset[Permission]
    may_name_actor: bool   # `--as` allowed: SQLite, a superuser or the schema's owner

    def can(self, action: str) -> bool:
        needed = ACTION_WORDS.get(action)
        return needed is None or needed[0] in self.may


@dataclass(frozen=True)
class TeamMember:
    name: str
    role: str
    can_log_in: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "can_log_in": self.can_log_in}


def _member(conn: Connection) -> Member:
    row = conn.execute(text(
        "SELECT session_user, coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false), "
        "session_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass('history'))")).one()
    name, superuser, owner = str(row[0]), bool(row[1]), bool(row[2])
    held = {r[0] for r in conn.execute(text(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(:groups) AND pg_has_role(session_user, oid, 'MEMBER')"),
        {"groups": list(GROUP_ROLES)})}
    if superuser or owner:
        return Member(name, None, EVERYTHING, True)
    role = next((r for r in reversed(PEOPLE_ROLES) if r in held), RUNTIME if RUNTIME in held else None)
    may = frozenset().union(*(MAY[r] for r in held)) if held else frozenset()
    return Member(name, role, may, False)


def current_member(db: Database) -> Member:
    """Who is connected and what they may do (the app hides or disables the rest)."""
    if not db.is_postgresql:
        return Member(default_actor(), None, EVERYTHING, True)
    with db.read() as conn:
        return _member(conn)


def why_not(member: Member, action: str) -> str | None:
    """The tooltip of something the member may not do (None: they may)."""
    return None if member.can(action) else may_not(member, action)


def may_not(member: Member, action: str) -> str:
    """`Maria (clinicflow_staff) may not publish workflows`."""
    words = ACTION_WORDS[action][1] if action in ACTION_WORDS else "do this"
    return f"{member.name} ({member.role or 'no clinicflow role'}) may not {words}"


def is_privilege_refusal(exc: BaseException) -> bool:
    """The database refused for lack of a privilege (PostgreSQL's InsufficientPrivilege)."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE


def refused_in_words(db: Database, action: str) -> str:
    """One line for a refusal by the database, naming who is connected and what failed."""
    try:
        member = current_member(db)
    except DBAPIError:
        return f"the database refused: you may not {ACTION_WORDS.get(action, (None, 'do this'))[1]}"
    return may_not(member, action)


def parse_role(word: str) -> str:
    """`staff` or `clinicflow_staff` -> `clinicflow_staff`; anything else is refused."""
    role = SHORT_NAMES.get(word.strip().lower().removeprefix("clinicflow_"))
    if role is None:
        raise WrongState(f"unknown role '{word}' (use one of {', '.join(SHORT_NAMES)})")
    return role


def setup_roles(db: Database) -> list[str]:
    """`clinicflow init` on PostgreSQL: create the roles if missing and (re)apply the GRANTs."""
    if not db.is_postgresql:
        return []
    with db.write() as conn:
        return roles.setup_roles(conn)


def _require_team(db: Database, action: str) -> Member:
    if not db.is_postgresql:
        raise WrongState(TEAMS_NEED_POSTGRESQL)
    member = current_member(db)
    if not member.can(action):
        raise WrongState(may_not(member, action))
    return member


def _call(db: Database, member: Member, sql: str, params: dict[str, Any], action: str, detail: dict[str, Any],
          subject: str) -> None:
    try:
        with db.write() as conn:
            conn.execute(text(sql), params)
            record_action(conn, member.name, action, subject, detail)
    except DBAPIError as exc:
        state = getattr(exc.orig, "sqlstate", None)
        if state in _TEAM_REFUSALS:
            diag = getattr(exc.orig, "diag", None)
            message = getattr(diag, "message_primary", None) or str(exc.orig).splitlines()[0]
            raise (NotFound if state == "42704" else WrongState)(message) from None
        raise


def add_member(db: Database, name: str, role: str, password: str | None) -> TeamMember:
    """A login role for a team member, in one clinicflow role (admin only)."""
    member = _require_team(db, "team.add")
    group = parse_role(role)
    _call(db, member, "SELECT clinicflow_team_add(:name, :role, :password)",
          {"name": name, "role": group, "password": password or None}, "team.add",
          {"name": name, "role": group}, f"member:{name}"[:64])
    return TeamMember(name, group, True)


def set_role(db: Database, name: str, role: str) -> TeamMember:
    member = _require_team(db, "team.set-role")
    group = parse_role(role)
    _call(db, member, "SELECT clinicflow_team_set_role(:name, :role)", {"name": name, "role": group},
          "team.set_role", {"name": name, "role": group}, f"member:{name}"[:64])
    return TeamMember(name, group, True)


def remove_member(db: Database, name: str) -> None:
    member = _require_team(db, "team.remove")
    _call(db, member, "SELECT clinicflow_team_remove(:name)", {"name": name}, "team.remove", {"name": name},
          f"member:{name}"[:64])


def list_members(db: Database) -> list[TeamMember]:
    """Every login in a clinicflow role, by name, with its highest role."""
    _require_team(db, "team.list")
    with db.read() as conn:
        rows = conn.execute(text(
            "SELECT r.rolname, g.rolname, r.rolcanlogin FROM pg_auth_members m "
            "JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member "
            "WHERE g.rolname = ANY(:groups) AND NOT r.rolname = ANY(:groups) ORDER BY r.rolname"),
            {"groups": list(GROUP_ROLES)}).all()
    order = {role: rank for rank, role in enumerate(GROUP_ROLES)}
    best: dict[str, TeamMember] = {}
    for name, group, can_log_in in rows:
        known = best.get(name)
        if known is None or order[group] > order[known.role]:
            best[name] = TeamMember(name, group, bool(can_log_in))
    return list(best.values())
