"""The participant app: who am I, schedule, reports, messages, calendar.

Every /me endpoint acts on the participant behind the access token and nobody else: there is no
participant id to tamper with, and another participant's VAS or adverse event is simply not found."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlmodel import Session, select

from backend.db import get_session
from backend.extensions import get_vault, limiter
from backend.identity.principal import participant_actor
from backend.identity.security import token_digest
from backend.operations.app_access import create_calendar_link, remove_calendar_link
from backend.operations.doses import record_dose
from backend.operations.participants import change_details
from backend.operations.symptoms import VasRefused, ae_acknowledgement, record_vas, report_adverse_event
from backend.web.api.app_schemas import (
    CalendarTokenSchema,
    DoseQuerySchema,
    InjectionSitesSchema,
    MeSchema,
    MessageQuerySchema,
    MeUpdateSchema,
    MyAdverseEventCreateSchema,
    MyAdverseEventSchema,
    MyDoseReportSchema,
    MyDoseSchema,
    MyMessageSchema,
    MyVasCreateSchema,
    MyVasSchema,
)
from backend.web.api.errors import error_responses
from backend.web.api.schemas import ApiErrorSchema
from backend.web.api.symptom_schemas import Shown, structured_report
from backend.web.auth import current_principal, public, require_participant
from backend.web.paths import ID
from notifications.models import InboundMessage, OutboundMessage
from notifications.templates import render
from schedules.dbtypes import utcnow
from schedules.errors import InvalidInput
from schedules.injection_sites import last_used, site_history, suggest_site
from schedules.models import AdverseEvent, Participant, Study
from schedules.queries import dose_by_seq, doses_of, vas_history
from schedules.studies import protocol_of

blp = Blueprint(
    "app_participant",
    __name__,
    url_prefix="/api/v1",
    description="The participant app: who am I, schedule, reports, messages, calendar.",
)

ERRORS = {
    401: "not authenticated (missing, unknown or expired access token)",
    403: "not a participant app token",
    404: "not found",
    409: "conflicts with the dose's current state",
    422: "invalid input",
}


_errors = error_responses(blp, ERRORS)


def _me(session: Session) -> Participant:
    participant = session.get(Participant, current_principal().id)
    if participant is None:
        abort(404, message="no such participant")
    return participant


def ae_view(session: Session, participant: Participant, ae: AdverseEvent) -> Shown:
    """An adverse event as its reporter sees it, for MyAdverseEventSchema (without the investigator's grading)."""
    return Shown(ae, advice=ae_acknowledgement(session, participant=participant, ae=ae, vault=get_vault()))


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, MeSchema)
    @_errors(401, 403)
    @require_participant
    def get(self):
        """Who am I: study code, site phone, language, reminder time and time zone."""
        return _me(get_session())

    @blp.arguments(MeUpdateSchema)
    @blp.response(200, MeSchema)
    @_errors(401, 403, 422)
    @require_participant
    def patch(self, data):
        """Change my reminder time or language; reminders are re-planned at once."""
        session = get_session()
        participant = _me(session)
        return change_details(
            session,
            participant=participant,
            vault=get_vault(),
            actor=participant_actor(participant.id),
            reason="changed by participant in app",
            now=utcnow(),
            reminder_time=data.get("reminder_time"),
            language=data.get("language"),
        )


@blp.route("/me/doses")
class MyDoses(MethodView):
    @blp.arguments(DoseQuerySchema, location="query")
    @blp.response(200, MyDoseSchema(many=True))
    @_errors(401, 403, 422)
    @require_participant
    def get(self, query):
        """My schedule: every dose with its reminder time, report window (UTC) and state, in date order."""
        session = get_session()
        participant = _me(session)
        now = utcnow()
        doses = doses_of(session, participant.id)
        if query["when"] == "upcoming":
            doses = [d for d in doses if d.window_closes_at > now]
        elif query["when"] == "past":
            doses = [d for d in doses if d.window_closes_at <= now]
        return doses


@blp.route(f"/me/doses/<{ID}:seq>")
class MyDose(MethodView):
    @blp.response(200, MyDoseSchema)
    @_errors(401, 403, 404)
    @require_participant
    def get(self, seq):
        """One of my doses by its number."""
        session = get_session()
        dose = dose_by_seq(session, _me(session), seq)
        if dose is None:
            abort(404, message=f"you have no dose {seq}")
        return dose


@blp.route(f"/me/doses/<{ID}:seq>/report")
class MyDoseReport(MethodView):
    @blp.arguments(MyDoseReportSchema)
    @blp.response(200, MyDoseSchema)
    @_errors(401, 403, 404, 409, 422)
    @require_participant
    def post(self, data, seq):
        """Report a dose: taken (when, and where injected) or not taken; its reminders are cancelled."""
        session = get_session()
        participant = _me(session)
        dose = dose_by_seq(session, participant, seq)
        if dose is None:
            abort(404, message=f"you have no dose {seq}")
        return record_dose(
            session,
            dose=dose,
            taken=data["taken"],
            actor=participant_actor(participant.id),
            now=utcnow(),
            taken_at=data["taken_at"],
            injection_site=data["injection_site"],
            note=data["note"],
            reason="reported in app",
        )


@blp.route("/me/vas")
class MyVas(MethodView):
    @blp.response(200, MyVasSchema(many=True))
    @_errors(401, 403)
    @require_participant
    def get(self):
        """My VAS history, oldest first (withdrawn and corrected ones marked so)."""
        session = get_session()
        return vas_history(session, _me(session).id)

    @blp.arguments(MyVasCreateSchema)
    @blp.response(201, MyVasSchema)
    @_errors(401, 403, 409, 422)
    @require_participant
    def post(self, data):
        """Send a VAS: how active my disease has felt over the past week, on my study's scale (e.g. 0.0 to 10.0).

        `mode` says how it was measured: `vas_line` for a mark on the 100 mm line, `sms_numeric` (the default) for
        a number typed; the two are kept apart in analysis and exports."""
        session = get_session()
        participant = _me(session)
        try:
            return record_vas(
                session,
                participant=participant,
                value=data["value"],
                actor=participant_actor(participant.id),
                now=utcnow(),
                mode=data["mode"],
            )
        except VasRefused as refused:
            # The reason is a code; the participant reads it in their own language, on their protocol's scale.
            raise InvalidInput(
                render(f"app_vas_{refused.reason}", participant.language, **refused.params), field="value"
            ) from None


@blp.route("/me/injection-sites")
class MyInjectionSites(MethodView):
    @blp.response(200, InjectionSitesSchema)
    @_errors(401, 403)
    @require_participant
    def get(self):
        """The injection sites to rotate between, when I last used each, and the one to use next (least recent)."""
        session = get_session()
        participant = _me(session)
        rule = protocol_of(session.get(Study, participant.study_id)).injection_sites
        history = site_history(session, participant.id)
        latest = last_used(history, rule.sites)
        return {
            "suggested": suggest_site(history, rule.sites),
            "sites": [
                {"site": site, "label": rule.label(site, participant.language), "last_used_at": latest[site]}
                for site in rule.sites
            ],
        }


@blp.route("/me/adverse-events")
class MyAdverseEvents(MethodView):
    @blp.response(200, MyAdverseEventSchema(many=True))
    @_errors(401, 403)
    @require_participant
    def get(self):
        """The side effects I reported, newest first."""
        session = get_session()
        participant = _me(session)
        rows = session.exec(
            select(AdverseEvent)
            .where(AdverseEvent.participant_id == participant.id)
            .order_by(AdverseEvent.reported_at.desc(), AdverseEvent.id.desc())
        ).all()
        return [ae_view(session, participant, ae) for ae in rows]

    @blp.arguments(MyAdverseEventCreateSchema)
    @blp.response(201, MyAdverseEventSchema)
    @_errors(401, 403, 422)
    @require_participant
    def post(self, data):
        """Report a side effect; a nurse reviews each one, and 'went to hospital' alerts the on-call nurse at once."""
        session = get_session()
        participant = _me(session)
        ae = report_adverse_event(
            session,
            participant=participant,
            actor=participant_actor(participant.id),
            now=utcnow(),
            vault=get_vault(),
            raw_text=data["description"].strip(),
            **structured_report(data),
        )
        return ae_view(session, participant, ae)


@blp.route(f"/me/adverse-events/<{ID}:ae_id>")
class MyAdverseEvent(MethodView):
    @blp.response(200, MyAdverseEventSchema)
    @_errors(401, 403, 404)
    @require_participant
    def get(self, ae_id):
        """One side effect I reported."""
        session = get_session()
        participant = _me(session)
        ae = session.get(AdverseEvent, ae_id)
        if ae is None or ae.participant_id != participant.id:
            abort(404, message="no such adverse event")
        return ae_view(session, participant, ae)


@blp.route("/me/messages")
class MyMessages(MethodView):
    @blp.arguments(MessageQuerySchema, location="query")
    @blp.response(200, MyMessageSchema(many=True))
    @_errors(401, 403, 422)
    @require_participant
    def get(self, query):
        """The SMS sent to me and the ones I sent, newest first."""
        session = get_session()
        participant = _me(session)
        limit = query["limit"]
        sent = session.exec(
            select(OutboundMessage)
            .where(OutboundMessage.participant_id == participant.id, OutboundMessage.sent_at.is_not(None))
            .order_by(OutboundMessage.sent_at.desc(), OutboundMessage.id.desc())
            .limit(limit)
        ).all()
        received = session.exec(
            select(InboundMessage)
            .where(InboundMessage.participant_id == participant.id)
            .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
            .limit(limit)
        ).all()
        items = [
            {"direction": "outbound", "at": m.sent_at, "body": m.body, "purpose": m.purpose, "status": m.status}
            for m in sent
        ]
        items += [
            {"direction": "inbound", "at": m.received_at, "body": m.body, "purpose": None, "status": None}
            for m in received
        ]
        # An answer and the message it answers share an instant: the inbound one came first.
        items.sort(key=lambda item: (item["at"], item["direction"] == "outbound"), reverse=True)
        return items[:limit]


def _feed_url(secret: str) -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + f"/api/v1/calendar/{secret}.ics"


@blp.route("/me/calendar-token")
class MyCalendarToken(MethodView):
    @blp.response(201, CalendarTokenSchema)
    @_errors(401, 403)
    @require_participant
    def post(self):
        """Create the secret address of my dose calendar (shown once); an older address stops working."""
        session = get_session()
        participant = _me(session)
        url = _feed_url(create_calendar_link(session, participant=participant))
        return {"url": url, "webcal_url": "webcal://" + url.split("://", 1)[1]}

    @blp.response(204)
    @_errors(401, 403)
    @require_participant
    def delete(self):
        """Turn my calendar address off."""
        session = get_session()
        remove_calendar_link(session, participant=_me(session))
        return None


@blp.route("/calendar/<string:secret>.ics")
class CalendarFeed(MethodView):
    decorators = [limiter.limit("60 per minute")]

    @blp.response(
        200,
        description="iCalendar (RFC 5545): one event per dose that is not cancelled",
        content_type="text/calendar",
        example="BEGIN:VCALENDAR\r\nVERSION:2.0\r\n...END:VCALENDAR\r\n",
    )
    @blp.alt_response(404, schema=ApiErrorSchema, description="no calendar at this address (unknown or replaced)")
    @blp.alt_response(429, schema=ApiErrorSchema, description="too many requests")
    @blp.doc(security=[])
    @public
    def get(self, secret):
        """The dose calendar at its secret address (subscribe to it from the phone's calendar app)."""
        session = get_session()
        participant = None
        if secret:
            participant = session.exec(
                select(Participant).where(Participant.calendar_token_hash == token_digest(secret))
            ).first()
        if participant is None:
            abort(404, message="no calendar at this address; create a new one in the app")
        from backend.web.ical import (
            dose_calendar,  # icalendar only in the processes that serve a feed
        )

        body = dose_calendar(
            participant,
            doses_of(session, participant.id),
            now=utcnow(),
            uid_domain=urlsplit(current_app.config["PUBLIC_BASE_URL"]).hostname or "trial-companion",
        )
        response = Response(body, status=200, mimetype="text/calendar")
        response.headers["Cache-Control"] = "private, max-age=300"
        return response
