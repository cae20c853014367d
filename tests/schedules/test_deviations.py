"""The deviation log: what is found, how the protocol classifies it, and that a run can always be repeated."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from schedules.changes import Actor
from schedules.deviations import detect_deviations, runs_not_taken
from schedules.doses import report_dose
from schedules.missed import flag_missed_doses
from schedules.models import Deviation
from schedules.participants import hold_dosing
from schedules.protocol import protocol_from_dict
from schedules.queries import deviations_for, dose_by_seq
from tests.conftest import utc
from tests.factories import PROTOCOL_FILE, make_participant, make_site, make_study

SMS = Actor("sms", "participant:1")
NURSE = Actor("staff", "7")


def _closes(seq: int):
    """Window close of dose `seq` of the default participant (first dose 1 March, every other day, Shanghai)."""
    return utc("2026-03-02T04:00Z") + timedelta(days=2 * (seq - 1))


def _log(session, participant):
    rows = session.exec(
        select(Deviation).where(Deviation.participant_id == participant.id).order_by(Deviation.local_date)
    )
    return [(r.kind, r.local_date, r.classification) for r in rows]


def test_a_single_missed_dose_is_minor(session):
    participant = make_participant(session)
    report_dose(
        session, dose=dose_by_seq(session, participant, 2), taken=True, actor=SMS, now=_closes(2) - timedelta(hours=9)
    )
    flag_missed_doses(session, now=_closes(2) + timedelta(minutes=1))

    detect_deviations(session, now=_closes(2) + timedelta(hours=1))

    assert _log(session, participant) == [("missed_dose", date(2026, 3, 1), "minor")]
    (row,) = deviations_for(session, [participant.id])
    assert "a single dose not taken" in row.rule and row.review_state == "open" and row.site_id == participant.site_id


def test_two_missed_in_a_row_makes_both_major_even_found_one_at_a_time(session):
    participant = make_participant(session)
    flag_missed_doses(session, now=_closes(1) + timedelta(minutes=1))
    detect_deviations(session, now=_closes(1) + timedelta(minutes=2))
    assert _log(session, participant) == [("missed_dose", date(2026, 3, 1), "minor")]

    flag_missed_doses(session, now=_closes(2) + timedelta(minutes=1))
    report = detect_deviations(session, now=_closes(2) + timedelta(minutes=2))

    assert report.reclassified == 1 and report.created["missed_dose"] == 1
    assert _log(session, participant) == [
        ("missed_dose", date(2026, 3, 1), "major"),
        ("missed_dose", date(2026, 3, 3), "major"),
    ]


def test_running_detection_twice_inserts_nothing(session):
    participant = make_participant(session)
    flag_missed_doses(session, now=_closes(3) + timedelta(minutes=1))
    first = detect_deviations(session, now=_closes(3) + timedelta(hours=1))
    second = detect_deviations(session, now=_closes(3) + timedelta(hours=2))

    assert sum(first.created.values()) == 3
    assert sum(second.created.values()) == 0 and second.reclassified == 0
    assert len(_log(session, participant)) == 3
    assert "3 missed dose" in str(first) and "0 deviation(s) recorded" in str(second)


def test_late_dose_is_minor_within_the_hours_and_major_after(session):
    participant = make_participant(session)
    within = dose_by_seq(session, participant, 1)
    after = dose_by_seq(session, participant, 2)
    report_dose(session, dose=within, taken=True, actor=SMS, now=_closes(1) + timedelta(hours=23))
    report_dose(session, dose=after, taken=True, actor=SMS, now=_closes(2) + timedelta(hours=25))

    detect_deviations(session, now=_closes(3))

    assert _log(session, participant) == [
        ("late_dose", date(2026, 3, 1), "minor"),
        ("late_dose", date(2026, 3, 3), "major"),
    ]
    rules = [r.rule for r in deviations_for(session, [participant.id])]
    assert rules == [
        "late_major_after_hours = 24: taken 23 h after the window closed",
        "late_major_after_hours = 24: taken 25 h after the window closed",
    ]


def test_a_missed_dose_reported_late_stays_but_leaves_the_row_of_misses(session):
    participant = make_participant(session)
    flag_missed_doses(session, now=_closes(2) + timedelta(minutes=1))
    detect_deviations(session, now=_closes(2) + timedelta(minutes=2))
    assert [c for _, _, c in _log(session, participant)] == ["major", "major"]

    # The participant answers the second reminder late: taken after all, five hours after the window.
    report_dose(
        session, dose=dose_by_seq(session, participant, 2), taken=True, actor=SMS, now=_closes(2) + timedelta(hours=5)
    )
    detect_deviations(session, now=_closes(2) + timedelta(hours=6))

    assert _log(session, participant) == [
        ("missed_dose", date(2026, 3, 1), "minor"),
        ("missed_dose", date(2026, 3, 3), "minor"),
        ("late_dose", date(2026, 3, 3), "minor"),
    ]
    later = [d for d in deviations_for(session, [participant.id], kinds=["missed_dose"]) if d.detail]
    assert [d.detail for d in later] == ["later reported taken late"]


def test_a_hold_is_one_deviation_classified_by_the_protocol(session):
    participant = make_participant(session)
    held = hold_dosing(
        session,
        participant=participant,
        reason="raised liver enzymes",
        effective=date(2026, 3, 5),
        actor=NURSE,
        now=utc("2026-03-04T06:00Z"),
    )
    assert held > 3

    detect_deviations(session, now=utc("2026-03-04T07:00Z"))

    (row,) = deviations_for(session, [participant.id], kinds=["hold"])
    assert (row.local_date, row.classification, row.detail) == (date(2026, 3, 5), "minor", "raised liver enzymes")
    assert f"{held} dose(s) held by staff:7" in row.rule


def test_staff_changing_a_dose_after_its_window_closed_is_a_deviation(session):
    participant = make_participant(session)
    flag_missed_doses(session, now=_closes(1) + timedelta(minutes=1))
    dose = dose_by_seq(session, participant, 1)
    # Three days later a nurse records, from a phone call, that it was taken in its window after all.
    report_dose(
        session,
        dose=dose,
        taken=True,
        actor=NURSE,
        now=_closes(1) + timedelta(days=3),
        taken_at=_closes(1) - timedelta(hours=2),
        note="phone call",
    )

    detect_deviations(session, now=_closes(1) + timedelta(days=3, hours=1))

    (change,) = deviations_for(session, [participant.id], kinds=["out_of_window_change"])
    assert change.classification == "minor" and change.detail == "phone call"
    # Taken inside its window (judged by when it was taken), so the record now says taken, not taken late.
    assert "missed changed to taken 3 day(s) after the window closed, by staff:7" in change.rule
    # Taken in its window, so no late dose; the miss stays on the log beside the record's change.
    assert {d.kind for d in deviations_for(session, [participant.id])} == {"missed_dose", "out_of_window_change"}


def test_a_nurse_entering_doses_from_before_enrolment_is_no_deviation(session):
    # Enrolled on 10 March with a first dose on 4 March: the first windows closed before anyone could ask.
    participant = make_participant(session, first_dose=date(2026, 3, 4), now=utc("2026-03-10T02:00Z"))
    dose = dose_by_seq(session, participant, 1)
    report_dose(
        session, dose=dose, taken=True, actor=NURSE, now=utc("2026-03-10T03:00Z"), taken_at=utc("2026-03-04T12:00Z")
    )

    detect_deviations(session, now=utc("2026-03-10T04:00Z"))

    assert deviations_for(session, [participant.id]) == []


def test_the_protocol_file_sets_the_rules(session):
    import tomllib

    data = tomllib.loads(PROTOCOL_FILE.read_text())
    data["deviations"] = {"missed_in_a_row_major": 3, "late_major_after_hours": 2, "hold_classification": "major"}
    protocol = protocol_from_dict(data)
    assert protocol.deviations.missed_in_a_row_major == 3
    assert protocol.deviations.out_of_window_change_classification == "minor"  # left out: the default

    from schedules.studies import load_study

    study = load_study(session, protocol=protocol, source_file="t", actor=SMS, reason="t", now=utc("2026-02-01T00:00Z"))
    participant = make_participant(session, study=study, site=make_site(session))
    flag_missed_doses(session, now=_closes(2) + timedelta(minutes=1))
    detect_deviations(session, now=_closes(2) + timedelta(hours=1))
    assert [c for _, _, c in _log(session, participant)] == ["minor", "minor"]  # two in a row, three needed


def test_another_participant_is_not_touched_by_a_run_for_one(session):
    study, site = make_study(session), make_site(session)
    one = make_participant(session, study=study, site=site, code="P-001")
    other = make_participant(session, study=study, site=site, code="P-002", phone="+8613812345679")
    flag_missed_doses(session, now=_closes(1) + timedelta(minutes=1))

    report = detect_deviations(session, now=_closes(1) + timedelta(hours=1), participant_ids=[one.id])

    assert report.participants == 1 and len(_log(session, one)) == 1 and _log(session, other) == []


@given(st.lists(st.booleans(), max_size=40), st.integers(min_value=1, max_value=5))
def test_the_majors_are_the_misses_in_rows_of_at_least_n(not_taken, n):
    lengths = runs_not_taken(not_taken)
    majors = sum(1 for length in lengths if length >= n)
    expected, row = 0, 0
    for missed in [*not_taken, False]:
        if missed:
            row += 1
        else:
            expected += row if row >= n else 0
            row = 0
    assert majors == expected
    assert all((length == 0) == (not missed) for length, missed in zip(lengths, not_taken))


def test_mistakes_in_the_deviations_section_are_listed_by_field():
    import tomllib

    import pytest

    from schedules.protocol import ProtocolInvalid

    data = tomllib.loads(PROTOCOL_FILE.read_text())
    data["deviations"] = {"missed_in_a_row_major": 0, "hold_classification": "serious"}
    with pytest.raises(ProtocolInvalid) as caught:
        protocol_from_dict(data, source="trial.toml")
    assert sorted(caught.value.errors) == [
        "trial.toml: deviations.hold_classification: Must be one of: minor, major.",
        "trial.toml: deviations.missed_in_a_row_major: Must be greater than or equal to 1.",
    ]


def test_a_racing_run_that_read_before_the_other_inserted_adds_no_second_copy(session, monkeypatch):
    import schedules.deviations as deviations

    participant = make_participant(session)
    flag_missed_doses(session, now=_closes(2) + timedelta(minutes=1))
    detect_deviations(session, now=_closes(2) + timedelta(minutes=2))
    # As if this run had read the log before the other run's rows were committed: it tries to insert them all.
    monkeypatch.setattr(deviations, "_existing", lambda session, keys: {})

    report = detect_deviations(session, now=_closes(2) + timedelta(minutes=3))

    assert sum(report.created.values()) == 0
    assert len(_log(session, participant)) == 2
