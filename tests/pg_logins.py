"""Real PostgreSQL login roles for tests (DESIGN section 15): `owner` is the practice database
as its owner; `login(role)` makes a login role in that clinicflow role through `team add` and
drops it afterwards. Import the fixtures into a test module to use them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, make_url, text

from app.api import team
from app.store.database import Database, open_database

PASSWORD = "correct horse battery"
@dataclass
class Login:
    name: str
    url: str          # SQLAlchemy URL of the practice database, as this login
    conninfo: str     # the same for a raw psycopg session


@pytest.fixture
def owner(pg_url: str) -> Iterator[Database]:
    """The practice database as its owner (the superuser the tests connect as)."""
    db = open_database(pg_url)
    yield db
    db.dispose()


@pytest.fixture
def login(pg_url: str, owner: Database) -> Iterator[Callable[[str], Login]]:
    """Make a real login role in a clinicflow role (through `team add`); dropped afterwards."""
    made: list[str] = []

    def make(role: str) -> Login:
        name = f"cf_{role}_{uuid.uuid4().hex[:8]}"
        team.add_member(owner, name, role, PASSWORD)
        made.append(name)
        url = make_url(pg_url).set(username=name, password=PASSWORD)
        schema = url.query["options"].split("=", 1)[1]
        conninfo = (f"host={url.host} port={url.port or 5432} dbname={url.database} user={name} "
                    f"password='{PASSWORD}' options='-csearch_path={schema}'")
        return Login(name, url.render_as_string(hide_password=False), conninfo)

    yield make
    engine = create_engine(make_url(pg_url).set(query={}))
    with engine.begin() as conn:
        for name in made:
            quoted = conn.dialect.identifier_preparer.quote_identifier(name)
            exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}).first()
            if exists:
                conn.execute(text(f"REASSIGN OWNED BY {quoted} TO CURRENT_USER"))
                conn.execute(text(f"DROP OWNED BY {quoted}"))
                conn.execute(text(f"DROP ROLE {quoted}"))
    engine.dispose()
