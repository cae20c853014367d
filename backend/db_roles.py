"""PostgreSQL's two roles: the owner migrates; the runtime role the processes use may only add to the audit trail.

`flask db upgrade` connects as the owner (MIGRATION_DATABASE_URL) and, after migrating, grants the runtime role
(DATABASE_URL's user) what the app needs, every time, so a table a migration adds is covered at once. Ownership
is what the runtime role must never have: an owner may `ALTER TABLE audit_entry DISABLE TRIGGER` whatever it was
granted, and a superuser ignores privileges altogether.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

# Tables the runtime role may only INSERT into and read. A new append-only table goes here, or the default
# privileges below let the app UPDATE and DELETE its rows (its triggers would be the only guard left).
APPEND_ONLY_TABLES = ("audit_entry", "ae_signature", "ae_version")
# Tables the runtime role reads and never writes: the schema revision (/readyz compares it with the release).
READ_ONLY_TABLES = ("alembic_version",)
# Every other table. No TRUNCATE, TRIGGER or REFERENCES anywhere: the app never needs them.
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
SEQUENCE_PRIVILEGES = "USAGE, SELECT"
_WRITES = "INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES"
_AUDIT_WRITES = "UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES"
SEE_README = "see README, Database roles"


class RolesProblem(RuntimeError):
    """The runtime role cannot be given least privilege (missing, a superuser, an owner); the message says why."""


def runtime_role(database_url: str, migration_url: str) -> str | None:
    """The role `db upgrade` grants to: DATABASE_URL's user, when the migrations connect as another (PostgreSQL)."""
    if not migration_url:
        return None
    runtime, owner = make_url(database_url), make_url(migration_url)
    if runtime.get_backend_name() != "postgresql" or owner.get_backend_name() != "postgresql":
        return None
    if runtime.username and runtime.username != owner.username:
        return runtime.username
    return None


def check_runtime_role(conn: Connection, role: str) -> None:
    """Raise RolesProblem unless `role` exists and holds no power beyond what grants give it (run as the owner)."""
    row = conn.execute(
        text(
            "SELECT r.rolsuper, pg_has_role(r.oid, current_user, 'MEMBER') AS acts_as_owner"
            " FROM pg_roles r WHERE r.rolname = :role"
        ),
        {"role": role},
    ).first()
    if row is None:
        raise RolesProblem(
            f"the runtime role {role!r} (the user of DATABASE_URL) does not exist; create it first ({SEE_README})"
        )
    if row.rolsuper:
        raise RolesProblem(f"the runtime role {role!r} is a superuser: no privilege binds it ({SEE_README})")
    if row.acts_as_owner:
        raise RolesProblem(
            f"the runtime role {role!r} is a member of the owner role {_current_user(conn)!r} and so may act as it;"
            f" revoke that membership ({SEE_README})"
        )
    owned = conn.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND pg_has_role(:role, c.relowner, 'MEMBER') ORDER BY 1 LIMIT 3"
        ),
        {"role": role},
    ).scalars()
    names = list(owned)
    if names:
        raise RolesProblem(
            f"the runtime role {role!r} owns {', '.join(names)}: an owner may disable the audit trail's triggers;"
            f" hand its tables to the owner role first ({SEE_README})"
        )


def grant_runtime(conn: Connection, role: str) -> None:
    """Give `role` the app's privileges on every table and sequence of the schema, now and for tables made later."""
    check_runtime_role(conn, role)
    quote = conn.dialect.identifier_preparer.quote
    schema = quote(conn.execute(text("SELECT current_schema()")).scalar_one())
    grantee = quote(role)
    for statement in (
        f"GRANT USAGE ON SCHEMA {schema} TO {grantee}",
        f"REVOKE CREATE ON SCHEMA {schema} FROM {grantee}",
        f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {schema} TO {grantee}",
        f"GRANT {SEQUENCE_PRIVILEGES} ON ALL SEQUENCES IN SCHEMA {schema} TO {grantee}",
        # Objects the owner creates later (a migration's new table) start with the same grants.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT {TABLE_PRIVILEGES} ON TABLES TO {grantee}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT {SEQUENCE_PRIVILEGES} ON SEQUENCES TO {grantee}",
    ):
        conn.execute(text(statement))
    present = set(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars())
    for table in READ_ONLY_TABLES:
        if table in present:
            conn.execute(text(f"REVOKE {_WRITES} ON {schema}.{quote(table)} FROM {grantee}"))
    for table in APPEND_ONLY_TABLES:
        if table in present:
            conn.execute(text(f"REVOKE {_AUDIT_WRITES} ON {schema}.{quote(table)} FROM {grantee}"))


def audit_privilege_problem(conn: Connection) -> str | None:
    """None when this connection's role can only add to the audit trail; else the sentence saying what it may do.

    PostgreSQL only (SQLite has no roles). A table not there yet is left to the migrations check."""
    if conn.dialect.name != "postgresql":
        return None
    user = _current_user(conn)
    if conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar():
        return f"the database role {user!r} is a superuser and may rewrite the audit trail; {_FIX}"
    for table in APPEND_ONLY_TABLES:
        row = conn.execute(
            text(
                "SELECT pg_has_role(current_user, c.relowner, 'MEMBER') AS owner,"
                " has_any_column_privilege(c.oid, 'UPDATE') AS update,"
                " has_table_privilege(c.oid, 'DELETE') AS delete,"
                " has_table_privilege(c.oid, 'TRUNCATE') AS truncate,"
                " has_table_privilege(c.oid, 'TRIGGER') AS trigger"
                " FROM pg_class c WHERE c.oid = to_regclass(:table)"
            ),
            {"table": table},
        ).first()
        if row is None:
            continue
        if row.owner:
            return f"the database role {user!r} owns {table} and may disable its triggers; {_FIX}"
        allowed = [name.upper() for name in ("update", "delete", "truncate", "trigger") if getattr(row, name)]
        if allowed:
            return f"the database role {user!r} may {', '.join(allowed)} on {table}; {_FIX}"
    return None


_FIX = f"run the app as the runtime role and migrate as the owner ({SEE_README})"


def _current_user(conn: Connection) -> str:
    return conn.execute(text("SELECT current_user")).scalar_one()
