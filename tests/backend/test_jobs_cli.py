"""`flask jobs list / run NAME / run --all`: run scheduled jobs once, now, and say what each did."""

from datetime import date

from backend.runtime.jobs import JOBS
from tests.conftest import utc
from tests.factories import make_participant
from tests.sms_helpers import received, standin, twilio  # noqa: F401 (fixtures)


def test_jobs_list_names_every_job_in_natural_order(cli):
    result = cli.invoke(args=["jobs", "list"])
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines() if " every " in line]
    assert names == [job.name for job in JOBS]
    assert "every" in result.output and "send due messages" in result.output


def test_jobs_run_name_runs_one_job_and_prints_what_it_did(cli, session, clock):
    clock.move_to(utc("2026-03-01T10:00Z"))
    make_participant(session, first_dose=date(2026, 3, 1), now=utc("2026-03-01T10:00Z"))
    session.commit()

    result = cli.invoke(args=["jobs", "run", "plan_messages"])

    assert result.exit_code == 0, result.output
    # 1 March: the reminder asking the weekly VAS prompt too, and its nudge (dose 2's reminder is beyond 36 h).
    assert result.output.strip() == "plan_messages: planned 2 new, re-timed 0, cancelled 0 for 1 participant(s)"
    again = cli.invoke(args=["jobs", "run", "plan_messages"])
    assert again.output.strip() == "plan_messages: planned 0 new, re-timed 0, cancelled 0 for 1 participant(s)"


def test_jobs_run_all_runs_each_job_once_in_order(cli, session, clock, twilio, database):
    clock.move_to(utc("2026-03-01T12:00Z"))
    make_participant(session, first_dose=date(2026, 3, 1), now=utc("2026-03-01T10:00Z"))
    session.commit()

    result = cli.invoke(args=["jobs", "run", "--all"])

    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [job.name for job in JOBS]
    # The reminder that asks the VAS prompt too; no digest, as no alert is open.
    assert lines[-1].startswith("dispatch_outbox: claimed 1, sent 1")
    assert sorted(row.purpose for _, row in received(twilio, database)) == ["dose_and_vas"]


def test_jobs_run_unknown_name_or_nothing_exits_non_zero_with_a_sentence(cli):
    unknown = cli.invoke(args=["jobs", "run", "send_everything"])
    neither = cli.invoke(args=["jobs", "run"])
    both = cli.invoke(args=["jobs", "run", "plan_messages", "--all"])

    assert unknown.exit_code != 0 and "no job named 'send_everything'; `jobs list` shows the names." in unknown.output
    for result in (neither, both):
        assert result.exit_code != 0 and "give a job name or --all" in result.output
