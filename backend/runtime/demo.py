"""Demo data for the embedded default: a living trial at different points of its schedules."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from flask import Flask
from sqlmodel import select

from backend.db import get_database
from backend.extensions import get_vault
from backend.identity.staff import create_staff
from backend.models import Staff
from notifications.planning import sync_participant_messages
from schedules.ae_record import complete_adverse_event
from schedules.calendar import to_local
from schedules.changes import Actor
from schedules.dbtypes import utcnow
from schedules.deviations import detect_deviations
from schedules.doses import report_dose
from schedules.missed import flag_missed_doses
from schedules.models import Participant, Site
from schedules.participants import enroll_participant
from schedules.protocol import load_protocol_file
from schedules.queries import doses_of, local_today
from schedules.sites import create_site
from schedules.studies import load_study
from schedules.symptoms import record_vas, report_adverse_event

DEMO_PASSWORD = "demo-Trial-companion-7421"
# (email, role, page language): the Beijing site's pages are Chinese; these accounts chose English, but
# 护士 hushi@demo.local reads the site's Chinese.
DEMO_STAFF = [
    ("nurse@demo.local", "nurse", "en"),
    ("investigator@demo.local", "investigator", "en"),
    ("assessor@demo.local", "assessor", "en"),
    ("hushi@demo.local", "nurse", None),
]
DEMO_ACTOR = Actor("system", "demo-seed")
DEMO_REASON = "demo data (seed-demo)"
# (code, arm, days since first dose, language, phone, adherence pattern: every dose index i is
# taken when pattern(i) is True; the rest are left to become missed)
DEMO_PARTICIPANTS = [
    ("P-001", "il2", 20, "zh-CN", "+8613800000001", lambda i: True),
    ("P-002", "il2", 14, "zh-CN", "+8613800000002", lambda i: i % 4 != 3),
    ("P-003", "il2", 9, "en", "+8613800000003", lambda i: i < 2),
    ("P-004", "control", 30, "zh-CN", "+8613800000004", lambda i: True),
    ("P-005", "il2", 2, "en", "+8613800000005", lambda i: True),
    ("P-006", "control", 5, "en", "+8613800000006", lambda i: True),
]


def _seed_completed_sae(session, *, participant: Participant, protocol, now) -> None:
    """A suspected-serious SMS report two days ago, completed by the nurse the next morning into an SAE-ready
    record (CTCAE term, dates, action taken, the time the site became aware, narrative): exports and pages show
    a coded event."""
    reported = now - timedelta(days=2)
    ae = report_adverse_event(
        session,
        participant=participant,
        protocol=protocol,
        actor=Actor("sms", f"participant:{participant.id}"),
        now=reported,
        raw_text="发烧39.5度，住院了",
    )
    onset = local_today(participant, reported) - timedelta(days=1)
    complete_adverse_event(
        session,
        ae=ae,
        participant=participant,
        protocol=protocol,
        actor=Actor("staff", "staff:demo-nurse"),
        now=reported + timedelta(hours=10),
        changes={
            "ctcae_term": "10016558",  # Fever
            "onset_date": onset,
            "severity": "severe",
            "ongoing": True,
            "went_to_hospital": True,
            "action_taken": "drug_interrupted",
            "aware_at": reported + timedelta(minutes=20),
            "narrative": "Fever 39.5 °C from the day before the report; admitted to the local hospital for "
            "observation. Study drug interrupted until the fever resolves.",
        },
        reason="called the participant back (demo)",
    )


def seed_demo(app: Flask, *, force: bool = False) -> list[str]:
    """Seed the demo site, staff and participants unless participants exist; returns lines to print."""
    vault = get_vault(app)
    protocol = load_protocol_file(Path(app.root_path).parent / app.config["DEFAULT_PROTOCOL"])
    now = utcnow()
    out = []
    with get_database(app).session() as session:
        study = load_study(
            session,
            protocol=protocol,
            source_file=app.config["DEFAULT_PROTOCOL"],
            actor=DEMO_ACTOR,
            reason=DEMO_REASON,
            now=now,
        )
        if session.exec(select(Participant.id)).first() is not None and not force:
            return [f"demo data already present; log in at /login as {DEMO_STAFF[0][0]} / {DEMO_PASSWORD}"]
        site = session.exec(select(Site).where(Site.code == "PKUPH")).first() or create_site(
            session,
            code="PKUPH",
            name="Peking University People's Hospital (demo)",
            time_zone="Asia/Shanghai",
            on_call=["+8613900000099"],
            phone="+861088325555",
            language="zh-CN",
            vault=vault,
            actor=DEMO_ACTOR,
            reason=DEMO_REASON,
        )
        for email, role, language in [*DEMO_STAFF, ("admin@demo.local", "admin", "en")]:
            if session.exec(select(Staff).where(Staff.email == email)).first() is None:
                staff_site = None if role == "admin" else site
                create_staff(
                    session,
                    email=email,
                    password=DEMO_PASSWORD,
                    role=role,
                    site=staff_site,
                    language=language,
                    actor=DEMO_ACTOR,
                    reason=DEMO_REASON,
                )
        for code, arm, days_in, lang, phone, takes in DEMO_PARTICIPANTS:
            if session.exec(select(Participant.id).where(Participant.study_code == code)).first() is not None:
                continue
            first = to_local(now, "Asia/Shanghai").date() - timedelta(days=days_in)
            participant = enroll_participant(
                session,
                study=study,
                site=site,
                study_code=code,
                arm=arm,
                phone=phone,
                time_zone="Asia/Shanghai",
                language=lang,
                reminder_time="20:00",
                first_dose_date=first,
                sms_consent=True,
                vault=vault,
                actor=DEMO_ACTOR,
                reason=DEMO_REASON,
                now=now - timedelta(days=days_in + 1),
            )
            for i, dose in enumerate(d for d in doses_of(session, participant.id) if d.window_closes_at <= now):
                if takes(i):
                    report_dose(
                        session,
                        dose=dose,
                        taken=True,
                        actor=Actor("sms", f"participant:{participant.id}"),
                        now=dose.due_at + timedelta(minutes=40),
                        reason="demo history",
                    )
            for week in range(days_in // 7 + 1):
                value = Decimal(str(round(6.5 - week * 0.8 + (int(code[-1]) % 5) * 0.3, 1))).max(Decimal("0.5"))
                record_vas(
                    session,
                    participant=participant,
                    value=value.min(Decimal("10.0")),
                    protocol=protocol,
                    actor=Actor("sms", f"participant:{participant.id}"),
                    now=now - timedelta(days=days_in - week * 7),
                )
            if code == "P-001":
                _seed_completed_sae(session, participant=participant, protocol=protocol, now=now)
            if code == "P-003":
                report_adverse_event(
                    session,
                    participant=participant,
                    protocol=protocol,
                    actor=Actor("sms", f"participant:{participant.id}"),
                    now=now - timedelta(hours=5),
                    raw_text="injection site red and itchy",
                )
            out.append(f"demo participant {code} ({arm}, day {days_in})")
        session.flush()
        flag_missed_doses(session, now=now)
        # The deviation log of the demo history (missed doses in a row are major), as the hourly job would find it.
        deviations = detect_deviations(session, now=now)
        for participant in session.exec(select(Participant)).all():
            sync_participant_messages(session, participant=participant, now=now)
    out.append(f"deviation log: {deviations}")
    out.append(
        f"log in at /login as {DEMO_STAFF[0][0]} / {DEMO_PASSWORD} (also investigator@, assessor@, admin@demo.local;"
        " hushi@demo.local reads the pages in Chinese)"
    )
    return out
