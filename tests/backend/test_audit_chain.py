"""The audit trail is tamper-evident: each row's hash covers its content and the row before it; `audit verify`
walks the chain and names the first row edited, deleted, cut off or slipped in once the triggers are gone."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, text
from sqlmodel import select

from backend.audit_chain import row_hash
from backend.models import AuditChainHead, AuditEntry
from schedules.changes import Actor, acting
from schedules.models import Site
from tests.conftest import PG_URL, utc
from tests.factories import make_participant
from tests.sms_helpers import fresh, inbound_params, post_signed, run_all_jobs, run_jobs_across

HOUR = timedelta(hours=1)
pytestmark = pytest.mark.audit_tampered  # these tests break the chain on purpose (see conftest)


def _verify(cli):
    result = cli.invoke(args=["audit", "verify"])
    return result.exit_code, result.output


def _drop_triggers(database) -> None:
    """What anyone owning the tables can do: SQLite DROP TRIGGER; PostgreSQL DISABLE TRIGGER (rolled back after)."""
    with database.session() as s:
        if database.dialect == "sqlite":
            s.execute(text("DROP TRIGGER audit_entry_no_update"))
            s.execute(text("DROP TRIGGER audit_entry_no_delete"))
        else:
            s.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER USER"))


def _sql(database, statement: str, **params) -> None:
    with database.session() as s:
        s.execute(text(statement), params)


def _ids(database) -> list[int]:
    with fresh(database) as s:
        return list(s.exec(select(AuditEntry.id).order_by(AuditEntry.id)).all())


@pytest.fixture
def trail(app, session, clock, database):
    """An enrolled participant, a day of jobs and three SMS replies: a trail of a few hundred rows."""
    clock.move_to(utc("2026-03-01T10:00Z"))
    make_participant(session, language="en", first_dose=date(2026, 3, 1), now=utc("2026-03-01T10:00Z"))
    session.commit()
    client = app.test_client()
    run_jobs_across(app, clock, utc("2026-03-01T10:00Z"), utc("2026-03-01T12:00Z"), HOUR)
    for body in ("1", "V 4", "my arm is red and itchy"):
        assert post_signed(client, "/sms/inbound", inbound_params(body)).status_code == 200
    run_jobs_across(app, clock, utc("2026-03-01T13:00Z"), utc("2026-03-02T13:00Z"), 6 * HOUR)
    return _ids(database)


def test_a_trial_day_of_enrolment_sms_and_jobs_verifies_with_exit_0(trail, cli, database):
    code, output = _verify(cli)
    assert code == 0, output
    assert f"audit chain intact: {len(trail)} row(s) verified, the last is row {trail[-1]} with hash " in output
    with fresh(database) as s:
        rows = s.exec(select(AuditEntry).order_by(AuditEntry.id)).all()
        head = s.get(AuditChainHead, 1)
    assert {r.entity for r in rows} >= {"participant", "dose", "outboundmessage", "vasscore", "alert"}
    # Each row names the one before it and carries its hash; the head names the last.
    assert [r.prev_id for r in rows] == [None, *[r.id for r in rows[:-1]]]
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    assert (head.last_id, head.last_hash) == (rows[-1].id, rows[-1].hash)


def test_the_triggers_dropped_an_edited_row_is_named_exit_1(trail, cli, database):
    victim = trail[len(trail) // 2]
    _drop_triggers(database)
    _sql(database, "UPDATE audit_entry SET reason = 'nothing happened' WHERE id = :id", id=victim)
    code, output = _verify(cli)
    assert code == 1
    assert f"audit chain broken at row {victim}: content changed:" in output
    assert f"{trail.index(victim)} row(s) before it verified" in output


def test_an_edit_with_its_hash_recomputed_is_named_by_the_next_row(trail, cli, database):
    victim = trail[10]
    _drop_triggers(database)
    with fresh(database) as s:
        row = s.get(AuditEntry, victim)
        forged = {**row.model_dump(), "new_value": "forged"}
    forge = "UPDATE audit_entry SET new_value = 'forged', hash = :h WHERE id = :id"
    _sql(database, forge, h=row_hash(forged), id=victim)
    code, output = _verify(cli)
    assert code == 1
    assert f"audit chain broken at row {victim}: content changed: it was rewritten with a new hash" in output
    assert f"row {trail[11]} recorded the old one" in output


def test_a_deleted_row_is_named_as_missing(trail, cli, database):
    victim = trail[20]
    _drop_triggers(database)
    _sql(database, "DELETE FROM audit_entry WHERE id = :id", id=victim)
    code, output = _verify(cli)
    assert code == 1
    assert f"broken at row {victim}: row missing: row {trail[21]} follows row {victim}, which is gone" in output


def test_a_cut_off_tail_is_named_from_the_chain_head(trail, cli, database):
    _drop_triggers(database)
    _sql(database, "DELETE FROM audit_entry WHERE id >= :id", id=trail[-5])
    code, output = _verify(cli)
    assert code == 1
    assert f"broken at row {trail[-1]}: row missing: the chain head names row {trail[-1]} as the last" in output
    assert f"the rows end at {trail[-6]}" in output


def test_the_whole_trail_truncated_shows(trail, cli, database):
    _drop_triggers(database)
    _sql(database, "DELETE FROM audit_entry")
    code, output = _verify(cli)
    assert code == 1 and f"audit chain broken at row {trail[-1]}: row missing" in output


def test_a_row_slipped_in_after_the_chain_is_named(trail, cli, database):
    with fresh(database) as s:
        last = s.get(AuditEntry, trail[-1])
    forged = {**last.model_dump(), "id": trail[-1] + 1, "reason": "forged", "prev_id": last.id, "prev_hash": last.hash}
    forged["hash"] = row_hash(forged)
    with database.session() as s:
        s.execute(AuditEntry.__table__.insert().values(**forged))
    code, output = _verify(cli)
    assert code == 1
    assert f"audit chain broken at row {trail[-1] + 1}: link broken: it comes after row {trail[-1]}" in output


def test_the_chain_head_deleted_shows(trail, cli, database):
    _sql(database, "DELETE FROM audit_chain_head")
    code, output = _verify(cli)
    assert code == 1 and "audit chain broken at the chain head: chain head missing" in output


def test_a_chain_head_deleted_with_the_tail_still_shows_after_later_appends(trail, app, cli, database):
    _drop_triggers(database)
    _sql(database, "DELETE FROM audit_entry WHERE id >= :id", id=trail[-3])
    _sql(database, "DELETE FROM audit_chain_head")
    with database.session() as s, acting(s, Actor("staff", "1"), "a later change"):
        s.exec(select(Site)).first().name = "renamed"
    code, output = _verify(cli)
    assert code == 1
    assert f"audit chain broken at row {trail[-3]}: chain head missing: the chain head was deleted before" in output


def test_appends_after_a_deletion_still_show_it(trail, app, cli, database, clock):
    # The next append links to the row the head names, so later writes do not paper over a deleted tail.
    _drop_triggers(database)
    _sql(database, "DELETE FROM audit_entry WHERE id = :id", id=trail[-1])
    run_all_jobs(app)
    with database.session() as s, acting(s, Actor("staff", "1"), "a later change"):
        s.exec(select(Site)).first().name = "renamed"
    code, output = _verify(cli)
    assert code == 1 and f"audit chain broken at row {trail[-1]}: row missing" in output


# --- appending -----------------------------------------------------------------------------------------------------
def test_a_rolled_back_savepoint_takes_its_audit_rows_with_it(session, cli):
    site = Site(code="S1", name="one", time_zone="Asia/Shanghai")
    session.add(site)
    session.flush()
    try:
        with session.begin_nested(), acting(session, Actor("staff", "1"), "undone"):
            site.name = "undone"
            session.flush()
            raise RuntimeError
    except RuntimeError:
        pass
    with acting(session, Actor("staff", "1"), "kept"):
        site.phone = "+8601000000000"
    session.commit()
    reasons = session.exec(select(AuditEntry.reason).where(AuditEntry.entity == "site")).all()
    assert "kept" in reasons and "undone" not in reasons
    assert _verify(cli)[0] == 0


@pytest.mark.parametrize("how", ["session", "transaction"])
def test_a_commit_with_a_savepoint_still_open_writes_every_row(session, cli, how):
    transaction = session.begin()
    nested = session.begin_nested()
    with acting(session, Actor("staff", "1"), "inside"):
        session.add(Site(code="S2", name="two", time_zone="Asia/Shanghai"))
    session.commit() if how == "session" else transaction.commit()
    assert not nested.is_active
    assert session.exec(select(func.count()).where(AuditEntry.reason == "inside")).one() == 1
    assert _verify(cli)[0] == 0


def test_a_transaction_reads_its_own_audit_rows_before_commit(session):
    with acting(session, Actor("staff", "1"), "read back"):
        session.add(Site(code="S3", name="three", time_zone="Asia/Shanghai"))
    assert session.exec(select(AuditEntry).where(AuditEntry.reason == "read back")).one().entity == "site"


def _verified(database):
    from backend.audit_verify import verify_chain

    with database.reading() as s:
        report = verify_chain(s)
        count = s.exec(select(func.count()).select_from(AuditEntry)).one()
    return report, count


def _new_site(database, code: str) -> int:
    with database.session() as s, acting(s, Actor("staff", "1"), "set up"):
        site = Site(code=code, name=code, time_zone="Asia/Shanghai")
        s.add(site)
    return site.id


@pytest.mark.skipif(not PG_URL, reason="appends from several connections at once need PostgreSQL")
def test_concurrent_appends_from_threads_keep_one_valid_chain(committed):
    import threading

    start = threading.Barrier(8)
    errors = []

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(15):
                with committed.session() as s, acting(s, Actor("staff", str(n)), f"writer {n}, change {i}"):
                    s.add(Site(code=f"T{n}-{i}", name=f"site {i}", time_zone="Asia/Shanghai"))
                    s.flush()
                    s.add(Site(code=f"U{n}-{i}", name=f"site {i}", time_zone="Europe/Paris"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    report, count = _verified(committed)
    assert report.intact, report
    assert report.verified == count == 8 * 15 * 2


@pytest.mark.skipif(not PG_URL, reason="row locks across connections need PostgreSQL")
def test_two_writers_crossing_rows_both_commit_the_chain_waits_only_at_commit(committed):
    # A holds its first row and then needs B's; B flushes its row meanwhile. Were the chain locked at the first
    # flush, A would hold it while waiting for B's row, and B would wait for the chain: a deadlock.
    import threading

    first, second = _new_site(committed, "A"), _new_site(committed, "B")
    b_flushed, a_flushed = threading.Event(), threading.Event()
    outcome = {}

    def a() -> None:
        try:
            with committed.session() as s, acting(s, Actor("staff", "a"), "writer a"):
                s.execute(text("SET LOCAL lock_timeout = '10s'"))
                s.get(Site, first).name = "a1"
                s.flush()
                a_flushed.set()
                b_flushed.wait(10)
                s.get(Site, second).phone = "+8601000000001"  # waits for B's row until B commits
                s.flush()
            outcome["a"] = "committed"
        except Exception as exc:
            outcome["a"] = type(exc).__name__

    def b() -> None:
        try:
            a_flushed.wait(10)
            with committed.session() as s, acting(s, Actor("staff", "b"), "writer b"):
                s.execute(text("SET LOCAL lock_timeout = '10s'"))
                s.get(Site, second).name = "b1"
                s.flush()
                b_flushed.set()
                import time

                time.sleep(0.5)  # A is now waiting for this row
            outcome["b"] = "committed"
        except Exception as exc:
            b_flushed.set()
            outcome["b"] = type(exc).__name__

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcome == {"a": "committed", "b": "committed"}
    report, count = _verified(committed)
    assert report.intact and report.verified == count


def test_verify_holds_up_no_writer_while_it_reads(committed):
    # SQLite has one writer at a time: a verify that took the write lock would stall the app for its walk.
    import threading

    from backend.audit_verify import verify_chain

    _new_site(committed, "R")
    done = threading.Event()
    with committed.reading() as reading:
        assert verify_chain(reading).intact
        writer = threading.Thread(target=lambda: (_new_site(committed, "W"), done.set()))
        writer.start()
        writer.join(10)
        assert done.is_set()  # the write committed while the read was still open
    assert _verified(committed)[0].verified == 2


# --- the daily check -----------------------------------------------------------------------------------------------
def test_the_daily_job_opens_one_admin_alert_for_a_break_and_not_a_second(trail, app, client, session, database):
    from backend.runtime.jobs import run_job
    from schedules.models import Alert
    from tests.backend.test_pages import sign_in
    from tests.factories import auth, make_staff_token

    assert run_job(app, "verify_audit_chain").startswith(f"audit chain intact: {len(trail)} row(s) verified")
    victim = trail[7]
    _drop_triggers(database)
    _sql(database, "UPDATE audit_entry SET actor = 'staff:someone else' WHERE id = :id", id=victim)

    first, again = run_job(app, "verify_audit_chain"), run_job(app, "verify_audit_chain")

    assert first.startswith("admin alert ") and " opened: " in first and f"broken at row {victim}" in first
    assert " opened before: " in again
    with fresh(database) as s:
        alerts = s.exec(select(Alert).where(Alert.kind == "audit_chain_broken")).all()
        site = s.exec(select(Site)).first()
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.participant_id, alert.site_id, alert.priority, alert.ref_type, alert.ref_id) == (
        None,
        None,
        "high",
        "audit_entry",
        victim,
    )
    assert f"audit chain broken at row {victim}: content changed" in alert.summary
    # Admins see it in their queue, with no site; a site's nurse does not.
    admin, nurse = make_staff_token(session, role="admin"), make_staff_token(session, role="nurse", site=site)
    session.commit()
    shown = client.get("/api/v1/alerts", headers=auth(admin)).get_json()
    assert [(a["kind"], a["site"], a["participant_id"]) for a in shown if a["id"] == alert.id] == [
        ("audit_chain_broken", None, None)
    ]
    assert alert.id not in [a["id"] for a in client.get("/api/v1/alerts", headers=auth(nurse)).get_json()]
    assert client.get(f"/api/v1/alerts/{alert.id}", headers=auth(nurse)).status_code == 404
    assert client.get(f"/api/v1/alerts/{alert.id}", headers=auth(admin)).get_json()["summary"] == alert.summary
    sign_in(client, "admin-all@example.org")
    page = client.get("/alerts")
    assert page.status_code == 200 and "Audit chain broken" in page.text and f"broken at row {victim}" in page.text


def test_the_daily_job_is_listed_with_the_others(cli):
    listed = cli.invoke(args=["jobs", "list"]).output
    assert "verify_audit_chain       every 86400s" in listed


# --- the migration -------------------------------------------------------------------------------------------------
def test_the_migration_chains_the_rows_already_there_in_id_order(tmp_path):
    from backend import migrate
    from backend.app import create_app
    from backend.db import get_database
    from tests.conftest import fresh_database_url, test_settings

    with fresh_database_url(tmp_path) as url:
        app = create_app(test_settings(url, INSTANCE_DIR=str(tmp_path)))
        migrate.upgrade(app, "0009_sign_in_lock")
        engine = get_database(app).engine
        with engine.begin() as conn:  # rows as the code before the chain wrote them, with a gap in the ids
            for i in (1, 2, 3, 5, 8):
                conn.execute(
                    text(
                        "INSERT INTO audit_entry (id, at, actor, source, action, entity, entity_id, field, new_value,"
                        " reason) VALUES (:id, :at, 'cli:op', 'cli', 'create', 'site', :id, '*', :value, '')"
                    ),
                    {
                        "id": i,
                        "at": utc("2026-02-01T00:00Z") + timedelta(seconds=i, microseconds=7),
                        "value": '{"x": "中"}',
                    },
                )
        migrate.upgrade(app)
        cli = app.test_cli_runner()
        code, output = _verify(cli)
        assert code == 0, output
        assert "5 row(s) verified, the last is row 8" in output
        # New rows carry on from the last old one.
        with get_database(app).session() as s, acting(s, Actor("staff", "1"), "after the migration"):
            s.add(Site(code="N", name="new", time_zone="Asia/Shanghai"))
        with get_database(app).session() as s:
            new = s.exec(select(AuditEntry).where(AuditEntry.reason == "after the migration")).one()
        assert (new.id, new.prev_id) == (9, 8)
        assert _verify(cli)[0] == 0
        # The append-only triggers are back after the migration rewrote the rows.
        with pytest.raises(Exception, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text("UPDATE audit_entry SET reason = 'x' WHERE id = 1"))
        engine.dispose()


# --- a rebuilt chain -----------------------------------------------------------------------------------------------
CHANGED = "reason = :reason, prev_hash = :prev_hash, hash = :hash"


def _rebuild_from(database, start: int) -> None:
    """The forger's best: edit a row, then recompute every hash after it and the head, all consistent."""
    with fresh(database) as s:
        rows = [r.model_dump() for r in s.exec(select(AuditEntry).order_by(AuditEntry.id)).all()]
    prev = None
    with database.session() as s:
        for row in rows:
            if row["id"] == start:
                row["reason"] = "rewritten history"
            if row["id"] >= start:
                row["prev_hash"] = prev["hash"]
                row["hash"] = row_hash(row)
                s.execute(
                    text(f"UPDATE audit_entry SET {CHANGED} WHERE id = :id"),
                    row,
                )
            prev = row
        s.execute(text("UPDATE audit_chain_head SET last_hash = :h"), {"h": prev["hash"]})


def test_a_row_noted_outside_shows_a_rebuilt_chain_that_verifies_by_itself(trail, cli, database):
    code, output = _verify(cli)
    note = output.split("--known ")[1].strip()
    assert code == 0 and note.startswith(f"{trail[-1]}:")
    assert cli.invoke(args=["audit", "verify", "--known", note]).exit_code == 0
    _drop_triggers(database)
    _rebuild_from(database, trail[3])
    assert _verify(cli)[0] == 0  # consistent in itself: only a hash kept elsewhere tells
    result = cli.invoke(args=["audit", "verify", "--known", note])
    assert result.exit_code == 1
    assert f"broken at row {trail[-1]}: content changed: its hash is not the one noted earlier" in result.output
    bad = cli.invoke(args=["audit", "verify", "--known", "12:abc"])
    assert bad.exit_code == 2 and "ROW:HASH" in bad.output


def test_the_canonical_text_is_json_with_sorted_keys(trail, database):
    import json

    from backend.audit_chain import CONTENT, canonical, utc_text

    with fresh(database) as s:
        rows = s.exec(select(AuditEntry).order_by(AuditEntry.id)).all()
    for row in rows:
        content = {key: getattr(row, key) for key in CONTENT} | {"at": utc_text(row.at)}
        assert canonical(row.model_dump()) == json.dumps(content, sort_keys=True, separators=(",", ":"))
    assert any("\\u" in canonical(r.model_dump()) for r in rows)  # the participant's Chinese texts, escaped
