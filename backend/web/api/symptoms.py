"""Patient-global VAS and adverse events."""

from __future__ import annotations

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlmodel import Session, select

from backend.db import get_session
from backend.extensions import get_vault
from backend.identity.app_tokens import Refused
from backend.identity.principal import REVIEWERS, UNMASKED
from backend.operations.ae_review import (
    complete_adverse_event,
    follow_up_adverse_event,
    review_adverse_event,
    sign_adverse_event,
)
from backend.operations.symptoms import correct_vas, protocol_for, record_vas, report_adverse_event
from backend.web.api.errors import STAFF_ERRORS, error_responses
from backend.web.api.symptom_schemas import (
    AdverseEventCreateSchema,
    AdverseEventFollowUpSchema,
    AdverseEventRecordSchema,
    AdverseEventReviewSchema,
    AdverseEventSchema,
    AdverseEventSignSchema,
    AeTermListSchema,
    AeVersionSchema,
    CtcaeTermSchema,
    MaskedAdverseEventSchema,
    MaskedVasSchema,
    VasCorrectSchema,
    VasCreateSchema,
    VasSchema,
    ae_shown,
    structured_report,
    vas_shown,
    version_shown,
)
from backend.web.auth import (
    current_principal,
    lockout_policy,
    refuse_sign_in,
    require_staff,
    signed_in,
    visible_participant,
)
from backend.web.masking import masked_adverse_event, visible_ctcae_codes, visible_terms
from backend.web.paths import ID
from schedules.ae_versions import histories, history
from schedules.ctcae import ctcae_codes, ctcae_term
from schedules.dbtypes import utcnow
from schedules.models import AdverseEvent, Alert, Participant, Study, VasScore
from schedules.queries import vas_history
from schedules.studies import protocol_of
from schedules.vocabulary import (
    ACTIONS_TAKEN,
    AE_TERM_LABELS,
    AE_TERMS,
    OUTCOMES,
    RELATEDNESS,
    SERIOUS_CRITERIA,
    SEVERITIES,
    SIGNATURE_MEANINGS,
)

blp = Blueprint("symptoms", __name__, url_prefix="/api/v1", description="Patient-global VAS and adverse events.")


_errors = error_responses(blp)
_sign_errors = error_responses(
    blp,
    {
        **STAFF_ERRORS,
        403: "role may not sign, another account's email, or a wrong password (counted towards the lockout); "
        "nothing signed",
        429: "the account's sign-in is locked after too many wrong passwords (Retry-After); nothing signed",
    },
)


def _reviewers_only(action: str):
    """Declare: investigators and admins only, else 403 saying who may (checked before the body is read)."""
    refusal = f"only an investigator or admin may {action} an adverse event (your role: {{role}})"
    return require_staff(*REVIEWERS, refusal=refusal)


# --- views: what the API shows (never arm, regimen or doses) -----------------------------------
def _alerts_of(session: Session, ae_ids: list[int]) -> dict[int, Alert]:
    if not ae_ids:
        return {}
    rows = session.exec(select(Alert).where(Alert.ref_type == "adverse_event", Alert.ref_id.in_(ae_ids))).all()
    return {row.ref_id: row for row in rows}


def _shown_aes(rows: list[tuple[AdverseEvent, Participant, Alert | None]], *, many: bool = True):
    """Adverse events for the response: the masked assessor's are dumped by their own schema, without free text."""
    masked = current_principal().masked
    # The masked schema shows no signatures or versions: no need to read them.
    versions = {} if masked else histories(get_session(), [ae for ae, _, _ in rows])
    shown = [ae_shown(ae, participant, alert, versions.get(ae.id)) for ae, participant, alert in rows]
    if masked:
        shown = [
            masked_adverse_event(item, protocol_for(get_session(), participant))
            for item, (_, participant, _) in zip(shown, rows)
        ]
        # A Response passes flask-smorest's AdverseEventSchema untouched; the masked schema is a subset of it.
        return jsonify(MaskedAdverseEventSchema(many=many).dump(shown if many else shown[0]))
    return shown if many else shown[0]


def _one_ae(session: Session, ae: AdverseEvent, participant: Participant):
    return _shown_aes([(ae, participant, _alerts_of(session, [ae.id]).get(ae.id))], many=False)


def _visible_ae(session: Session, ae_id: int) -> tuple[AdverseEvent, Participant]:
    ae = session.get(AdverseEvent, ae_id)
    if ae is None:
        abort(404, message="no such adverse event")
    return ae, visible_participant(ae.participant_id)


# --- VAS ---------------------------------------------------------------------------------------
@blp.route(f"/participants/<{ID}:participant_id>/vas")
class VasList(MethodView):
    @require_staff(masked_safe=True)
    @blp.response(200, VasSchema(many=True))
    @_errors(401, 403, 404)
    def get(self, participant_id):
        """The participant's VAS history, oldest first, withdrawn and corrected rows included with their status."""
        session = get_session()
        participant = visible_participant(participant_id)
        rows = vas_history(session, participant.id)
        replaced_by = {row.replaces_id: row.id for row in rows if row.replaces_id}
        shown = [vas_shown(row, participant, replaced_by) for row in rows]
        # The masked assessor's rows are dumped by their own schema (a Response passes VasSchema untouched).
        return jsonify(MaskedVasSchema(many=True).dump(shown)) if current_principal().masked else shown

    @require_staff(*UNMASKED)
    @blp.arguments(VasCreateSchema)
    @blp.response(201, VasSchema)
    @_errors(401, 403, 404, 422)
    def post(self, data, participant_id):
        """Record a VAS score the participant gave staff (reason required); source is staff."""
        principal = current_principal()
        session = get_session()
        participant = visible_participant(participant_id, principal)
        score = record_vas(
            session,
            participant=participant,
            value=data["value"],
            actor=principal.actor,
            now=utcnow(),
            reason=data["reason"],
        )
        return vas_shown(score, participant)


@blp.route(f"/vas/<{ID}:vas_id>/correct")
class VasCorrect(MethodView):
    @require_staff(*UNMASKED)
    @blp.arguments(VasCorrectSchema)
    @blp.response(201, VasSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, vas_id):
        """Correct a VAS: a new row with the reason replaces it; the original is kept, marked corrected."""
        principal = current_principal()
        session = get_session()
        score = session.get(VasScore, vas_id)
        if score is None:
            abort(404, message="no such VAS score")
        participant = visible_participant(score.participant_id, principal)
        new = correct_vas(
            session, score=score, value=data["value"], reason=data["reason"], actor=principal.actor, now=utcnow()
        )
        return vas_shown(new, participant)


# --- adverse events ----------------------------------------------------------------------------
@blp.route("/adverse-event-terms")
class AeTerms(MethodView):
    @blp.response(200, AeTermListSchema)
    @_errors(401)
    @signed_in
    def get(self):
        """The adverse-event terms (PRO-CTCAE based) with en and zh-CN labels, and the other fixed lists."""
        terms = AE_TERMS
        principal = current_principal()
        masked = principal.kind == "staff" and principal.masked
        if masked:
            for study in get_session().exec(select(Study)).all():
                terms = tuple(visible_terms(protocol_of(study), terms))
        # What was done with the study drug tells the arm: the masked assessor is not given the list.
        actions = {} if masked else {"actions_taken": list(ACTIONS_TAKEN)}
        return {
            **actions,
            "terms": [{"code": code, "labels": AE_TERM_LABELS[code]} for code in terms],
            "severities": list(SEVERITIES),
            "relatedness": list(RELATEDNESS),
            "outcomes": list(OUTCOMES),
            "serious_criteria": list(SERIOUS_CRITERIA),
            "signature_meanings": list(SIGNATURE_MEANINGS),
        }


@blp.route("/ctcae-terms")
class CtcaeTerms(MethodView):
    @require_staff(masked_safe=True)
    @blp.response(200, CtcaeTermSchema(many=True))
    @_errors(401, 403)
    def get(self):
        """The CTCAE v5.0 terms adverse events are coded with, with their MedDRA codes and SOCs (a curated
        subset of the NCI list); to the masked assessor, without the terms the protocol withholds."""
        codes = ctcae_codes()
        if current_principal().masked:
            codes = tuple(visible_ctcae_codes([protocol_of(s) for s in get_session().exec(select(Study))], codes))
        return [ctcae_term(code) for code in codes]


@blp.route(f"/participants/<{ID}:participant_id>/adverse-events")
class AdverseEventList(MethodView):
    @require_staff(masked_safe=True)
    @blp.response(200, AdverseEventSchema(many=True))
    @_errors(401, 403, 404)
    def get(self, participant_id):
        """The participant's adverse events, newest first, with alert state and review."""
        session = get_session()
        participant = visible_participant(participant_id)
        rows = session.exec(
            select(AdverseEvent)
            .where(AdverseEvent.participant_id == participant.id)
            .order_by(AdverseEvent.reported_at.desc(), AdverseEvent.id.desc())
        ).all()
        alerts = _alerts_of(session, [row.id for row in rows])
        return _shown_aes([(row, participant, alerts.get(row.id)) for row in rows])

    @require_staff(*UNMASKED)
    @blp.arguments(AdverseEventCreateSchema)
    @blp.response(201, AdverseEventSchema)
    @_errors(401, 403, 404, 422)
    def post(self, data, participant_id):
        """Report an adverse event on the participant's behalf; a suspected-serious one pages the on-call numbers."""
        principal = current_principal()
        session = get_session()
        participant = visible_participant(participant_id, principal)
        ae = report_adverse_event(
            session,
            participant=participant,
            actor=principal.actor,
            now=utcnow(),
            vault=get_vault(),
            reason=data["reason"] or "reported to staff",
            **structured_report(data),
        )
        return _one_ae(session, ae, participant)


@blp.route(f"/adverse-events/<{ID}:ae_id>")
class AdverseEventDetail(MethodView):
    @require_staff(masked_safe=True)
    @blp.response(200, AdverseEventSchema)
    @_errors(401, 403, 404)
    def get(self, ae_id):
        """One adverse event with its alert and review."""
        session = get_session()
        ae, participant = _visible_ae(session, ae_id)
        return _one_ae(session, ae, participant)


@blp.route(f"/adverse-events/<{ID}:ae_id>/review")
class AdverseEventReview(MethodView):
    @_reviewers_only("review")
    @blp.arguments(AdverseEventReviewSchema)
    @blp.response(200, AdverseEventSchema)
    @_errors(401, 403, 404, 409, 422)
    def post(self, data, ae_id):
        """Grade an adverse event (investigator/admin): CTCAE v5 grade, seriousness, criteria, relatedness, outcome."""
        session = get_session()
        ae, participant = _visible_ae(session, ae_id)
        review_adverse_event(
            session,
            ae=ae,
            actor=current_principal().actor,
            now=utcnow(),
            ctcae_grade=data["ctcae_grade"],
            serious=data["serious"],
            serious_criteria=data["serious_criteria"],
            relatedness=data["relatedness"],
            outcome=data["outcome"],
            reason=data["reason"],
        )
        return _one_ae(session, ae, participant)


@blp.route(f"/adverse-events/<{ID}:ae_id>/record")
class AdverseEventRecord(MethodView):
    @require_staff(
        *UNMASKED, refusal="only a nurse, investigator or admin may complete an adverse event (your role: {role})"
    )
    @blp.arguments(AdverseEventRecordSchema)
    @blp.response(200, AdverseEventSchema)
    @_errors(401, 403, 404, 422)
    def post(self, data, ae_id):
        """Complete an adverse event into an SAE-ready record: CTCAE v5 term, onset and stop date, severity,
        ongoing, went to hospital, action taken with the study drug, when the site became aware, narrative.

        Fields left out are kept; the participant's own words are never changed. Every change is audited with the
        reason. Correcting `aware_at` moves the open reporting deadline of a suspected-serious event (it runs
        from awareness). After a signature the change is a new version, to be signed again."""
        session = get_session()
        ae, participant = _visible_ae(session, ae_id)
        reason = data.pop("reason", None)
        complete_adverse_event(
            session,
            ae=ae,
            actor=current_principal().actor,
            now=utcnow(),
            changes=data,
            vault=get_vault(),
            reason=reason,
        )
        return _one_ae(session, ae, participant)


@blp.route(f"/adverse-events/<{ID}:ae_id>/follow-up")
class AdverseEventFollowUp(MethodView):
    @_reviewers_only("follow up")
    @blp.arguments(AdverseEventFollowUpSchema)
    @blp.response(200, AdverseEventSchema)
    @_errors(401, 403, 404, 422)
    def post(self, data, ae_id):
        """Follow-up of an adverse event (investigator/admin): outcome, stop date, ongoing, action taken,
        narrative, with a reason.

        Fields left out are kept. After a signature the follow-up is a new version, to be signed again;
        the signed version stays readable under .../versions."""
        session = get_session()
        ae, participant = _visible_ae(session, ae_id)
        reason = data.pop("reason")
        follow_up_adverse_event(
            session, ae=ae, actor=current_principal().actor, now=utcnow(), changes=data, reason=reason
        )
        return _one_ae(session, ae, participant)


@blp.route(f"/adverse-events/<{ID}:ae_id>/versions")
class AdverseEventVersions(MethodView):
    @require_staff(
        *UNMASKED, refusal="the versions hold free text the masked assessor may not read (your role: {role})"
    )
    @blp.response(200, AeVersionSchema(many=True))
    @_errors(401, 403, 404)
    def get(self, ae_id):
        """Every version of an adverse event, oldest first, each with its content, changes and signatures."""
        session = get_session()
        ae, _ = _visible_ae(session, ae_id)
        return [version_shown(view) for view in history(session, ae)]


@blp.route(f"/adverse-events/<{ID}:ae_id>/sign-off")
class AdverseEventSignOff(MethodView):
    @_reviewers_only("sign off")
    @blp.arguments(AdverseEventSignSchema)
    @blp.response(200, AdverseEventSchema)
    @_sign_errors(401, 403, 404, 409, 422, 429)
    def post(self, data, ae_id):
        """Sign the current version of a reviewed adverse event (investigators and admins; nurses cannot).

        An electronic signature (21 CFR 11.50, 11.200): your own email and password again, and its meaning
        (reviewed or approved). It records signer, time, meaning and the SHA-256 of the content signed. A wrong
        password signs nothing and counts towards the account's sign-in lockout."""
        session = get_session()
        ae, participant = _visible_ae(session, ae_id)
        principal = current_principal()
        try:
            sign_adverse_event(
                session,
                ae=ae,
                staff_id=principal.id,
                email=data["email"],
                password=data["password"],
                meaning=data["meaning"],
                actor=principal.actor,
                now=utcnow(),
                policy=lockout_policy(),
            )
        except Refused as exc:
            refuse_sign_in(exc)
        return _one_ae(session, ae, participant)
