"""Opening the practice database: migrations from empty, SQLite settings, locations that are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from app.store import DatabaseRefused, open_database
from app.store.database import check_sqlite_location, create_database, filesystem_type, head_revision, normalize_url

MOUNTS = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
/dev/sda1 / ext4 rw,relatime 0 0
fileserver:/export/clinic /mnt/clinic nfs4 rw,relatime,vers=4.2 0 0
//nas/share /srv/nas\\040share cifs rw,relatime 0 0
/dev/sdb1 /mnt/clinic/local ext4 rw,relatime 0 0
"""


def test_migrations_bring_an_empty_database_to_the_head_revision(db_url: str) -> None:
    db = open_database(db_url)
    try:
        with db.read() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
            assert conn.execute(text("SELECT count(*) FROM patients")).scalar() == 0
    finally:
        db.dispose()


def test_opening_a_current_database_again_keeps_its_data(db_url: str) -> None:
    from app.store.records import add_record, count_records

    db = open_database(db_url)
    with db.write() as conn:
        add_record(conn, "patient", {"first_name": "Ann", "last_name": "Smith"}, "ann")
    db.dispose()
    again = open_database(db_url)
    try:
        with again.read() as conn:
            assert count_records(conn, "patient") == 1
    finally:
        again.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_full_sync(sqlite_url: str) -> None:
    db = open_database(sqlite_url)
    try:
        with db.read() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        db.dispose()


def test_a_plain_file_path_is_a_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "practice.sqlite3"
    assert normalize_url(str(path)) == f"sqlite:///{path}"
    db = open_database(str(path))
    db.dispose()
    assert path.exists()


def test_postgres_urls_use_psycopg_3() -> None:
    assert normalize_url("postgresql://u@host/clinic") == "postgresql+psycopg://u@host/clinic"
    assert normalize_url("postgres://u@host/clinic") == "postgresql+psycopg://u@host/clinic"


def test_the_default_database_lives_in_the_user_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.store import default_database_url

    assert default_database_url().endswith("/clinicflow.sqlite3")
    assert str(Path.home()) in default_database_url()
    monkeypatch.setenv("CLINICFLOW_DATABASE_URL", f"sqlite:///{tmp_path}/x.sqlite3")
    assert default_database_url() == f"sqlite:///{tmp_path}/x.sqlite3"


def test_filesystem_type_takes_the_innermost_mount() -> None:
    assert filesystem_type(Path("/mnt/clinic/practice.sqlite3"), MOUNTS) == "nfs4"
    assert filesystem_type(Path("/mnt/clinic/local/practice.sqlite3"), MOUNTS) == "ext4"
    assert filesystem_type(Path("/srv/nas share/db.sqlite3"), MOUNTS) == "cifs"
    assert filesystem_type(Path("/home/ann/db.sqlite3"), MOUNTS) == "ext4"
    assert filesystem_type(Path("/mnt/clinicother/db.sqlite3"), MOUNTS) == "ext4"


@pytest.mark.parametrize("path, kind", [("/mnt/clinic/practice.sqlite3", "nfs4"), ("/srv/nas share/p.sqlite3", "cifs")])
def test_sqlite_on_a_network_file_system_is_refused_with_an_explanation(path: str, kind: str) -> None:
    with pytest.raises(DatabaseRefused) as caught:
        check_sqlite_location(Path(path), MOUNTS)
    message = str(caught.value)
    assert message.startswith(f"The database file {path} is on a network file system ({kind}).")
    assert "use PostgreSQL" in message and "\n" not in message


def test_sqlite_on_a_local_disk_is_accepted() -> None:
    check_sqlite_location(Path("/mnt/clinic/local/practice.sqlite3"), MOUNTS)
    check_sqlite_location(Path("/home/ann/practice.sqlite3"), MOUNTS)


@pytest.mark.parametrize("url, message", [
    ("sqlite://", "an in-memory SQLite database cannot be shared by the app and its runtime; give a file path"),
    ("sqlite:///:memory:", "an in-memory SQLite database cannot be shared by the app and its runtime; give a file path"),
    ("mysql://u@h/db", "unsupported database 'mysql': use SQLite or PostgreSQL"),
])
def test_unusable_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(DatabaseRefused) as caught:
        create_database(url)
    assert str(caught.value) == message


def test_an_unreachable_server_is_one_clear_line() -> None:
    with pytest.raises(DatabaseRefused) as caught:
        open_database("postgresql+psycopg://nobody@127.0.0.1:1/clinic")
    message = str(caught.value)
    assert message.startswith("cannot open the database PostgreSQL 127.0.0.1:1/clinic: ")
    assert "\n" not in message
