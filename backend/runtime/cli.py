"""The operator CLI: `flask --app wsgi <group> <command>` (names are a contract; see PRODUCT.md)."""

from __future__ import annotations

import json
import os
import socket
from datetime import date
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlmodel import select

from backend.config import settings_of
from backend.db import get_database
from backend.exports.run import EXPORTERS
from backend.exports.run import FORMATS as EXPORT_FORMATS
from backend.extensions import get_vault
from backend.identity.principal import UNMASKED
from backend.identity.security import WeakPassword, check_password_policy
from backend.identity.staff import create_staff
from backend.models import Role, Staff
from backend.runtime.cli_caller import ADMINS, REFUSED, USAGE, attribution_options, caller_for, fail
from schedules.adherence import adherence_of
from schedules.changes import Actor, acting
from schedules.dbtypes import utcnow
from schedules.errors import DomainError, NotPermitted
from schedules.models import Alert, AlertState, Participant
from schedules.protocol import SUPPORTED_LANGUAGES, ProtocolInvalid, load_protocol_file
from schedules.queries import doses_of
from schedules.sites import create_site, get_site
from schedules.studies import get_study, load_study

# Operator actions on the database as a whole (a backup, often from cron) name the OS user and the host;
# changes to the trial's data name a staff account instead (--as, backend/runtime/cli_caller.py).
OPERATOR = Actor("cli", os.environ.get("USER", "operator"))


def _session():
    return get_database(current_app).session()


db_cli = AppGroup("db", help="Database schema.")
protocol_cli = AppGroup("protocol", help="Trial protocol files.")
sites_cli = AppGroup("sites", help="Trial sites.")
staff_cli = AppGroup("staff", help="Staff accounts.")
participants_cli = AppGroup("participants", help="Participants.")
jobs_cli = AppGroup("jobs", help="Scheduled jobs: their last runs, or run them once now.")
audit_cli = AppGroup("audit", help="The audit trail.")


@db_cli.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision):
    """Create or migrate the schema."""
    from backend import migrate  # Alembic (~12 MB) only for the commands that need it
    from backend.db_roles import RolesProblem

    try:
        role = migrate.upgrade(current_app, revision)
    except RolesProblem as exc:
        raise click.ClickException(f"{exc}; nothing was migrated.") from None
    click.echo(f"database at {revision}")
    if role:
        click.echo(f"runtime role {role}: may read and write the app's tables, and only add to the audit trail")


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message):
    """Autogenerate a migration from the models (developers)."""
    from backend import migrate

    migrate.autogenerate(current_app, message)


@protocol_cli.command("load")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--check", is_flag=True, help="Validate only; load nothing (no --as or --reason needed).")
@attribution_options
def protocol_load(path, check, as_email, reason):
    """Validate and load a protocol file (an admin's change: --as EMAIL --reason TEXT)."""
    try:
        protocol = load_protocol_file(path)
    except ProtocolInvalid as exc:
        for line in exc.errors:
            click.echo(line, err=True)
        fail(f"{path} is not a valid protocol ({len(exc.errors)} problem(s)).")
    if check:
        click.echo(f"{path}: valid protocol for {protocol.study_code}")
        return
    with _session() as session:
        caller = caller_for(session, as_email, reason, roles=ADMINS, doing="loading a protocol")
        study = load_study(
            session, protocol=protocol, source_file=str(path), actor=caller.actor, reason=caller.reason, now=utcnow()
        )
        click.echo(f"loaded {study.code}: {protocol.title} (arms: {', '.join(protocol.arm_codes)})")


@sites_cli.command("create")
@click.option("--code", required=True)
@click.option("--name", required=True)
@click.option("--tz", "time_zone", required=True, help="IANA time zone, e.g. Asia/Shanghai")
@click.option("--on-call", "on_call", multiple=True, help="E.164 number of the on-call nurse (repeatable)")
@click.option("--phone", default="", help="The site's number participants may call (E.164)")
@click.option("--lang", "language", default="en", show_default=True, help="Its staff's page language: zh-CN or en")
@attribution_options
def sites_create(code, name, time_zone, on_call, phone, language, as_email, reason):
    """Create a site (an admin's change: --as EMAIL --reason TEXT)."""
    try:
        with _session() as session:
            caller = caller_for(session, as_email, reason, roles=ADMINS, doing="creating a site")
            site = create_site(
                session,
                code=code,
                name=name,
                time_zone=time_zone,
                on_call=list(on_call),
                phone=phone,
                language=language,
                vault=get_vault(),
                actor=caller.actor,
                reason=caller.reason,
            )
            click.echo(f"created site {site.code} ({site.time_zone}) with {len(on_call)} on-call number(s)")
    except DomainError as exc:
        fail(f"{exc.field or 'site'}: {exc.message}.")


@staff_cli.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--site", "site_code", default=None, help="Site code (required except for admins)")
@click.option("--lang", "language", default=None, help="Page language, zh-CN or en (default: the site's)")
@click.password_option(envvar="STAFF_PASSWORD", help="Password (prompted, or STAFF_PASSWORD)")
@attribution_options
def staff_create(email, role, site_code, language, password, as_email, reason):
    """Create a staff account (an admin's change: --as EMAIL --reason TEXT; no --as for the very first, an admin)."""
    if role != Role.ADMIN.value and not site_code:
        fail("--site is required for every role except admin.")
    if language is not None and language not in SUPPORTED_LANGUAGES:
        fail(f"--lang: {language!r} is not one of {', '.join(SUPPORTED_LANGUAGES)}.")
    try:
        check_password_policy(password, user_inputs=(email,))
    except WeakPassword as exc:
        fail(f"{exc}.")
    with _session() as session:
        caller = caller_for(session, as_email, reason, roles=ADMINS, doing="creating a staff account", bootstrap=True)
        if caller.staff is None and role != Role.ADMIN.value:
            fail("--role: no staff account exists yet, so the first one must be an admin (--role admin).")
        if session.exec(select(Staff).where(Staff.email == email.strip().lower())).first():
            fail(f"a staff account for {email} already exists.")
        try:
            site = get_site(session, site_code) if site_code else None
        except DomainError as exc:
            fail(f"{exc.message}.")
        create_staff(
            session,
            email=email,
            password=password,
            role=role,
            site=site,
            language=language,
            actor=caller.actor,
            reason=caller.reason,
        )
        made_by = f" (as {caller.email})" if caller.staff else " (the first account: bootstrap)"
        click.echo(f"created {role} {email}" + (f" at {site_code}" if site_code else "") + made_by)


@participants_cli.command("enroll")
@click.option("--study", required=True)
@click.option("--code", required=True)
@click.option("--arm", required=True)
@click.option("--site", "site_code", required=True)
@click.option("--phone", required=True)
@click.option("--tz", "time_zone", required=True)
@click.option("--lang", "language", default=None, help="zh-CN, en, ... (default: the protocol's default language)")
@click.option("--reminder-time", required=True, help="HH:MM local")
@click.option("--first-dose", required=True, help="YYYY-MM-DD")
@click.option("--no-sms-consent", is_flag=True)
@attribution_options
def participants_enroll(
    study, code, arm, site_code, phone, time_zone, language, reminder_time, first_dose, no_sms_consent, as_email, reason
):
    """Enroll a participant and generate their schedule (staff of the site or an admin: --as EMAIL --reason TEXT)."""
    from backend.operations.participants import enroll

    try:
        first = date.fromisoformat(first_dose)
    except ValueError:
        fail(f"--first-dose: {first_dose!r} is not a date in YYYY-MM-DD form.")
    try:
        with _session() as session:
            caller = caller_for(session, as_email, reason, roles=UNMASKED, doing="enrolling a participant")
            site = get_site(session, site_code)
            caller.check_site(session, site, "enrolling a participant")
            now = utcnow()
            participant = enroll(
                session,
                study=get_study(session, study),
                site=site,
                study_code=code,
                arm=arm,
                phone=phone,
                time_zone=time_zone,
                language=language,
                reminder_time=reminder_time,
                first_dose_date=first,
                sms_consent=not no_sms_consent,
                vault=get_vault(),
                actor=caller.actor,
                reason=caller.reason,
                now=now,
            )
            n = len(doses_of(session, participant.id))
            click.echo(
                f"enrolled {code} in {study} arm {arm}: {n} dose(s), follow-up until {participant.follow_up_end_date}"
            )
    except DomainError as exc:
        fail(f"{exc.field or 'participant'}: {exc.message}.")


def participant_report(session, participant: Participant) -> dict:
    """Everything `participants show` prints: participant, doses, adherence, open alerts."""
    from backend.web.api.report_schemas import ParticipantReportSchema

    doses = doses_of(session, participant.id)
    alerts = session.exec(
        select(Alert).where(Alert.participant_id == participant.id, Alert.state != AlertState.RESOLVED.value)
    ).all()
    return ParticipantReportSchema().dump(
        {
            "participant": participant,
            "doses": doses,
            "adherence": adherence_of(doses, now=utcnow(), enrolled_at=participant.enrolled_at),
            "open_alerts": alerts,
        }
    )


@participants_cli.command("show")
@click.argument("code")
@click.option("--study", default=None, help="Study code (needed only when several studies are loaded)")
@click.option("--json", "as_json", is_flag=True)
def participants_show(code, study, as_json):
    """Show a participant, every dose (UTC due time, state), adherence and open alerts."""
    with _session() as session:
        query = select(Participant).where(Participant.study_code == code)
        if study:
            query = query.where(Participant.study_id == get_study(session, study).id)
        matches = session.exec(query).all()
        if not matches:
            fail(f"no participant with code {code!r}.")
        if len(matches) > 1:
            fail(f"code {code!r} exists in several studies; pass --study.")
        report = participant_report(session, matches[0])
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    p, a = report["participant"], report["adherence"]
    click.echo(f"{p['study_code']} arm {p['arm']} ({p['status']}), {p['time_zone']}, reminders at {p['reminder_time']}")
    click.echo(f"adherence {a['adherence']} on-time {a['on_time_rate']} over {a['counted']} due dose(s)")
    for d in report["doses"]:
        click.echo(f"  #{d['seq']:>3} {d['local_date']} due {d['due_at']} {d['state']}")
    for alert in report["open_alerts"]:
        click.echo(f"  alert {alert['id']} [{alert['priority']}] {alert['kind']}: {alert['summary']}")


@jobs_cli.command("list")
def jobs_list():
    """List the scheduled jobs in their natural order, with each one's last success and whether it is late."""
    from backend.runtime.job_runs import allowed_silence, job_health
    from backend.runtime.jobs import JOBS, WATCHED_JOBS
    from schedules.dbtypes import utcnow

    watched = {job.name for job in WATCHED_JOBS}
    with _session() as session:
        health = {h.name: h for h in job_health(session, JOBS, now=utcnow())}
    late = 0
    for job in JOBS:
        h = health[job.name]
        last = f"{h.last_succeeded_at:%Y-%m-%d %H:%M:%S} UTC" if h.last_succeeded_at else "never"
        state = ""
        if h.failing:
            state = f"  LAST RUN FAILED ({h.last_error} at {h.last_failed_at:%Y-%m-%d %H:%M:%S} UTC)"
        if h.late and job.name in watched:
            late += 1
            state += f"  LATE (no success within {int(allowed_silence(job.every_seconds).total_seconds() // 60)} min)"
        click.echo(f"{job.name:24} every {job.every_seconds:>4}s  last success {last:23}  {job.description}{state}")
    if late:
        click.echo(
            f"{late} job(s) late: is the scheduler running? (`flask --app wsgi scheduler`, see infra/README.md)",
            err=True,
        )


@jobs_cli.command("run")
@click.argument("name", required=False)
@click.option("--all", "run_all", is_flag=True, help="Run every job once, in natural order.")
def jobs_run(name, run_all):
    """Run one job (or all with --all) now and print what it did."""
    from backend.runtime.jobs import BY_NAME, JOBS, run_job

    if run_all == bool(name):
        fail("give a job name or --all (see `jobs list`).")
    names = [job.name for job in JOBS] if run_all else [name]
    for job_name in names:
        if job_name not in BY_NAME:
            fail(f"no job named {job_name!r}; `jobs list` shows the names.")
        click.echo(f"{job_name}: {run_job(current_app._get_current_object(), job_name)}")


def _known_row(ctx, param, value):
    if value is None:
        return None
    row, _, digest = value.partition(":")
    if not row.isdigit() or len(digest) != 64 or digest.strip("0123456789abcdef"):
        raise click.BadParameter("give ROW:HASH as `audit verify` printed them, e.g. 1234:9f86d0…")
    return int(row), digest


@audit_cli.command("verify")
@click.option(
    "--known",
    callback=_known_row,
    metavar="ROW:HASH",
    help="A row and its hash noted earlier outside the database (from a past run): the chain must still hold it.",
)
def audit_verify(known):
    """Walk the audit trail's hash chain: exit 0 with the rows verified, or 1 naming the first broken row."""
    from backend.audit_verify import describe, verify_chain

    with get_database(current_app).reading() as session:
        report = verify_chain(session, known=known)
    if not report.intact:
        fail(f"{describe(report)}.", code=1)
    click.echo(describe(report))
    if report.last_id is not None:
        click.echo(
            "Note the last row outside the database; a later check that the whole chain was not rebuilt: "
            f"flask --app wsgi audit verify --known {report.last_id}:{report.last_hash}"
        )


def _keys_location(app: Flask) -> str:
    """Where the phone keys this process uses come from, for the operator to save them beside the backup."""
    settings = settings_of(app)
    keys_file = Path(settings.INSTANCE_DIR) / "keys.json"
    try:
        from_file = json.loads(keys_file.read_text()).get("PHONE_ENCRYPTION_KEY") == settings.PHONE_ENCRYPTION_KEY
    except (OSError, ValueError):
        from_file = False
    if from_file:
        return f"the keys file {keys_file}"
    return "the environment: SECRET_KEY, PHONE_ENCRYPTION_KEY and PHONE_HASH_KEY (wherever your deployment keeps them)"


@click.command("backup")
@click.argument("path")
@with_appcontext
def backup_command(path):
    """Back up the database to PATH, a new file (pg_dump custom format, or a SQLite copy); keys are not in it."""
    from backend.audit import record_operator_action
    from backend.backup import BackupFailed, BackupRefused, back_up

    app = current_app._get_current_object()
    try:
        made = back_up(get_database(app).url, path)
    except BackupRefused as exc:
        fail(f"PATH: {exc}.")
    except BackupFailed as exc:
        fail(f"no backup was made: {exc}.", code=1)
    with _session() as session, acting(session, OPERATOR, reason="backup"):
        detail = {"path": str(made.path), "host": socket.gethostname(), "bytes": made.size, "database": made.database}
        record_operator_action(session, action="backup", entity="database", entity_id="", detail=detail)
    click.echo(f"backed up {made.database} to {made.path} ({made.kind}, {made.size} bytes)")
    click.echo(
        f"The phone keys are NOT in the backup; they are in {_keys_location(app)}. Keep a copy of them apart from "
        "the backup: without them a restored database cannot match or message anyone (README, Backup and restore)."
    )


def _export_target(out: str, fmt: str) -> tuple[Path, bool]:
    """Where an export goes and whether it is a directory of CSV files; exit USAGE unless it is a new path in a
    writable directory (an export never overwrites anything)."""
    path = Path(out)
    if path.exists() or path.is_symlink():
        fail(f"--out: {out} already exists; an export never overwrites: give a new path.")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        fail(f"--out: the directory {parent} does not exist.")
    if not os.access(parent, os.W_OK | os.X_OK):
        fail(f"--out: the directory {parent} is not writable.")
    return path, fmt == "csv" and path.suffix.lower() != ".zip"


@click.command("export")
@click.option("--format", "fmt", required=True, type=click.Choice(EXPORT_FORMATS), help="csv, odm or fhir")
@click.option(
    "--out",
    required=True,
    metavar="PATH",
    help="A new path: a file (csv: PATH.zip for a zip, any other PATH for a directory of CSV files).",
)
@click.option("--site", "site_code", default=None, help="One site's participants only (default: all your sites)")
@click.option("--study", "study_code", default=None, help="Study code (needed only when several are loaded)")
@attribution_options
@with_appcontext
def export_command(fmt, out, site_code, study_code, as_email, reason):
    """Export the study's data, pseudonymised, and audit it (an investigator, an admin, or the masked assessor
    who gets the masked variant: --as EMAIL --reason TEXT)."""
    from backend.exports.csv_bundle import write_directory
    from backend.exports.run import build_export, record_export, render

    path, as_directory = _export_target(out, fmt)
    with _session() as session:
        caller = caller_for(session, as_email, reason, roles=EXPORTERS, doing="exporting the study's data")
        try:
            export = build_export(session, caller.staff, site_code=site_code, study_code=study_code, now=utcnow())
        except DomainError as exc:
            fail(f"--{exc.field or 'site'}: {exc.message}.", REFUSED if isinstance(exc, NotPermitted) else USAGE)
        try:
            if as_directory:
                write_directory(export, path)
            else:
                document = render(export, fmt)
                with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
                    for chunk in document.chunks:
                        file.write(chunk)
        except OSError as exc:
            fail(f"--out: cannot write {out}: {exc.strerror}.")
        record_export(session, export, fmt, actor=caller.actor, reason=caller.reason, destination=str(path.resolve()))
    counts = ", ".join(f"{name} {n}" for name, n in export.counts().items())
    variant = "masked variant" if export.masked else "full variant"
    click.echo(f"exported {export.study.code} ({variant}, sites {', '.join(export.site_codes)}) to {path}: {counts}")


def init_app(app: Flask) -> None:
    """Register the command groups."""
    from backend.runtime import processes as cli_runtime

    for group in (db_cli, protocol_cli, sites_cli, staff_cli, participants_cli, jobs_cli, audit_cli):
        app.cli.add_command(group)
    app.cli.add_command(backup_command)
    app.cli.add_command(export_command)
    cli_runtime.register(app)
