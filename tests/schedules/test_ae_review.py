"""Investigator review in the domain: grading, signatures of a version, follow-up as a new version, the content hash."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import select

from backend.identity.staff import create_staff
from backend.models import AuditEntry
from schedules.ae_review import (
    Signer,
    follow_up_adverse_event,
    review_adverse_event,
    sign_adverse_event,
)
from schedules.ae_versions import content_hash, history, signed_content
from schedules.changes import Actor
from schedules.errors import Conflict, InvalidInput
from schedules.models import AdverseEventSignature, AdverseEventVersion
from schedules.studies import protocol_of
from schedules.symptoms import report_adverse_event
from tests.conftest import utc
from tests.factories import STRONG_PASSWORD, make_participant, make_site, make_study

SMS = Actor("sms", "participant:1")
NOW = utc("2026-03-02T12:30Z")
REVIEW = dict(
    ctcae_grade=3, serious=True, serious_criteria=["hospitalisation"], relatedness="possible", outcome="recovering"
)


@pytest.fixture
def world(session):
    study = make_study(session)
    site = make_site(session)
    participant = make_participant(session, study=study, site=site)
    investigator = create_staff(
        session, email="li.wei@example.org", password=STRONG_PASSWORD, role="investigator", site=site
    )
    colleague = create_staff(
        session, email="zhang.min@example.org", password=STRONG_PASSWORD, role="investigator", site=site
    )
    ae = report_adverse_event(
        session,
        participant=participant,
        protocol=protocol_of(study),
        actor=SMS,
        now=NOW,
        raw_text="发烧 住院了",
        onset_date=date(2026, 3, 1),
    )
    return {
        "ae": ae,
        "signer": Signer(investigator.id, investigator.email, investigator.role),
        "actor": Actor("staff", f"staff:{investigator.id}"),
        "colleague": Signer(colleague.id, colleague.email, colleague.role),
        "colleague_actor": Actor("staff", f"staff:{colleague.id}"),
    }


def _sign(session, world, *, meaning="approved", at=NOW, who="signer"):
    actor = world["actor"] if who == "signer" else world["colleague_actor"]
    return sign_adverse_event(session, ae=world["ae"], signer=world[who], meaning=meaning, actor=actor, now=at)


def _review(session, world, at=NOW, **overrides):
    return review_adverse_event(session, ae=world["ae"], actor=world["actor"], now=at, **{**REVIEW, **overrides})


def _follow_up(session, world, at=NOW, reason="discharge letter received", **changes):
    return follow_up_adverse_event(
        session, ae=world["ae"], actor=world["actor"], now=at, changes=changes, reason=reason
    )


def test_a_signature_needs_the_review_and_a_meaning_from_the_fixed_list(session, world):
    with pytest.raises(Conflict, match="review"):
        _sign(session, world)
    _review(session, world)
    for meaning in ("", "ok", "APPROVED", "authored"):
        with pytest.raises(InvalidInput) as refused:
            _sign(session, world, meaning=meaning)
        assert refused.value.field == "meaning"
    assert session.exec(select(AdverseEventSignature)).all() == []


def test_a_signature_records_signer_time_meaning_and_the_hash_of_what_it_signs(session, world):
    ae = _review(session, world)
    signature = _sign(session, world, at=NOW + timedelta(hours=1))
    assert (signature.signer_id, signature.signer_email, signature.signer_role) == (
        world["signer"].staff_id,
        "li.wei@example.org",
        "investigator",
    )
    assert (signature.meaning, signature.signed_at, signature.version) == ("approved", NOW + timedelta(hours=1), 1)
    assert signature.content_hash == content_hash(signed_content(ae))
    frozen = session.exec(select(AdverseEventVersion)).one()
    assert (frozen.version, frozen.content_hash) == (1, signature.content_hash)
    assert ae.signed_off_by == world["actor"].label and ae.signed_off_at == NOW + timedelta(hours=1)
    with pytest.raises(Conflict, match="already signed version 1 as approved"):
        _sign(session, world)
    # The same version may carry several signatures: another meaning, another investigator.
    _sign(session, world, meaning="reviewed", at=NOW + timedelta(hours=2))
    _sign(session, world, who="colleague", at=NOW + timedelta(hours=3))
    (version,) = history(session, ae)
    assert [(s.signature.signer_email, s.signature.meaning, s.intact) for s in version.signatures] == [
        ("li.wei@example.org", "approved", True),
        ("li.wei@example.org", "reviewed", True),
        ("zhang.min@example.org", "approved", True),
    ]
    reasons = {
        r.reason
        for r in session.exec(select(AuditEntry).where(AuditEntry.entity == "ae_signature")).all()
        if r.action == "create"
    }
    assert reasons == {"signed version 1 as approved", "signed version 1 as reviewed"}


def test_follow_up_after_sign_off_is_a_new_version_and_the_signed_one_stays_readable(session, world):
    ae = _review(session, world)
    first = _sign(session, world)
    _follow_up(
        session,
        world,
        at=NOW + timedelta(days=7),
        outcome="recovered",
        stop_date=date(2026, 3, 8),
        narrative="  Discharged on day 7; fever resolved.  ",
    )
    assert (ae.version, ae.outcome, ae.stop_date, ae.narrative) == (
        2,
        "recovered",
        date(2026, 3, 8),
        "Discharged on day 7; fever resolved.",
    )
    assert ae.signed_off_at is None and ae.signed_off_by == ""  # the new version is not signed yet
    old, new = history(session, ae)
    assert (old.version, old.current, old.signed, old.content["outcome"]) == (1, False, True, "recovering")
    assert "stop_date" not in old.content and "narrative" not in old.content
    assert [(s.signature.id, s.intact) for s in old.signatures] == [(first.id, True)]
    assert (new.version, new.current, new.signed, new.signatures) == (2, True, False, [])
    assert new.changes == [
        ("narrative", None, "Discharged on day 7; fever resolved."),
        ("outcome", "recovering", "recovered"),
        ("stop_date", None, "2026-03-08"),
    ]
    second = _sign(session, world, at=NOW + timedelta(days=7, hours=1))
    assert second.version == 2 and second.content_hash != first.content_hash
    assert ae.signed_off_at == NOW + timedelta(days=7, hours=1)
    outcome = [
        (r.old_value, r.new_value, r.reason)
        for r in session.exec(
            select(AuditEntry)
            .where(AuditEntry.entity == "adverseevent", AuditEntry.field == "outcome")
            .order_by(AuditEntry.id)
        ).all()
    ]
    assert outcome[-1] == ("recovering", "recovered", "follow-up: discharge letter received")


def test_follow_up_before_any_signature_changes_the_open_version(session, world):
    ae = _review(session, world)
    _follow_up(session, world, outcome="not_recovered")
    _follow_up(session, world, narrative="still in hospital")
    assert (ae.version, ae.outcome, ae.narrative) == (1, "not_recovered", "still in hospital")
    assert [v.version for v in history(session, ae)] == [1]


def test_a_new_grading_after_a_signature_is_a_new_version_but_the_same_grading_is_refused(session, world):
    ae = _review(session, world)
    _sign(session, world)
    with pytest.raises(Conflict, match="nothing to change"):
        _review(session, world)
    _review(session, world, ctcae_grade=4)
    assert (ae.version, ae.ctcae_grade) == (2, 4)
    assert [v.content["ctcae_grade"] for v in history(session, ae)] == [3, 4]


@pytest.mark.parametrize(
    "changes, reason, field",
    [
        ({"outcome": "recovered"}, "  ", "reason"),
        ({"outcome": "gone"}, "call", "outcome"),
        ({"stop_date": date(2026, 2, 28)}, "call", "stop_date"),  # before the onset
        ({"stop_date": date(2026, 3, 9)}, "call", "stop_date"),  # in the future
        ({"narrative": "x" * 10_001}, "call", "narrative"),
        ({"severity": "mild"}, "call", "severity"),  # not a follow-up field
        ({"outcome": "recovering"}, "call", "outcome"),  # nothing changes
    ],
)
def test_bad_follow_up_names_the_field_and_changes_nothing(session, world, changes, reason, field):
    ae = _review(session, world)
    _sign(session, world)
    with pytest.raises(InvalidInput) as refused:
        _follow_up(session, world, reason=reason, **changes)
    assert refused.value.field == field
    assert (ae.version, ae.outcome, ae.stop_date) == (1, "recovering", None)


def test_a_change_behind_the_review_shows_on_the_signature_and_blocks_signing(session, world):
    ae = _review(session, world)
    _sign(session, world)
    session.execute(text("UPDATE adverseevent SET outcome = 'fatal' WHERE id = :id"), {"id": ae.id})
    session.expire_all()
    (version,) = history(session, ae)
    assert [s.intact for s in version.signatures] == [False]
    with pytest.raises(Conflict, match="no longer holds what was signed"):
        _sign(session, world, meaning="reviewed")


def test_the_signed_content_leaves_out_who_reviewed_and_signed_and_empty_fields(session, world):
    ae = _review(session, world)
    content = signed_content(ae)
    assert {"reviewed_by", "reviewed_at", "signed_off_by", "signed_off_at", "stop_date", "narrative"}.isdisjoint(
        content
    )
    assert content["raw_text"] == "发烧 住院了" and content["version"] == 1 and content["id"] == ae.id
    _sign(session, world)
    assert signed_content(ae) == content  # signing changes who signed, not what is signed


@given(st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))))
def test_the_hash_of_a_content_does_not_depend_on_the_order_of_its_fields(content):
    assert content_hash(dict(reversed(list(content.items())))) == content_hash(content)
