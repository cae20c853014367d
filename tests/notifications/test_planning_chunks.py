"""The planning job in chunks: a session per chunk of participants plans exactly what one session would."""

from datetime import date

import pytest
from sqlmodel import select

from notifications.models import OutboundMessage
from notifications.planning import plan_messages
from schedules.errors import Conflict
from tests.conftest import utc
from tests.factories import make_participant, make_site, make_study

NOW = utc("2026-03-01T02:00Z")


def _enroll_five(session):
    study, site = make_study(session), make_site(session)
    zones = ["Asia/Shanghai", "Europe/London", "America/New_York", "Asia/Shanghai", "Asia/Shanghai"]
    for i, zone in enumerate(zones):
        make_participant(
            session,
            study=study,
            site=site,
            code=f"P-{i}",
            phone=f"+86138123456{i:02d}",
            time_zone=zone,
            arm="il2" if i % 2 == 0 else "control",
            reminder_time=f"{18 + i}:00",
            first_dose=date(2026, 3, 1),
        )
    session.commit()


def _planned(database) -> list[tuple]:
    with database.session() as s:
        return sorted(
            (m.participant_id, m.purpose, m.dedupe_key, m.due_at, m.not_after, m.body, m.status)
            for m in s.exec(select(OutboundMessage)).all()
        )


def test_chunks_of_one_plan_what_a_single_session_plans(database, session):
    _enroll_five(session)
    with database.session() as s:
        whole = plan_messages(s, now=NOW)
    in_one = _planned(database)
    with database.session() as s:  # start again from nothing, then plan two participants per transaction
        for row in s.exec(select(OutboundMessage)).all():
            s.delete(row)
    chunked = plan_messages(database.session, now=NOW, chunk=2)
    assert str(chunked) == str(whole) and chunked.by_purpose == whole.by_purpose
    assert [r[1:] for r in _planned(database)] == [r[1:] for r in in_one] and whole.created > 0
    again = plan_messages(database.session, now=NOW, chunk=2)
    assert str(again) == "planned 0 new, re-timed 0, cancelled 0 for 5 participant(s)"


def test_a_taken_study_code_is_a_conflict_and_leaves_the_session_usable(session):
    first = make_participant(session, code="P-9")
    with pytest.raises(Conflict):
        make_participant(session, code="P-9", phone="+8613812345699")
    assert session.get(type(first), first.id).study_code == "P-9"
