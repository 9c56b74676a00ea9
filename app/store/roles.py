"""Team members as PostgreSQL roles (DESIGN section 15): the five group roles, what each may
do, the GRANTs that make the database enforce it, the actor the database writes, and the
SECURITY DEFINER functions through which an admin manages the team.

Everything here is PostgreSQL only and idempotent: `setup_roles` is run by migration 0004
and again by every `clinicflow init`, so a server whose first migration ran without the
right to create roles gets them later. Roles are cluster-wide and never dropped here; the
GRANTs are on the tables of the schema being migrated (the connection's search_path).
"""

from __future__ import annotations

from enum import StrEnum
from itertools import pairwise
from typing import Final

from sqlalchemy import Connection, text

STAFF: Final = "clinicflow_staff"
MANAGER: Final = "clinicflow_manager"
DESIGNER: Final = "clinicflow_designer"
ADMIN: Final = "clinicflow_admin"
RUNTIME: Final = "clinicflow_runtime"
# The people's roles, least first; each includes the one before it.
PEOPLE_ROLES: Final = (STAFF, MANAGER, DESIGNER, ADMIN)
GROUP_ROLES: Final = (*PEOPLE_ROLES, RUNTIME)
# The words `team add --role` accepts: "staff" or "clinicflow_staff".
SHORT_NAMES: Final = {role.removeprefix("clinicflow_"): role for role in GROUP_ROLES}


class Permission(StrEnum):
    """What a team member may do, as the app hides or disables it."""

    READ = "read"
    EDIT_RECORDS = "edit_records"
    START_RUNS = "start_runs"
    CONTROL_RUNS = "control_runs"          # cancel, retry (also in bulk)
    ENABLE_WORKFLOWS = "enable_workflows"
    ERASE_PATIENTS = "erase_patients"
    DESIGN_WORKFLOWS = "design_workflows"  # create, edit, import, publish, delete
    INTEGRATIONS = "integrations"
    SETTINGS = "settings"
    TEAM = "team"
    READ_SECRETS = "read_secrets"
    EXECUTE_RUNS = "execute_runs"          # the runtime: claim and execute runs


_STAFF_MAY: Final = frozenset({Permission.READ, Permission.EDIT_RECORDS, Permission.START_RUNS})
_MANAGER_MAY: Final = _STAFF_MAY | {Permission.CONTROL_RUNS, Permission.ENABLE_WORKFLOWS, Permission.ERASE_PATIENTS}
_DESIGNER_MAY: Final = _MANAGER_MAY | {Permission.DESIGN_WORKFLOWS}
_ADMIN_MAY: Final = _DESIGNER_MAY | {Permission.INTEGRATIONS, Permission.SETTINGS, Permission.TEAM,
                                     Permission.READ_SECRETS}
EVERYTHING: Final = frozenset(Permission)
MAY: Final[dict[str, frozenset[Permission]]] = {
    STAFF: _STAFF_MAY, MANAGER: _MANAGER_MAY, DESIGNER: _DESIGNER_MAY, ADMIN: _ADMIN_MAY,
    RUNTIME: frozenset({Permission.READ, Permission.READ_SECRETS, Permission.EXECUTE_RUNS}),
}

RECORD_TABLES: Final = ("patients", "appointments", "tasks", "recalls")
SECRET_TABLES: Final = ("secrets",)

# Privileges each role adds to the one it includes (table -> privileges; a privilege with
# columns in brackets is a column privilege). SELECT on every table but secrets is given to
# staff and the runtime separately. Finer rules than a table are column privileges:
# staff INSERT runs (start) but no UPDATE (cancel, retry); staff INSERT/UPDATE records but
# no DELETE (erase); managers UPDATE only workflows' enabled flag.
GRANTS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    STAFF: {
        **{table: ("INSERT", "UPDATE") for table in RECORD_TABLES},
        "record_events": ("INSERT",),
        "record_problems": ("INSERT",),
        "history": ("INSERT",),
        "runs": ("INSERT",),
        "enrolments": ("INSERT",),  # a manual start still counts toward `reenrol`
        "secrets": ("SELECT (key, updated_at)",),  # which secrets are set, never their values
    },
    MANAGER: {
        **{table: ("DELETE",) for table in RECORD_TABLES},
        "record_events": ("DELETE",),
        "record_problems": ("DELETE",),
        "runs": ("UPDATE", "DELETE"),
        "steps": ("INSERT", "UPDATE", "DELETE"),
        "workflows": ("UPDATE (enabled, updated_at)",),
        "enrolments": ("UPDATE", "DELETE"),  # retries; erasing a patient
        "history": ("UPDATE (detail)",),  # erasure removes the values of the patient's records
    },
    DESIGNER: {
        "workflows": ("INSERT", "UPDATE", "DELETE"),
        "workflow_versions": ("INSERT", "UPDATE", "DELETE"),
        "schedule_fires": ("DELETE",),
    },
    ADMIN: {
        "settings": ("INSERT", "UPDATE", "DELETE"),
        "secrets": ("SELECT", "INSERT", "UPDATE", "DELETE"),
        "maintenance_claims": ("INSERT", "UPDATE"),  # `maintenance prune`
    },
    RUNTIME: {
        **{table: ("INSERT", "UPDATE") for table in RECORD_TABLES},
        "record_events": ("INSERT", "UPDATE"),
        "record_problems": ("INSERT",),
        "history": ("INSERT",),
        "runs": ("INSERT", "UPDATE"),
        "steps": ("INSERT", "UPDATE"),
        "schedule_fires": ("INSERT", "UPDATE", "DELETE"),
        "runtimes": ("INSERT", "UPDATE", "DELETE"),
        "workflows": ("UPDATE (enabled, updated_at)",),  # auto-disable after repeated failures
        "secrets": ("SELECT",),
        "enrolments": ("INSERT", "UPDATE", "DELETE"),
        "message_counts": ("INSERT", "UPDATE"),
        "wait_follows": ("INSERT", "DELETE"),  # the records an `until` wait reads
        "maintenance_claims": ("INSERT", "UPDATE", "DELETE"),  # the alert digest and retention, once per period
    },
}

# Columns that name the person who did something: the database writes session_user there.
ACTOR_COLUMNS: Final = {
    "history": ("actor",),
    "record_events": ("actor",),
    "workflow_versions": ("published_by",),
    "runs": ("started_by", "cancelled_by"),
}

_ACTOR_FUNCTIONS: Final = """
CREATE OR REPLACE FUNCTION clinicflow_may_name_actor(relation oid) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
    -- Setup and tests: a superuser or the owner of the tables may say who acted (`--as`).
    SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = session_user), false)
        OR session_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = relation)
$$;

CREATE OR REPLACE FUNCTION clinicflow_stamp_actor() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    col text;
    fresh jsonb := to_jsonb(NEW);
    before jsonb := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) ELSE '{}'::jsonb END;
BEGIN
    IF @schema@.clinicflow_may_name_actor(TG_RELID) THEN
        RETURN NEW;
    END IF;
    -- A named actor (NULL means "automatic") that is new or changed becomes the login.
    FOREACH col IN ARRAY TG_ARGV LOOP
        IF fresh ->> col IS NOT NULL AND (TG_OP = 'INSERT' OR fresh -> col IS DISTINCT FROM before -> col) THEN
            NEW := jsonb_populate_record(NEW, jsonb_build_object(col, session_user::text));
        END IF;
    END LOOP;
    RETURN NEW;
END
$$;
"""

# Staff may INSERT a run (start it) but not UPDATE one (cancel, retry), and a run's cursor
# decides what it executes: so a new run inserted by staff must be a manual run of an
# enabled workflow's live version, and the database writes its starting cursor itself.
# (Managers may update runs anyway, and the runtime creates every other kind of run.)
_RUN_GUARD: Final = """
CREATE OR REPLACE FUNCTION clinicflow_check_new_run() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    live_number integer;
    live jsonb;
    start_node text;
BEGIN
    IF @schema@.clinicflow_may_name_actor(TG_RELID)
       OR pg_has_role(session_user, 'clinicflow_runtime', 'MEMBER')
       OR pg_has_role(session_user, 'clinicflow_manager', 'MEMBER') THEN
        RETURN NEW;
    END IF;
    SELECT v.number, v.definition INTO live_number, live
      FROM @schema@.workflow_versions v JOIN @schema@.workflows w ON w.id = v.workflow_id
     WHERE v.workflow_id = NEW.workflow_id AND w.enabled AND NOT w.archived
     ORDER BY v.number DESC LIMIT 1;
    SELECT n ->> 'id' INTO start_node FROM jsonb_array_elements(live -> 'nodes') n
     WHERE n ->> 'type' = 'trigger.manual' LIMIT 1;
    IF NEW.trigger_kind IS DISTINCT FROM 'manual' OR start_node IS NULL OR NEW.version IS DISTINCT FROM live_number
       OR NEW.event_id IS NOT NULL THEN
        RAISE EXCEPTION 'staff may start only a manual run of an enabled workflow''s live version'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.status := 'running';
    NEW.state := jsonb_build_object('pending', jsonb_build_array(start_node), 'seq', 0, 'actions', 0);
    NEW.lease_owner := NULL;
    NEW.lease_expires_at := NULL;
    NEW.finished_at := NULL;
    NEW.error_type := NULL;
    NEW.error_message := NULL;
    NEW.cancelled_by := NULL;
    RETURN NEW;
END
$$;
"""

# An admin manages the team through these, which run with the rights of the schema's owner
# (who may create roles): no workstation login needs CREATEROLE, and EXECUTE is granted
# to clinicflow_admin only. Names are quoted with format('%I'); only the five group roles
# can be granted, and only roles that are team members can be changed or removed.
_TEAM_FUNCTIONS: Final = """
CREATE OR REPLACE FUNCTION clinicflow_team_check(p_member text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_member) THEN
        RAISE EXCEPTION 'there is no team member %', p_member USING ERRCODE = 'undefined_object';
    END IF;
    IF p_member = ANY (ARRAY['clinicflow_staff', 'clinicflow_manager', 'clinicflow_designer', 'clinicflow_admin',
                           'clinicflow_runtime'])
       OR NOT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                      JOIN pg_roles r ON r.oid = m.member
                      WHERE r.rolname = p_member AND g.rolname LIKE 'clinicflow\\_%')
       OR (SELECT rolsuper FROM pg_roles WHERE rolname = p_member) THEN
        RAISE EXCEPTION '% is not a team member (not in a clinicflow role)', p_member
            USING ERRCODE = 'wrong_object_type';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION clinicflow_team_role_check(p_role text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF p_role IS NULL OR NOT p_role = ANY (ARRAY['clinicflow_staff', 'clinicflow_manager', 'clinicflow_designer',
                                             'clinicflow_admin', 'clinicflow_runtime']) THEN
        RAISE EXCEPTION 'unknown role %', p_role USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION clinicflow_team_add(p_member text, p_role text, p_password text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    PERFORM @schema@.clinicflow_team_role_check(p_role);
    IF p_member IS NULL OR length(p_member) = 0 OR length(p_member) > 63 THEN
        RAISE EXCEPTION 'a team member needs a name of 1 to 63 characters' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_member) THEN
        RAISE EXCEPTION 'a database login named % already exists', p_member USING ERRCODE = 'duplicate_object';
    END IF;
    IF p_password IS NULL OR length(p_password) = 0 THEN
        EXECUTE format('CREATE ROLE %I LOGIN', p_member);
    ELSE
        EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', p_member, p_password);
    END IF;
    EXECUTE format('GRANT %I TO %I', p_role, p_member);
END
$$;

CREATE OR REPLACE FUNCTION clinicflow_team_set_role(p_member text, p_role text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    previous text;
BEGIN
    PERFORM @schema@.clinicflow_team_role_check(p_role);
    PERFORM @schema@.clinicflow_team_check(p_member);
    FOR previous IN SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
               JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = p_member AND g.rolname LIKE 'clinicflow\\_%' LOOP
        EXECUTE format('REVOKE %I FROM %I', previous, p_member);
    END LOOP;
    EXECUTE format('GRANT %I TO %I', p_role, p_member);
END
$$;

CREATE OR REPLACE FUNCTION clinicflow_team_remove(p_member text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    PERFORM @schema@.clinicflow_team_check(p_member);
    IF p_member = session_user THEN
        RAISE EXCEPTION 'you cannot remove yourself (%); ask another admin', p_member
            USING ERRCODE = 'object_in_use';
    END IF;
    EXECUTE format('DROP ROLE %I', p_member);
END
$$;
"""
_TEAM_SIGNATURES: Final = ("clinicflow_team_add(text, text, text)", "clinicflow_team_set_role(text, text)",
                           "clinicflow_team_remove(text)")


def _quote(conn: Connection, name: str) -> str:
    """An identifier quoted by the dialect (names are never formatted into SQL unquoted)."""
    return conn.dialect.identifier_preparer.quote_identifier(name)


def may_create_roles(conn: Connection) -> bool:
    return bool(conn.execute(text(
        "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")).scalar())


def existing_group_roles(conn: Connection) -> set[str]:
    rows = conn.execute(text("SELECT rolname FROM pg_roles WHERE rolname = ANY(:names)"),
                        {"names": list(GROUP_ROLES)})
    return {r[0] for r in rows}


def _memberships_done(conn: Connection) -> bool:
    pairs = list(pairwise(PEOPLE_ROLES))
    found = conn.execute(text(
        "SELECT count(*) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "JOIN pg_roles r ON r.oid = m.member WHERE (g.rolname, r.rolname) IN ("
        + ", ".join(f"(:g{i}, :r{i})" for i in range(len(pairs))) + ")"),
        {**{f"g{i}": g for i, (g, _) in enumerate(pairs)}, **{f"r{i}": r for i, (_, r) in enumerate(pairs)}}).scalar()
    return found == len(pairs)


def create_group_roles(conn: Connection) -> list[str]:
    """Create the missing group roles and their inheritance; notices for a person."""
    missing = [role for role in GROUP_ROLES if role not in existing_group_roles(conn)]
    if not missing and _memberships_done(conn):
        return []
    if not may_create_roles(conn):
        user = conn.execute(text("SELECT current_user")).scalar()
        names = ", ".join(missing) if missing else "the clinicflow roles' inheritance"
        return [f"{user} may not create roles, so {names} were not created; "
                "run `clinicflow init` once as a user with CREATEROLE (e.g. postgres)"]
    # Roles are cluster-wide: migrations of other schemas may create them at the same moment.
    conn.execute(text("SELECT pg_advisory_xact_lock(7312002)"))
    for role in GROUP_ROLES:
        conn.execute(text(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '" + role + "') THEN "
            f"CREATE ROLE {_quote(conn, role)} NOLOGIN; END IF; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"))
    for lower, higher in pairwise(PEOPLE_ROLES):
        conn.execute(text(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            f"JOIN pg_roles r ON r.oid = m.member WHERE g.rolname = '{lower}' AND r.rolname = '{higher}') THEN "
            f"GRANT {_quote(conn, lower)} TO {_quote(conn, higher)}; END IF; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"))
    return [f"created the roles {', '.join(missing)}"] if missing else []


def _tables(conn: Connection) -> list[str]:
    rows = conn.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"))
    return [r[0] for r in rows]


def grant_privileges(conn: Connection) -> None:
    """The GRANTs of DESIGN section 15 on this schema's tables, for the roles that exist.

    Idempotent; a later migration that adds a table calls it again (and adds the table to
    `GRANTS` if anyone but the owner writes it)."""
    roles = existing_group_roles(conn)
    if not roles:
        return
    schema = conn.execute(text("SELECT current_schema()")).scalar()
    assert isinstance(schema, str)
    q_schema = _quote(conn, schema)
    tables = _tables(conn)
    statements: list[str] = []
    for role in sorted(roles):
        q_role = _quote(conn, role)
        statements.append(f"GRANT USAGE ON SCHEMA {q_schema} TO {q_role}")
        statements.append(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {q_schema} TO {q_role}")
        if role in (STAFF, RUNTIME):
            statements.extend(f"GRANT SELECT ON {_quote(conn, table)} TO {q_role}"
                              for table in tables if table not in SECRET_TABLES)
        for table, privileges in GRANTS[role].items():
            if table in tables:
                statements.extend(f"GRANT {privilege} ON {_quote(conn, table)} TO {q_role}" for privilege in privileges)
    if ADMIN in roles:
        statements.extend(f"GRANT EXECUTE ON FUNCTION {signature} TO {_quote(conn, ADMIN)}"
                          for signature in _TEAM_SIGNATURES)
    # One round trip: a migration grants on every table for every role (hundreds of statements),
    # and every new practice schema (and every PostgreSQL test) runs it. No parameters, so the
    # driver sends the statements as one simple query.
    conn.exec_driver_sql(";\n".join(statements))


def install_functions(conn: Connection) -> None:
    """The actor stamp (column defaults + BEFORE triggers) and the team functions."""
    schema = conn.execute(text("SELECT current_schema()")).scalar()
    assert isinstance(schema, str)
    cursor = conn.connection.cursor()  # no bind-parameter processing: the bodies use format('%I')
    try:
        for body in (_ACTOR_FUNCTIONS, _RUN_GUARD, _TEAM_FUNCTIONS):
            cursor.execute(body.replace("@schema@", _quote(conn, schema)))
    finally:
        cursor.close()
    for signature in _TEAM_SIGNATURES:
        conn.execute(text(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC"))
    tables = _tables(conn)
    for table, columns in ACTOR_COLUMNS.items():
        if table not in tables:
            continue
        q_table = _quote(conn, table)
        if table == "history":
            conn.execute(text(f"ALTER TABLE {q_table} ALTER COLUMN actor SET DEFAULT session_user"))
        trigger = _quote(conn, f"clinicflow_actor_{table}")
        conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger} ON {q_table}"))
        arguments = ", ".join(f"'{column}'" for column in columns)
        # UPDATE OF: the runtime's frequent updates of a run's cursor do not fire it.
        watched = ", ".join(_quote(conn, column) for column in columns)
        conn.execute(text(f"CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE OF {watched} ON {q_table} "
                          f"FOR EACH ROW EXECUTE FUNCTION clinicflow_stamp_actor({arguments})"))
    if "runs" in tables:
        conn.execute(text("DROP TRIGGER IF EXISTS clinicflow_check_runs ON runs"))
        conn.execute(text("CREATE TRIGGER clinicflow_check_runs BEFORE INSERT ON runs "
                          "FOR EACH ROW EXECUTE FUNCTION clinicflow_check_new_run()"))


def setup_roles(conn: Connection, *, grant: bool = True) -> list[str]:
    """Roles (when the user may create them), GRANTs and functions; notices for a person.
    Migrations leave out the GRANTs (`grant=False`): `upgrade_schema` grants once, after the
    last migration, on every table they made."""
    if conn.dialect.name != "postgresql":
        return []
    notices = create_group_roles(conn)
    install_functions(conn)
    if grant:
        grant_privileges(conn)
    return notices
