"""Engine and session lifecycle: one session per request or job, committed once by its owner."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from flask import Flask, g
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from backend.audit import install_audit_listener

# The execution option of a reading session's connection (see Database.reading).
READ_ONLY = "trial_read_only"


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain postgresql:// URLs (the driver we ship)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and immediate write transactions."""
    url = normalize_url(url)
    # SQL errors then never carry bound values (phone ciphertexts, message bodies) into logs.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        _tune_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _tune_sqlite(engine: Engine) -> None:
    """WAL lets readers run beside the writer; BEGIN IMMEDIATE takes the write lock up front,
    so two writers queue on the busy timeout instead of deadlocking on a lock upgrade."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let us issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # A reading session (Database.reading) takes no write lock: its long read then holds up no writer.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


class Database:
    """The app's engine and session factory."""

    def __init__(self, url: str, **engine_kwargs):
        self.url = normalize_url(url)
        self.engine = make_engine(self.url, **engine_kwargs)
        self.sessions = sessionmaker(bind=self.engine, class_=Session, expire_on_commit=False)
        install_audit_listener()

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed once at the end of the block, rolled back on error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for a long read that writes nothing (audit verify): on SQLite it holds no write lock
        (a deferred BEGIN reads one snapshot beside the writer); rolled back at the end."""
        session = self.sessions()
        try:
            session.connection(execution_options={READ_ONLY: True})
            yield session
        finally:
            session.rollback()
            session.close()


def init_app(app: Flask, database: Database) -> None:
    """Attach the database: a lazily opened session per request, committed at teardown."""
    app.extensions["database"] = database

    @app.after_request
    def _commit(response):
        # Commit before the response leaves, so a client never sees 2xx for a lost write;
        # any 4xx/5xx rolls back: a refused request writes nothing.
        session = g.get("db_session")
        if session is not None:
            if response.status_code < 400 and not g.get("db_rollback"):
                session.commit()
            else:
                session.rollback()
        return response

    @app.teardown_request
    def _close(exc):
        session = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()


def get_database(app: Flask | None = None) -> Database:
    """The Database attached to the current (or given) app."""
    from flask import current_app

    return (app or current_app).extensions["database"]


def get_session() -> Session:
    """The request's session, opened on first use."""
    if "db_session" not in g:
        g.db_session = get_database().sessions()
    return g.db_session
