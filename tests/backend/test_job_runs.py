"""A stopped or failing scheduler is seen: job_run keeps each job's latest outcome; `jobs list`, /metrics and
the nurse pages say when the checks that flag missed doses and plan reminders have gone quiet."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from backend.models import JobRun
from backend.runtime.job_runs import LATE_FLOOR, allowed_silence, job_health, nurse_warnings
from backend.runtime.jobs import BY_NAME, WATCHED_JOBS, JobSpec, run_job
from notifications.models import OutboundMessage
from tests.backend.test_ops import _metric
from tests.backend.test_pages import sign_in, world  # noqa: F401 (fixture)
from tests.conftest import utc
from tests.factories import make_participant

NOW = utc("2026-03-06T06:00Z")  # the pages' world fixture's time


def _rows(session) -> dict[str, JobRun]:
    session.expire_all()
    return {row.name: row for row in session.exec(select(JobRun)).all()}


def _run_watched(app):
    for job in WATCHED_JOBS:
        run_job(app, job.name)


def test_a_job_run_keeps_when_it_succeeded_and_what_it_said(app, session, clock):
    clock.move_to(NOW)
    summary = run_job(app, "plan_messages")

    row = _rows(session)["plan_messages"]
    assert row.last_succeeded_at == NOW and row.last_finished_at == NOW
    assert row.last_summary == summary and row.last_failed_at is None and row.last_error == ""


def test_a_failing_job_is_recorded_by_its_exception_class_and_still_raises(app, session, clock, monkeypatch):
    clock.move_to(NOW)
    run_job(app, "flag_missed_doses")
    clock.shift(120)

    def broken(_app):
        raise RuntimeError("secret detail from +8613800000000")

    monkeypatch.setitem(BY_NAME, "flag_missed_doses", JobSpec("flag_missed_doses", broken, 60, "broken"))
    with pytest.raises(RuntimeError):
        run_job(app, "flag_missed_doses")

    row = _rows(session)["flag_missed_doses"]
    assert row.last_error == "RuntimeError" and "8613800000000" not in row.last_error + row.last_summary
    assert row.last_failed_at == NOW + timedelta(seconds=120) and row.last_succeeded_at == NOW
    health = {h.name: h for h in job_health(session, WATCHED_JOBS, now=NOW + timedelta(seconds=120))}
    assert health["flag_missed_doses"].failing and not health["flag_missed_doses"].late


def test_a_repeated_success_is_written_at_most_every_30_seconds(app, session, clock):
    clock.move_to(NOW)
    run_job(app, "dispatch_outbox")
    clock.shift(10)
    run_job(app, "dispatch_outbox")
    assert _rows(session)["dispatch_outbox"].last_succeeded_at == NOW  # the poll 10 s later wrote nothing
    clock.shift(25)
    run_job(app, "dispatch_outbox")
    assert _rows(session)["dispatch_outbox"].last_succeeded_at == NOW + timedelta(seconds=35)


def test_a_job_is_late_after_three_intervals_but_never_sooner_than_ten_minutes(session):
    assert allowed_silence(60) == LATE_FLOOR == timedelta(minutes=10)
    assert allowed_silence(900) == timedelta(minutes=45)
    session.add(JobRun(name="flag_missed_doses", last_finished_at=NOW, last_succeeded_at=NOW))
    session.add(JobRun(name="send_daily_digest", last_finished_at=NOW, last_succeeded_at=NOW))
    session.commit()

    def late_at(minutes):
        return {h.name: h.late for h in job_health(session, WATCHED_JOBS, now=NOW + timedelta(minutes=minutes))}

    assert late_at(10)["flag_missed_doses"] is False and late_at(11)["flag_missed_doses"] is True
    assert late_at(44)["send_daily_digest"] is False and late_at(46)["send_daily_digest"] is True
    assert late_at(0)["plan_messages"] is True  # never ran


def test_nurses_see_a_warning_when_the_checks_stopped_and_none_once_they_run(app, client, world, clock):  # noqa: F811
    sign_in(client, "nurse-a@example.org")
    never = client.get("/").text
    assert 'role="alert"' in never and "The automatic checks have not run yet:" in never
    assert "Missed doses are not being flagged" in never

    _run_watched(app)
    assert "automatic checks" not in client.get("/").text
    assert "automatic checks" not in client.get("/alerts").text

    clock.shift(3 * 3600 + 5 * 60)
    stale = client.get("/alerts").text
    assert "The automatic checks have not run for 3 h 5 min:" in stale


def test_the_login_page_says_nothing_about_the_system(client, world):  # noqa: F811
    assert "automatic checks" not in client.get("/login").text


def test_nurses_see_a_warning_when_due_messages_wait_more_than_15_minutes(app, client, world, session, clock):  # noqa: F811
    # The checks ran (recorded without running them, so that planning adds no messages of its own).
    session.add_all([JobRun(name=job.name, last_finished_at=NOW, last_succeeded_at=NOW) for job in WATCHED_JOBS])
    participant = make_participant(session, code="A-009", phone="+8613800000019", now=NOW)
    due = NOW - timedelta(minutes=14)
    session.add(
        OutboundMessage(
            participant_id=participant.id,
            site_id=participant.site_id,
            purpose="dose_reminder",
            dedupe_key="late:1",
            body="x",
            due_at=due,
            next_attempt_at=due,
            status="planned",
        )
    )
    session.commit()
    sign_in(client, "nurse-a@example.org")
    assert "waiting to be sent" not in client.get("/").text

    clock.shift(2 * 60)
    page = client.get("/").text
    assert "1 message has been waiting to be sent for 16 min:" in page and "going out late" in page


def test_nurse_warnings_are_empty_when_all_is_well(app, session, clock):
    clock.move_to(NOW)
    _run_watched(app)
    assert nurse_warnings(session, WATCHED_JOBS, now=NOW + timedelta(minutes=5)) == []


def test_metrics_say_which_jobs_are_late_or_failing_and_when_they_last_succeeded(app, client, clock):
    clock.move_to(NOW)
    before = client.get("/metrics").get_data(as_text=True)
    assert _metric(before, 'trial_job_late{job="flag_missed_doses"}') == 1
    assert 'trial_job_last_success_timestamp_seconds{job="flag_missed_doses"}' not in before
    assert (
        'job="dispatch_outbox"' not in before.split("# HELP trial_job_late")[1]
    )  # sending is watched by the outbox's age

    run_job(app, "flag_missed_doses")
    after = client.get("/metrics").get_data(as_text=True)
    assert _metric(after, 'trial_job_late{job="flag_missed_doses"}') == 0
    assert _metric(after, 'trial_job_failing{job="flag_missed_doses"}') == 0
    assert _metric(after, 'trial_job_last_success_timestamp_seconds{job="flag_missed_doses"}') == NOW.timestamp()


def test_jobs_list_shows_each_jobs_last_success_and_which_are_late(app, cli, clock):
    clock.move_to(NOW)
    run_job(app, "flag_missed_doses")
    clock.shift(11 * 60)
    run_job(app, "plan_messages")

    result = cli.invoke(args=["jobs", "list"])

    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "last success 2026-03-06 06:00:00 UTC" in lines["flag_missed_doses"] and "LATE" in lines["flag_missed_doses"]
    assert "last success 2026-03-06 06:11:00 UTC" in lines["plan_messages"] and "LATE" not in lines["plan_messages"]
    assert "last success never" in lines["purge_expired_records"] and "LATE" in lines["purge_expired_records"]
    assert "last success never" in lines["dispatch_outbox"] and "LATE" not in lines["dispatch_outbox"]
    assert "job(s) late: is the scheduler running?" in result.output
