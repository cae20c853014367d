"""Participants: enrollment, details, schedule, dose reports, hold/resume/withdraw, adherence, audit."""

from __future__ import annotations

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlmodel import select

from backend.db import get_session
from backend.extensions import get_vault
from backend.identity import scope
from backend.identity.principal import UNMASKED
from backend.operations import doses as dose_ops
from backend.operations import participants as ops
from backend.participant_trail import participant_trail
from backend.web.api.errors import error_responses
from backend.web.api.schemas import (
    AdherenceSchema,
    AuditEntrySchema,
    ChangeResultSchema,
    DoseReportSchema,
    DoseSchema,
    EnrollSchema,
    HoldSchema,
    MaskedParticipantSchema,
    ParticipantSchema,
    ParticipantUpdateSchema,
    ReasonSchema,
    ResumeSchema,
)
from backend.web.auth import current_principal, require_staff, visible_participant
from backend.web.paths import ID
from schedules.adherence import adherence_of
from schedules.dbtypes import utcnow
from schedules.models import Participant, Site
from schedules.queries import dose_by_seq, doses_of
from schedules.studies import get_study

blp = Blueprint(
    "participants", __name__, url_prefix="/api/v1/participants", description="Participants and their dosing schedules."
)
_errors = error_responses(blp)
_MASKED = (
    "the masked outcome assessor gets the same object without arm, first_dose_date, treatment_end_date and"
    " follow_up_end_date, with a hold shown as active"
)


def _masked(rows):
    """The assessor's answer: dumped by its own schema, so nothing masked can reach the shared one."""
    return jsonify(MaskedParticipantSchema(many=isinstance(rows, list)).dump(rows))


@blp.route("")
class ParticipantList(MethodView):
    @require_staff(masked_safe=True)
    @blp.response(200, ParticipantSchema(many=True), description=_MASKED)
    @_errors(401, 403)
    def get(self):
        """List the participants of the caller's site (all sites for admins)."""
        principal = current_principal()
        query = (
            select(Participant)
            .where(scope.site_filter(principal, Participant.site_id))
            .order_by(Participant.study_code)
        )
        rows = list(get_session().exec(query).all())
        return _masked(rows) if principal.masked else rows

    @require_staff(*UNMASKED)
    @blp.arguments(EnrollSchema)
    @blp.response(201, ParticipantSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data):
        """Enroll a participant and generate their dosing schedule."""
        principal = current_principal()
        session = get_session()
        site = session.exec(select(Site).where(Site.code == data["site"])).first()
        if site is None or not principal.can_see_site(site.id):
            abort(
                422,
                message=f"site: unknown site {data['site']!r}",
                errors={"json": {"site": [f"unknown site {data['site']!r}"]}},
            )
        return ops.enroll(
            session,
            study=get_study(session, data["study"]),
            site=site,
            study_code=data["study_code"],
            arm=data["arm"],
            phone=data["phone"],
            time_zone=data["time_zone"],
            language=data["language"],
            reminder_time=data["reminder_time"],
            first_dose_date=data["first_dose_date"],
            sms_consent=data["sms_consent"],
            vault=get_vault(),
            actor=principal.actor,
            now=utcnow(),
        )


@blp.route(f"/<{ID}:participant_id>")
class ParticipantDetail(MethodView):
    @require_staff(masked_safe=True)
    @blp.response(200, ParticipantSchema, description=_MASKED)
    @_errors(401, 404)
    def get(self, participant_id):
        """Show one participant (no arm or dosing dates for the masked assessor)."""
        participant = visible_participant(participant_id)
        return _masked(participant) if current_principal().masked else participant

    @require_staff(*UNMASKED)
    @blp.arguments(ParticipantUpdateSchema)
    @blp.response(200, ParticipantSchema)
    @_errors(401, 403, 404, 422)
    def patch(self, data, participant_id):
        """Change phone, time zone, reminder time, language or consent (reason required); future doses follow."""
        principal = current_principal()
        return ops.change_details(
            get_session(),
            participant=visible_participant(participant_id, principal),
            vault=get_vault(),
            actor=principal.actor,
            reason=data["reason"],
            now=utcnow(),
            phone=data.get("phone"),
            time_zone=data.get("time_zone"),
            reminder_time=data.get("reminder_time"),
            language=data.get("language"),
            sms_consent=data.get("sms_consent"),
        )


@blp.route(f"/<{ID}:participant_id>/doses")
class DoseList(MethodView):
    @require_staff(*UNMASKED)
    @blp.response(200, DoseSchema(many=True))
    @_errors(401, 403, 404)
    def get(self, participant_id):
        """Every dose with its reminder time, window (UTC) and state."""
        return doses_of(get_session(), visible_participant(participant_id).id)


@blp.route(f"/<{ID}:participant_id>/doses/<{ID}:seq>/report")
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
        return dose_ops.record_dose(
            session,
            dose=dose,
            taken=data["taken"],
            actor=principal.actor,
            now=utcnow(),
            taken_at=data["taken_at"],
            injection_site=data["injection_site"],
            note=data["note"],
            reason=data["reason"] or "reported to staff",
        )


def _changed(participant_id: int, change) -> dict:
    """Apply a hold, resume or withdrawal and say what it changed."""
    principal = current_principal()
    participant = visible_participant(participant_id, principal)
    changed = change(get_session(), participant=participant, actor=principal.actor, now=utcnow())
    return {"participant": participant, "doses_changed": changed}


@blp.route(f"/<{ID}:participant_id>/hold")
class Hold(MethodView):
    @require_staff(*UNMASKED)
    @blp.arguments(HoldSchema)
    @blp.response(200, ChangeResultSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, participant_id):
        """Hold dosing from a local date (reason required)."""
        return _changed(
            participant_id,
            lambda session, **who: ops.hold(session, reason=data["reason"], effective=data["effective_date"], **who),
        )


@blp.route(f"/<{ID}:participant_id>/resume")
class Resume(MethodView):
    @require_staff(*UNMASKED)
    @blp.arguments(ResumeSchema)
    @blp.response(200, ChangeResultSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, participant_id):
        """Resume dosing: the cadence restarts on the resume date (reason required)."""
        return _changed(
            participant_id,
            lambda session, **who: ops.resume(session, reason=data["reason"], resume_date=data["resume_date"], **who),
        )


@blp.route(f"/<{ID}:participant_id>/withdraw")
class Withdraw(MethodView):
    @require_staff(*UNMASKED)
    @blp.arguments(ReasonSchema)
    @blp.response(200, ChangeResultSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, participant_id):
        """Withdraw from the trial: future doses and messages are cancelled (reason required)."""
        return _changed(participant_id, lambda session, **who: ops.withdraw(session, reason=data["reason"], **who))


@blp.route(f"/<{ID}:participant_id>/adherence")
class AdherenceView(MethodView):
    @require_staff(*UNMASKED)
    @blp.response(200, AdherenceSchema)
    @_errors(401, 403, 404)
    def get(self, participant_id):
        """Adherence and on-time rate, with counts by dose state."""
        participant = visible_participant(participant_id)
        return adherence_of(doses_of(get_session(), participant.id), now=utcnow(), enrolled_at=participant.enrolled_at)


@blp.route(f"/<{ID}:participant_id>/audit")
class AuditView(MethodView):
    @require_staff(*UNMASKED)
    @blp.response(200, AuditEntrySchema(many=True))
    @_errors(401, 403, 404)
    def get(self, participant_id):
        """The participant's audit trail, oldest first: their details and consent (opt-out, opt-in), doses,
        VAS scores, adverse events and their reviews, their alerts and their app access; not the delivery
        bookkeeping of their messages (see the message log)."""
        participant = visible_participant(participant_id)
        return participant_trail(get_session(), participant.id)
