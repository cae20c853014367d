"""Participants: enrollment, details, schedule, dose reports, hold/resume/withdraw, adherence, audit."""

from __future__ import annotations

from backend.web.api.errors import error_responses

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlmodel import select

from backend.web.api.schemas import (
    AdherenceSchema,
    AuditEntrySchema,
    ChangeResultSchema,
    DoseReportSchema,
    DoseSchema,
    EnrollSchema,
    HoldSchema,
    ParticipantSchema,
    ParticipantUpdateSchema,
    ReasonSchema,
    ResumeSchema,
)
from backend.identity.principal import UNMASKED
from backend.web.auth import current_principal, require_staff, visible_participant
from backend.db import get_session
from backend.models import AuditEntry
from backend.web.participant_views import participant_view, sync_messages
from backend.extensions import get_vault
from schedules import participants as svc
from schedules.adherence import adherence_of
from schedules.dbtypes import utcnow
from schedules.doses import dose_by_seq, doses_of, report_dose
from schedules.models import Participant, Site
from schedules.studies import get_study

blp = Blueprint("participants", __name__, url_prefix="/api/v1/participants", description="Participants and their dosing schedules.")



_errors = error_responses(blp)


@blp.route("")
class ParticipantList(MethodView):
    @require_staff()
    @blp.response(200, ParticipantSchema(many=True))
    @_errors(401, 403)
    def get(self):
        """List the participants of the caller's site (all sites for admins)."""
        principal = current_principal()
        session = get_session()
        query = select(Participant).order_by(Participant.study_code)
        if principal.role != "admin":
            query = query.where(Participant.site_id == principal.site_id)
        return [participant_view(session, p, masked=principal.masked) for p in session.exec(query).all()]

    @require_staff("admin", "investigator", "nurse")
    @blp.arguments(EnrollSchema)
    @blp.response(201, ParticipantSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data):
        """Enroll a participant and generate their dosing schedule."""
        principal = current_principal()
        session = get_session()
        study = get_study(session, data["study"])
        site = session.exec(select(Site).where(Site.code == data["site"])).first()
        if site is None or not principal.can_see_site(site.id):
            abort(422, message=f"site: unknown site {data['site']!r}", errors={"json": {"site": [f"unknown site {data['site']!r}"]}})
        now = utcnow()
        participant = svc.enroll_participant(
            session, study=study, site=site, study_code=data["study_code"], arm=data["arm"], phone=data["phone"],
            time_zone=data["time_zone"], language=data["language"], reminder_time=data["reminder_time"],
            first_dose_date=data["first_dose_date"], sms_consent=data["sms_consent"], vault=get_vault(),
            actor=principal.actor, now=now,
        )
        sync_messages(session, participant, now=now)
        return participant_view(session, participant, masked=False)


@blp.route("/<int(max=2147483647):participant_id>")
class ParticipantDetail(MethodView):
    @require_staff()
    @blp.response(200, ParticipantSchema)
    @_errors(401, 404)
    def get(self, participant_id):
        """Show one participant (no arm for the masked assessor)."""
        principal = current_principal()
        session = get_session()
        return participant_view(session, visible_participant(participant_id, principal), masked=principal.masked)

    @require_staff(*UNMASKED)
    @blp.arguments(ParticipantUpdateSchema)
    @blp.response(200, ParticipantSchema)
    @_errors(401, 403, 404, 422)
    def patch(self, data, participant_id):
        """Change phone, time zone, reminder time, language or consent (reason required); future doses follow."""
        principal = current_principal()
        session = get_session()
        participant = visible_participant(participant_id, principal)
        now = utcnow()
        svc.update_details(
            session, participant=participant, vault=get_vault(), actor=principal.actor, reason=data["reason"], now=now,
            phone=data.get("phone"), time_zone=data.get("time_zone"), reminder_time=data.get("reminder_time"),
            language=data.get("language"), sms_consent=data.get("sms_consent"),
        )
        sync_messages(session, participant, now=now)
        return participant_view(session, participant, masked=False)


@blp.route("/<int(max=2147483647):participant_id>/doses")
class DoseList(MethodView):
    @require_staff(*UNMASKED)
    @blp.response(200, DoseSchema(many=True))
    @_errors(401, 403, 404)
    def get(self, participant_id):
        """Every dose with its reminder time, window (UTC) and state."""
        session = get_session()
        participant = visible_participant(participant_id)
        return doses_of(session, participant.id)


@blp.route("/<int(max=2147483647):participant_id>/doses/<int(max=2147483647):seq>/report")
class DoseReport(MethodView):
    @require_staff(*UNMASKED)
    @blp.arguments(DoseReportSchema)
    @blp.response(200, DoseSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, participant_id, seq):
        """Record a dose reported to staff (e.g. by phone): taken at a time, or not taken."""
        principal = current_principal()
        session = get_session()
        participant = visible_participant(participant_id, principal)
        dose = dose_by_seq(session, participant, seq)
        if dose is None:
            abort(404, message=f"participant has no dose {seq}")
        now = utcnow()
        report_dose(session, dose=dose, taken=data["taken"], actor=principal.actor, now=now, taken_at=data["taken_at"],
                    injection_site=data["injection_site"], note=data["note"], reason=data["reason"] or "reported to staff")
        sync_messages(session, participant, now=now)
        return dose


def _change(view, data, participant_id, action):
    principal = current_principal()
    session = get_session()
    participant = visible_participant(participant_id, principal)
    now = utcnow()
    changed = action(session, participant, principal, data, now)
    sync_messages(session, participant, now=now)
    return {"participant": participant_view(session, participant, masked=False), "doses_changed": changed}


@blp.route("/<int(max=2147483647):participant_id>/hold")
class Hold(MethodView):
    @require_staff(*UNMASKED)
    @blp.arguments(HoldSchema)
    @blp.response(200, ChangeResultSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, participant_id):
        """Hold dosing from a local date (reason required)."""
        return _change(self, data, participant_id, lambda s, p, who, d, now: svc.hold_dosing(
            s, participant=p, reason=d["reason"], effective=d["effective_date"] or svc.local_today(p, now), actor=who.actor, now=now))


@blp.route("/<int(max=2147483647):participant_id>/resume")
class Resume(MethodView):
    @require_staff(*UNMASKED)
    @blp.arguments(ResumeSchema)
    @blp.response(200, ChangeResultSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, participant_id):
        """Resume dosing: the cadence restarts on the resume date (reason required)."""
        return _change(self, data, participant_id, lambda s, p, who, d, now: svc.resume_dosing(
            s, participant=p, reason=d["reason"], resume_date=d["resume_date"] or svc.local_today(p, now), actor=who.actor, now=now))


@blp.route("/<int(max=2147483647):participant_id>/withdraw")
class Withdraw(MethodView):
    @require_staff(*UNMASKED)
    @blp.arguments(ReasonSchema)
    @blp.response(200, ChangeResultSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, participant_id):
        """Withdraw from the trial: future doses and messages are cancelled (reason required)."""
        return _change(self, data, participant_id, lambda s, p, who, d, now: svc.withdraw(
            s, participant=p, reason=d["reason"], actor=who.actor, now=now))


@blp.route("/<int(max=2147483647):participant_id>/adherence")
class AdherenceView(MethodView):
    @require_staff(*UNMASKED)
    @blp.response(200, AdherenceSchema)
    @_errors(401, 403, 404)
    def get(self, participant_id):
        """Adherence and on-time rate, with counts by dose state."""
        session = get_session()
        participant = visible_participant(participant_id)
        return adherence_of(doses_of(session, participant.id), now=utcnow())


@blp.route("/<int(max=2147483647):participant_id>/audit")
class AuditView(MethodView):
    @require_staff("admin", "investigator", "nurse")
    @blp.response(200, AuditEntrySchema(many=True))
    @_errors(401, 403, 404)
    def get(self, participant_id):
        """The audit trail of the participant and their doses, oldest first."""
        session = get_session()
        participant = visible_participant(participant_id)
        dose_ids = [str(d.id) for d in doses_of(session, participant.id)]
        query = select(AuditEntry).where(
            ((AuditEntry.entity == "participant") & (AuditEntry.entity_id == str(participant.id)))
            | ((AuditEntry.entity == "dose") & (AuditEntry.entity_id.in_(dose_ids)))
        ).order_by(AuditEntry.id)
        return session.exec(query).all()
