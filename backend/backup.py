"""Back up the configured database to one file: pg_dump's custom format, or SQLite's online backup.

The phone keys are not in the backup (they must never sit next to the data they protect); restoring
needs both. README, "Backup and restore", says how to restore.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupRefused(ValueError):
    """A PATH a backup cannot be written to; the message says why."""


class BackupFailed(RuntimeError):
    """The database could not be copied (no pg_dump, pg_dump refused, SQLite error); the message says why."""


@dataclass(frozen=True)
class Backup:
    """A finished backup: where it is, its size, and what kind of file it is."""

    path: Path
    size: int
    kind: str
    database: str


def back_up(url: str, destination: str | os.PathLike) -> Backup:
    """Write a consistent copy of the database at `url` to `destination`, a new file in an existing directory."""
    target = Path(destination).expanduser().absolute()
    if target.exists():
        raise BackupRefused(f"{target} exists already; a backup never overwrites a file, choose a new name")
    if not target.parent.is_dir():
        raise BackupRefused(f"the directory {target.parent} does not exist; create it or choose another PATH")
    parsed = make_url(url)
    # Written beside the target, then linked into place: a failed or interrupted backup leaves no
    # half-written file under the name, and a file that appeared meanwhile is not overwritten.
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        # Mode 600 from the start: the copy holds personal data (ciphertexts, message texts, the audit trail).
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise BackupRefused(f"cannot write in {target.parent}: {exc.strerror}") from None
    try:
        if parsed.get_backend_name() == "sqlite":
            kind, name = "SQLite database file", _sqlite_backup(parsed.database or "", partial)
        elif parsed.get_backend_name() == "postgresql":
            kind, name = "pg_dump custom-format archive", _pg_dump(parsed, partial)
        else:
            raise BackupFailed(f"cannot back up a {parsed.get_backend_name()} database (PostgreSQL or SQLite only)")
        try:
            os.link(partial, target)
        except FileExistsError:
            raise BackupRefused(f"{target} appeared while the backup ran; nothing was overwritten") from None
    finally:
        partial.unlink(missing_ok=True)
    return Backup(path=target, size=target.stat().st_size, kind=kind, database=name)


def _sqlite_backup(database: str, partial: Path) -> str:
    """SQLite's online backup API: a consistent snapshot while the app keeps writing (WAL readers never block)."""
    source_path = Path(database)
    if not database or database == ":memory:" or not source_path.is_file():
        raise BackupFailed(f"the database file {source_path.absolute()} does not exist")
    source = sqlite3.connect(f"{source_path.absolute().as_uri()}?mode=ro", uri=True)
    target = sqlite3.connect(partial)
    try:
        source.backup(target)
        # One self-contained file to copy back: no -wal file beside it.
        target.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise BackupFailed(f"SQLite could not back up {source_path.absolute()}: {exc}") from None
    finally:
        target.close()
        source.close()
    return str(source_path.absolute())


def _pg_dump(parsed, partial: Path) -> str:
    """pg_dump --format=custom of the database (one consistent snapshot, taken while the app runs)."""
    binary = shutil.which("pg_dump")
    if binary is None:
        raise BackupFailed(
            "pg_dump is not installed; install the PostgreSQL client of the server's major version or newer "
            "(Debian: apt-get install postgresql-client)"
        )
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = parsed.password  # not on the command line, where `ps` would show it
    conninfo = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    done = subprocess.run(
        [binary, "--format=custom", "--no-password", f"--file={partial}", f"--dbname={conninfo}"],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupFailed(f"pg_dump failed: {reason}")
    return f"{parsed.database} on {parsed.host or 'localhost'}:{parsed.port or 5432}"
