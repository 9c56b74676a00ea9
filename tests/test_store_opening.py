"""Opening and testing database locations: a path in a missing folder is refused with the
reason instead of creating an empty practice; creating is a choice; `check_database` says
in words why a URL cannot be used, quickly, and creates nothing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from app.store import DatabaseRefused, open_database
from app.store.database import check_database, create_database, default_database_path, reason_in_words

PG_MARKERS = ("psycopg", "sqlalchemy", "OperationalError", "sqlalche.me", "Traceback")


def test_a_file_in_a_folder_that_does_not_exist_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    with pytest.raises(DatabaseRefused) as refused:
        open_database(str(missing / "clinic.sqlite3"))
    assert str(refused.value) == f"The folder {missing} does not exist"
    assert not (tmp_path / "nonexistent").exists()
    with pytest.raises(DatabaseRefused, match="does not exist"):
        create_database(f"sqlite:///{missing}/clinic.sqlite3")


def test_creating_a_database_in_a_new_folder_is_an_explicit_choice(tmp_path: Path) -> None:
    path = tmp_path / "new" / "practice" / "clinic.sqlite3"
    db = open_database(str(path), create=True)
    db.dispose()
    assert path.is_file()
    assert check_database(str(path)) is None


def test_the_default_database_is_created_on_first_use() -> None:
    path = default_database_path()
    assert not path.parent.exists()  # a fresh home directory (see conftest)
    db = open_database()
    db.dispose()
    assert path.is_file()


def test_a_file_that_is_not_a_database_is_refused_in_words(tmp_path: Path) -> None:
    letter = tmp_path / "letter.txt"
    letter.write_text("Dear Ann, " * 500)
    assert check_database(str(letter)) == f"The file {letter} is not a database"
    with pytest.raises(DatabaseRefused) as refused:
        open_database(str(letter))
    assert str(refused.value) == f"cannot open the database SQLite {letter}: the file {letter} is not a database"
    assert letter.read_text().startswith("Dear Ann")


def test_checking_a_sqlite_location_creates_nothing(tmp_path: Path) -> None:
    new = tmp_path / "clinic.sqlite3"
    assert check_database(str(new)) == f"There is no database at {new} yet"
    assert check_database(str(new), allow_new=True) is None
    assert check_database(f"sqlite:///{tmp_path}/missing/clinic.sqlite3", allow_new=True) == (
        f"The folder {tmp_path}/missing does not exist")
    assert check_database(str(tmp_path)) == f"{tmp_path} is a folder, not a database file"
    assert not new.exists()
    assert check_database("mysql://u@h/db") == "unsupported database 'mysql': use SQLite or PostgreSQL"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_postgresql_server_that_is_not_running_is_said_in_words() -> None:
    port = free_port()
    reason = check_database(f"postgresql+psycopg://clinic@127.0.0.1:{port}/clinic")
    assert reason is not None and reason.startswith(f"The PostgreSQL server at 127.0.0.1:{port} did not answer")
    assert not any(marker in reason for marker in PG_MARKERS) and "\n" not in reason


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A real TCP server that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    server.close()


def test_a_server_that_does_not_answer_is_given_up_on(silent_server: int) -> None:
    reason = check_database(f"postgresql+psycopg://clinic@127.0.0.1:{silent_server}/clinic", timeout=1)
    assert reason == f"The PostgreSQL server at 127.0.0.1:{silent_server} did not answer in time"


def test_an_unknown_server_name_is_said_in_words() -> None:
    reason = check_database("postgresql://clinic@nohost.invalid/clinic")
    assert reason == "The server name 'nohost.invalid' was not found"


def test_what_the_server_says_is_passed_on_without_driver_words() -> None:
    url = make_url("postgresql+psycopg://x:secret@db.example:5432/clinic")
    said = ('connection failed: connection to server at "10.0.0.5", port 5432 failed: '
            'FATAL:  password authentication failed for user "x"')
    assert reason_in_words(RuntimeError(said), url, name_server=True) == (
        'The PostgreSQL server at db.example:5432 refused: password authentication failed for user "x"')
    assert "secret" not in reason_in_words(RuntimeError(said), url)


@pytest.mark.postgres
def test_a_database_that_does_not_exist_on_a_running_server(pg_url: str) -> None:
    url = make_url(pg_url).set(database="nope_clinicflow")
    reason = check_database(url.render_as_string(hide_password=False))
    assert reason is not None and reason.endswith('database "nope_clinicflow" does not exist')
    assert reason.startswith("The PostgreSQL server at ")
    assert check_database(pg_url) is None
