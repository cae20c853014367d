"""Least privilege on PostgreSQL: `db upgrade` runs as the owner role and grants the runtime role the app's
privileges; as the runtime role the app does its normal work, and cannot disable the audit trail's triggers,
truncate it, or update or delete its rows. Each test makes its own roles and database and drops them."""

from __future__ import annotations

import subprocess
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from backend import migrate
from backend.app import create_app
from backend.backup import back_up
from backend.db_roles import APPEND_ONLY_TABLES, audit_privilege_problem
from backend.extensions import set_sender
from backend.runtime.scheduler import ADVISORY_LOCK_KEY, leadership
from notifications.senders import RecordingSmsSender
from tests import conftest
from tests.conftest import PG_URL, utc
from tests.factories import STRONG_PASSWORD, auth, make_participant, make_site, make_staff_token, make_study
from tests.sms_helpers import PHONE, inbound_params, post_signed, reply_text, run_all_jobs

pytestmark = pytest.mark.skipif(not PG_URL, reason="roles are PostgreSQL's (set TEST_DATABASE_URL)")


@dataclass(frozen=True)
class Roles:
    """A database owned by `owner`, and the URLs to reach it as the owner, the runtime role and the server's admin."""

    owner: str
    runtime: str
    name: str

    def url(self, user: str, database: str | None = None) -> str:
        """The URL of this (or another) database on the test server, as `user`."""
        return make_url(PG_URL).set(username=user, database=database or self.name).render_as_string(False)

    @property
    def owner_url(self) -> str:
        return self.url(self.owner)

    @property
    def runtime_url(self) -> str:
        return self.url(self.runtime)

    @property
    def admin_url(self) -> str:
        return self.url(make_url(PG_URL).username)


@contextmanager
def two_roles(*, database_owned_by: str = "owner"):
    """New owner and runtime roles (unique names: roles are shared by the whole server) and a database owned by
    one of them; all dropped afterwards, also when the test fails."""
    suffix = uuid.uuid4().hex[:10]
    roles = Roles(f"tc_owner_{suffix}", f"tc_runtime_{suffix}", f"tc_roles_{suffix}")
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    created: list[str] = []
    try:
        with admin.connect() as conn:
            for role in (roles.owner, roles.runtime):
                conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
                created.append(role)
        with scratch_database(roles, roles.name, owner=getattr(roles, database_owned_by)):
            yield roles
    finally:
        with admin.connect() as conn:
            for role in reversed(created):
                conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


@contextmanager
def scratch_database(roles: Roles, name: str, *, owner: str):
    """A new database of this test, owned by `owner`, dropped afterwards (its connections ended: only its own)."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{owner}"'))
        try:
            yield roles.url(roles.runtime, name)
        finally:
            with admin.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"
                        " AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        admin.dispose()


def _runtime_app(roles: Roles, tmp_path, **extra):
    """The app as every process but the migrations runs it: on the runtime role's URL."""
    app = create_app(
        conftest.test_settings(
            roles.runtime_url, INSTANCE_DIR=str(tmp_path), MIGRATION_DATABASE_URL=roles.owner_url, **extra
        )
    )
    set_sender(app, RecordingSmsSender())
    return app


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """One owner/runtime pair for the module's refusal tests, migrated by `db upgrade` as the owner, with audit rows
    the runtime role wrote."""
    tmp = tmp_path_factory.mktemp("roles")
    with two_roles() as roles:
        app = _runtime_app(roles, tmp)
        assert migrate.upgrade(app) == roles.runtime
        database = app.extensions["database"]
        with database.session() as session:
            make_site(session)  # audited: the runtime role adds to the trail
        database.engine.dispose()
        yield roles


def _audit_rows(url: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text("SELECT * FROM audit_entry ORDER BY id"))]
    finally:
        engine.dispose()


TAMPERING = {
    "disable user triggers": "ALTER TABLE audit_entry DISABLE TRIGGER USER",
    "disable all triggers": "ALTER TABLE audit_entry DISABLE TRIGGER ALL",
    "drop a trigger": "DROP TRIGGER audit_entry_no_update ON audit_entry",
    "truncate": "TRUNCATE audit_entry",
    "update": "UPDATE audit_entry SET reason = 'forged'",
    "delete": "DELETE FROM audit_entry",
    "take ownership": "ALTER TABLE audit_entry OWNER TO CURRENT_USER",
    "drop the table": "DROP TABLE audit_entry",
    "replace the trigger function": (
        "CREATE OR REPLACE FUNCTION audit_entry_refuse() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RETURN NULL; END $$"
    ),
    "create a table": "CREATE TABLE audit_entry_copy (id integer)",
}


@pytest.mark.parametrize("statement", TAMPERING.values(), ids=TAMPERING.keys())
def test_the_runtime_role_is_refused_every_way_of_changing_the_audit_trail(migrated, statement):
    before = _audit_rows(migrated.runtime_url)
    assert before, "the runtime role wrote no audit row to tamper with"
    engine = create_engine(migrated.runtime_url)
    try:
        with engine.connect() as conn, pytest.raises(ProgrammingError) as refused:
            conn.execute(text(statement))
            conn.commit()
    finally:
        engine.dispose()
    # Refused for want of a privilege (42501), not stopped later by a trigger the next statement could disable.
    assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege), refused.value.orig
    assert _audit_rows(migrated.runtime_url) == before


PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES")


def _privileges(conn, role: str, table: str) -> set[str]:
    return {
        privilege
        for privilege in PRIVILEGES
        if conn.execute(
            text("SELECT has_table_privilege(:r, :t, :p)"), {"r": role, "t": table, "p": privilege}
        ).scalar()
    }


def test_the_runtime_role_may_add_to_the_audit_trail_and_read_it_but_holds_nothing_more(migrated):
    admin = create_engine(migrated.admin_url)
    try:
        with admin.connect() as conn:
            append_only = {table: _privileges(conn, migrated.runtime, table) for table in APPEND_ONLY_TABLES}
            # Every other table: the app's four verbs, never TRUNCATE or TRIGGER; the schema revision read only.
            others = {
                table: _privileges(conn, migrated.runtime, table)
                for table in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
                if table not in APPEND_ONLY_TABLES
            }
            owners = set(
                conn.execute(text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")).scalars()
            )
    finally:
        admin.dispose()
    # The audit trail and the adverse-event signatures and signed versions: added to and read, never rewritten.
    assert set(APPEND_ONLY_TABLES) >= {"audit_entry", "ae_signature", "ae_version"}
    assert append_only == {table: {"INSERT", "SELECT"} for table in APPEND_ONLY_TABLES}
    assert others.pop("alembic_version") == {"SELECT"}
    assert "outboundmessage" in others and "participant" in others
    assert {
        table: grants for table, grants in others.items() if grants != {"SELECT", "INSERT", "UPDATE", "DELETE"}
    } == {}
    assert owners == {migrated.owner}


def test_the_processes_check_says_the_runtime_role_is_right_and_the_owner_or_a_superuser_is_not(migrated):
    for url, expected in (
        (migrated.runtime_url, None),
        (migrated.owner_url, f"the database role '{migrated.owner}' owns audit_entry and may disable its triggers"),
        (migrated.admin_url, "is a superuser and may rewrite the audit trail"),
    ):
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                problem = audit_privilege_problem(conn)
        finally:
            engine.dispose()
        if expected is None:
            assert problem is None
        else:
            assert problem is not None and expected in problem and "README, Database roles" in problem


def test_in_production_readyz_refuses_an_app_running_as_the_owner(migrated, tmp_path):
    for url, status in ((migrated.runtime_url, 200), (migrated.owner_url, 503)):
        settings = conftest.test_settings(url, INSTANCE_DIR=str(tmp_path))
        app = create_app(replace(settings, APP_ENV="production"))
        try:
            response = app.test_client().get("/readyz")
        finally:
            app.extensions["database"].engine.dispose()
        assert response.status_code == status, response.get_json()
        if status == 503:
            assert "owns audit_entry" in response.get_json()["role"]


def test_the_apps_normal_work_succeeds_as_the_runtime_role(tmp_path, clock):
    clock.move_to(utc("2026-03-01T11:00Z"))
    with two_roles() as roles:
        app = _runtime_app(roles, tmp_path)
        database = app.extensions["database"]
        try:
            result = app.test_cli_runner().invoke(args=["db", "upgrade"])
            assert result.exit_code == 0, result.output
            assert f"runtime role {roles.runtime}" in result.output
            now = utc("2026-03-01T11:00Z")
            # Enrol: the study, a site, staff and a participant whose first reminder (20:00 Shanghai) is due at 12:00Z.
            with database.session() as session:
                study = make_study(session, now=now)
                site = make_site(session)
                make_participant(session, study=study, site=site, first_dose=date(2026, 3, 1), now=now)
                token = make_staff_token(session, site=site, email="nurse@example.org", now=now)
            client = app.test_client()
            wrong = client.post("/api/v1/auth/token", json={"email": "nurse@example.org", "password": "not-it-at-all"})
            right = client.post("/api/v1/auth/token", json={"email": "nurse@example.org", "password": STRONG_PASSWORD})
            assert (wrong.status_code, right.status_code) == (401, 201)
            assert client.get("/api/v1/participants", headers=auth(token)).status_code == 200

            clock.move_to(utc("2026-03-01T12:00Z"))
            summaries = run_all_jobs(app)
            assert any(line.startswith("claimed 1, sent 1") for line in summaries), summaries

            reply = post_signed(client, "/sms/inbound", inbound_params("1", sender=PHONE))
            assert reply.status_code == 200 and reply_text(reply), reply.data
            run_all_jobs(app)

            with leadership(app, poll_seconds=0.05) as still_leader:
                assert still_leader()
                with database.engine.connect() as other:
                    holder = other.execute(
                        text(
                            "SELECT a.usename FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                            " WHERE l.locktype = 'advisory' AND l.objid = :k AND l.granted"
                            # pg_locks shows the whole server: other runs' schedulers hold the same key elsewhere.
                            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                        ),
                        {"k": ADVISORY_LOCK_KEY},
                    ).scalar()
                assert holder == roles.runtime

            backup = back_up(roles.runtime_url, tmp_path / "trial.backup")  # pg_dump reads as the runtime role
            assert backup.size > 0

            with database.engine.connect() as conn:
                assert conn.execute(text("SELECT current_user")).scalar() == roles.runtime
                kinds = set(conn.execute(text("SELECT DISTINCT entity FROM audit_entry")).scalars())
            assert {"participant", "site"} <= kinds, kinds
        finally:
            database.engine.dispose()


def test_db_upgrade_refuses_a_runtime_role_that_owns_tables_and_migrates_nothing(tmp_path):
    with two_roles() as roles:
        admin = create_engine(roles.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(
                    text(f'CREATE TABLE leftover (id integer); ALTER TABLE leftover OWNER TO "{roles.runtime}"')
                )
            app = _runtime_app(roles, tmp_path)
            result = app.test_cli_runner().invoke(args=["db", "upgrade"])
            app.extensions["database"].engine.dispose()
            assert result.exit_code == 1
            assert f"the runtime role '{roles.runtime}' owns leftover" in result.output
            assert "nothing was migrated" in result.output
            with admin.connect() as conn:
                assert conn.execute(text("SELECT to_regclass('alembic_version')")).scalar() is None
        finally:
            admin.dispose()


def _refusals(url: str) -> dict[str, str]:
    """What each of the acceptance's four statements got as the role of `url`: the error class, or 'allowed'."""
    outcome = {}
    engine = create_engine(url)
    try:
        for name in ("disable user triggers", "truncate", "update", "delete"):
            with engine.connect() as conn:
                try:
                    conn.execute(text(TAMPERING[name]))
                    outcome[name] = "allowed"
                except ProgrammingError as exc:
                    outcome[name] = type(exc.orig).__name__
                conn.rollback()
    finally:
        engine.dispose()
    return outcome


REFUSED = dict.fromkeys(("disable user triggers", "truncate", "update", "delete"), "InsufficientPrivilege")


def test_in_production_the_dispatcher_will_not_start_as_the_owner(migrated, tmp_path):
    for url, code in ((migrated.runtime_url, 0), (migrated.owner_url, 1)):
        app = create_app(replace(conftest.test_settings(url, INSTANCE_DIR=str(tmp_path)), APP_ENV="production"))
        set_sender(app, RecordingSmsSender())
        try:
            with app.app_context():  # as `flask` gives every command
                result = app.test_cli_runner().invoke(args=["dispatch", "--once"])
        finally:
            app.extensions["database"].engine.dispose()
        assert result.exit_code == code, result.output
        if code:
            assert f"the database role '{migrated.owner}' owns audit_entry" in result.output


def test_the_readme_restore_gives_the_owner_the_tables_and_the_runtime_role_its_grants_again(tmp_path):
    with two_roles() as roles:
        app = _runtime_app(roles, tmp_path)
        migrate.upgrade(app)
        with app.extensions["database"].session() as session:
            make_site(session)
        app.extensions["database"].engine.dispose()
        backup = back_up(roles.runtime_url, tmp_path / "trial.backup")
        restored = f"{roles.name}_restored"
        with scratch_database(roles, restored, owner=roles.owner):
            done = subprocess.run(
                [
                    "pg_restore",
                    "--no-owner",
                    "--no-acl",
                    f"--role={roles.owner}",
                    "--exit-on-error",
                    f"--dbname={roles.url(make_url(PG_URL).username, restored).replace('+psycopg', '')}",
                    str(backup.path),
                ],
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stderr
            again = create_app(
                conftest.test_settings(
                    roles.url(roles.runtime, restored),
                    INSTANCE_DIR=str(tmp_path),
                    MIGRATION_DATABASE_URL=roles.url(roles.owner, restored),
                )
            )
            try:
                result = again.test_cli_runner().invoke(args=["db", "upgrade"])
                assert result.exit_code == 0, result.output
                with again.extensions["database"].engine.connect() as conn:
                    assert conn.execute(text("SELECT count(*) FROM audit_entry")).scalar() > 0
                    assert audit_privilege_problem(conn) is None
            finally:
                again.extensions["database"].engine.dispose()
            assert _refusals(roles.url(roles.runtime, restored)) == REFUSED


def test_the_readme_move_from_one_role_makes_the_old_role_the_runtime_role(tmp_path):
    with two_roles(database_owned_by="runtime") as roles:
        # Before: one role owns everything and the app runs as it; it may disable the triggers.
        single = create_app(conftest.test_settings(roles.runtime_url, INSTANCE_DIR=str(tmp_path)))
        migrate.upgrade(single)
        single.extensions["database"].engine.dispose()
        assert _refusals(roles.runtime_url)["disable user triggers"] == "allowed"
        admin = create_engine(roles.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'REASSIGN OWNED BY "{roles.runtime}" TO "{roles.owner}"'))
        finally:
            admin.dispose()
        app = _runtime_app(roles, tmp_path)
        try:
            result = app.test_cli_runner().invoke(args=["db", "upgrade"])
        finally:
            app.extensions["database"].engine.dispose()
        assert result.exit_code == 0, result.output
        assert _refusals(roles.runtime_url) == REFUSED
