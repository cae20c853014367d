"""Test data in one place: the real protocol, a site, staff with tokens, enrolled participants."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from backend.config import load_settings
from backend.extensions import build_vault
from backend.identity.staff import create_staff, issue_staff_token
from schedules.changes import Actor
from schedules.participants import enroll_participant
from schedules.protocol import load_protocol_file
from schedules.sites import create_site
from schedules.studies import load_study

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_FILE = ROOT / "protocols" / "NCT04237987.toml"
ACTOR = Actor("system", "tests")
STRONG_PASSWORD = "correct-Horse-battery-staple-42"
VAULT = build_vault(load_settings(environ={"APP_ENV": "test"}))


def make_study(session: Session, *, now: datetime | None = None):
    """The NCT04237987 study loaded from the shipped protocol file."""
    return load_study(
        session,
        protocol=load_protocol_file(PROTOCOL_FILE),
        source_file=str(PROTOCOL_FILE),
        actor=ACTOR,
        reason="test data",
        now=now or datetime.now().astimezone(),
    )


def make_site(
    session: Session,
    *,
    code: str = "PKUPH",
    time_zone: str = "Asia/Shanghai",
    on_call=("+8613900000099",),
    phone: str = "+861088325555",
):
    """A site with on-call numbers."""
    return create_site(
        session,
        code=code,
        name=f"Site {code}",
        time_zone=time_zone,
        on_call=list(on_call),
        phone=phone,
        vault=VAULT,
        actor=ACTOR,
    )


def make_participant(
    session: Session,
    *,
    study=None,
    site=None,
    code: str = "P-001",
    arm: str = "il2",
    phone: str = "+8613812345678",
    time_zone: str = "Asia/Shanghai",
    language: str = "zh-CN",
    reminder_time: str = "20:00",
    first_dose: date = date(2026, 3, 1),
    now: datetime | None = None,
):
    """An enrolled participant with their schedule."""
    study = study or make_study(session)
    site = site or make_site(session)
    return enroll_participant(
        session,
        study=study,
        site=site,
        study_code=code,
        arm=arm,
        phone=phone,
        time_zone=time_zone,
        language=language,
        reminder_time=reminder_time,
        first_dose_date=first_dose,
        sms_consent=True,
        vault=VAULT,
        actor=ACTOR,
        now=now or datetime(2026, 2, 20, tzinfo=__import__("datetime").timezone.utc),
    )


def make_staff_token(
    session: Session,
    *,
    role: str = "nurse",
    site=None,
    email: str | None = None,
    now: datetime | None = None,
    ttl: timedelta = timedelta(hours=12),
) -> str:
    """A staff account and a valid bearer token for it."""
    from datetime import timezone

    staff = create_staff(
        session,
        email=email or f"{role}-{site.code if site else 'all'}@example.org",
        password=STRONG_PASSWORD,
        role=role,
        site=site,
    )
    token, _ = issue_staff_token(session, staff=staff, now=now or datetime.now(timezone.utc), ttl=ttl)
    return token


def auth(token: str) -> dict:
    """Authorization header for a bearer token."""
    return {"Authorization": f"Bearer {token}"}


def make_sent_messages(session: Session, count: int, *, now: datetime, prefix: str = "race") -> list[str]:
    """`count` replies the provider accepted (status 'sent', provider 'queued'); their provider SIDs."""
    from notifications.models import OutboundMessage, Purpose

    rows = [
        OutboundMessage(
            purpose=Purpose.REPLY.value,
            dedupe_key=f"{prefix}:{i}",
            body="x",
            due_at=now,
            next_attempt_at=now,
            status="sent",
            provider_status="queued",
            provider_sid=f"SM{prefix[:8]}{i:0{32 - len(prefix[:8])}d}",  # 34 characters, as Twilio's
            sent_at=now,
        )
        for i in range(count)
    ]
    session.add_all(rows)
    session.flush()
    return [row.provider_sid for row in rows]
