"""Changes made from the operator CLI name the staff account they are made for and why, checked with the API's
role rules; without a person or a reason they are refused with one sentence and change nothing."""

from __future__ import annotations

import json
import os

import pytest
from sqlmodel import select

from backend.identity.staff import create_staff
from backend.models import AuditEntry, Staff
from schedules.models import Participant, Site, Study
from schedules.sites import create_site
from tests.cli_helpers import ADMIN, AS_ADMIN, as_staff, bootstrap_admin, load_trial
from tests.conftest import utc
from tests.factories import ACTOR, PROTOCOL_FILE, STRONG_PASSWORD, VAULT

NURSE, ASSESSOR, GONE, ELSEWHERE = "nurse@example.org", "assessor@example.org", "gone@example.org", "n@other.org"
ENROLL = [
    *("participants", "enroll", "--study", "NCT04237987", "--code", "P-9", "--arm", "il2", "--site", "PKUPH"),
    *("--phone", "+8613812345678", "--tz", "Asia/Shanghai", "--reminder-time", "20:00", "--first-dose", "2026-03-01"),
]


@pytest.fixture
def trial(cli, session, clock):
    """The CLI's trial (first admin, protocol, site PKUPH), staff of PKUPH and of another site; their ids."""
    clock.move_to(utc("2026-02-20T00:00Z"))
    load_trial(cli)
    pkuph = session.exec(select(Site).where(Site.code == "PKUPH")).one()
    other = create_site(session, code="OTHER", name="Other", time_zone="Asia/Shanghai", vault=VAULT, actor=ACTOR)
    ids = {"admin": session.exec(select(Staff.id).where(Staff.email == ADMIN)).one()}
    for email, role, site in [(NURSE, "nurse", pkuph), (ASSESSOR, "assessor", pkuph), (GONE, "nurse", pkuph),
                              (ELSEWHERE, "nurse", other)]:  # fmt: skip
        ids[email] = create_staff(session, email=email, password=STRONG_PASSWORD, role=role, site=site).id
    session.get(Staff, ids[GONE]).active = False
    session.commit()
    return ids


def _rows(session, entity: str, entity_id) -> list[AuditEntry]:
    return list(
        session.exec(select(AuditEntry).where(AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id)))
    )


def _one_sentence(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def test_an_enrollment_from_the_cli_is_recorded_as_the_nurse_named_with_the_reason(cli, session, trial):
    result = cli.invoke(args=[*ENROLL, *as_staff(NURSE, "consented at the screening visit")])
    assert result.exit_code == 0, result.output
    participant = session.exec(select(Participant).where(Participant.study_code == "P-9")).one()
    created = _rows(session, "participant", participant.id)
    assert [(r.actor, r.source, r.reason) for r in created] == [
        (f"cli:staff:{trial[NURSE]}", "cli", "consented at the screening visit")
    ]
    # The schedule too, and the participant's audit view shows the same person.
    doses = session.exec(select(AuditEntry).where(AuditEntry.entity == "dose")).all()
    assert doses and {(r.actor, r.reason) for r in doses} == {
        (f"cli:staff:{trial[NURSE]}", "consented at the screening visit")
    }


@pytest.mark.parametrize(
    "attribution,code,says",
    [
        ([], 2, "--as: name the staff account you are enrolling a participant for"),
        (["--reason", "visit"], 2, "--as"),
        (["--as", NURSE], 2, "--reason"),
        (["--as", NURSE, "--reason", "   "], 2, "--reason"),
        (as_staff("nobody@example.org"), 2, "no staff account nobody@example.org"),
        (as_staff(GONE), 3, "deactivated"),
        (as_staff(ASSESSOR), 3, "is an assessor; enrolling a participant needs an admin, an investigator or a nurse"),
        (as_staff(ELSEWHERE), 3, "works at site OTHER, not PKUPH"),
    ],
)
def test_a_cli_enrollment_without_a_person_allowed_to_make_it_or_a_reason_is_refused(
    cli, session, trial, attribution, code, says
):
    result = cli.invoke(args=[*ENROLL, *attribution])
    assert result.exit_code == code
    assert says in _one_sentence(result)
    assert session.exec(select(Participant)).all() == []


def test_protocol_load_records_who_and_why(cli, session, trial, tmp_path):
    study = session.exec(select(Study)).one()
    first = _rows(session, "study", study.id)
    assert [(r.action, r.actor, r.reason) for r in first] == [("create", f"cli:staff:{trial['admin']}", AS_ADMIN[-1])]

    changed = tmp_path / "amended.toml"
    text = PROTOCOL_FILE.read_text()
    assert "max_backdate_days = 7" in text
    changed.write_text(text.replace("max_backdate_days = 7", "max_backdate_days = 5"))
    refused = cli.invoke(args=["protocol", "load", str(changed), *as_staff(NURSE)])
    assert refused.exit_code == 3 and "loading a protocol needs an admin" in _one_sentence(refused)
    unsaid = cli.invoke(args=["protocol", "load", str(changed), "--as", ADMIN])
    assert unsaid.exit_code == 2 and "--reason" in _one_sentence(unsaid)
    assert _rows(session, "study", study.id) == first

    loaded = cli.invoke(args=["protocol", "load", str(changed), *as_staff(ADMIN, "amendment 2 approved by the IRB")])
    assert loaded.exit_code == 0, loaded.output
    update = [r for r in _rows(session, "study", study.id) if r.action == "update"]
    assert update and {(r.actor, r.source, r.reason) for r in update} == {
        (f"cli:staff:{trial['admin']}", "cli", "amendment 2 approved by the IRB")
    }
    assert "source_file" in {r.field for r in update}
    # Checking a file changes nothing, so it names nobody.
    assert cli.invoke(args=["protocol", "load", str(changed), "--check"]).exit_code == 0


def test_the_first_admin_is_a_bootstrap_with_a_reason_and_every_later_account_is_made_by_an_admin(cli, session):
    env = {"STAFF_PASSWORD": STRONG_PASSWORD}
    first_nurse = cli.invoke(args=["staff", "create", "--email", NURSE, "--role", "nurse", "--site", "X",
                                   "--reason", "first"], env=env)  # fmt: skip
    assert first_nurse.exit_code == 2 and "the first one must be an admin" in _one_sentence(first_nurse)
    unsaid = cli.invoke(args=["staff", "create", "--email", ADMIN, "--role", "admin"], env=env)
    assert unsaid.exit_code == 2 and "--reason: say why you are creating a staff account" in _one_sentence(unsaid)
    bootstrap_admin(cli)
    admin = session.exec(select(Staff).where(Staff.email == ADMIN)).one()
    assert [(r.actor, r.source, r.reason) for r in _rows(session, "staff", admin.id)] == [
        (f"cli:bootstrap:{os.environ.get('USER', 'operator')}", "cli", "first admin of the trial")
    ]
    assert json.loads(_rows(session, "staff", admin.id)[0].new_value)["password_hash"] == "<redacted>"

    # Once an account exists, nobody is made without an admin named.
    second = ["staff", "create", "--email", "second@example.org", "--role", "admin", "--reason", "cover"]
    assert "--as" in _one_sentence(cli.invoke(args=second, env=env))
    made = cli.invoke(args=[*second, "--as", ADMIN], env=env)
    assert made.exit_code == 0, made.output
    assert "(as admin@example.org)" in made.output
    second_id = session.exec(select(Staff.id).where(Staff.email == "second@example.org")).one()
    assert [(r.actor, r.reason) for r in _rows(session, "staff", second_id)] == [(f"cli:staff:{admin.id}", "cover")]


def test_sites_and_staff_are_made_by_admins_only(cli, session, trial):
    env = {"STAFF_PASSWORD": STRONG_PASSWORD}
    nurse_makes_staff = cli.invoke(
        args=["staff", "create", "--email", "x@example.org", "--role", "nurse", "--site", "PKUPH", *as_staff(NURSE)],
        env=env,
    )
    assert nurse_makes_staff.exit_code == 3 and "creating a staff account needs an admin" in _one_sentence(
        nurse_makes_staff
    )
    site = ["sites", "create", "--code", "THIRD", "--name", "Third", "--tz", "Asia/Shanghai"]
    nurse_makes_site = cli.invoke(args=[*site, *as_staff(NURSE)])
    assert nurse_makes_site.exit_code == 3 and "creating a site needs an admin" in _one_sentence(nurse_makes_site)
    made = cli.invoke(args=[*site, *as_staff(ADMIN, "third site opens in May")])
    assert made.exit_code == 0, made.output
    third = session.exec(select(Site).where(Site.code == "THIRD")).one()
    assert [(r.actor, r.reason) for r in _rows(session, "site", third.id)] == [
        (f"cli:staff:{trial['admin']}", "third site opens in May")
    ]
