"""The protocol-deviation log: list with filters, and a nurse's review of one deviation.

Deviations are about missed and late doses and holds: they tell the arm, so the masked assessor is refused every
route."""

from __future__ import annotations

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate
from sqlalchemy.orm import object_session
from sqlmodel import Session, select

from backend.db import get_session
from backend.identity import scope
from backend.identity.principal import UNMASKED, Principal
from backend.operations.deviations import review_deviation
from backend.web.api.errors import error_responses
from backend.web.api.schemas import NO_NUL, site_code_of
from backend.web.auth import current_principal, require_staff
from backend.web.paths import ID
from schedules.dbtypes import utcnow
from schedules.models import Deviation, DeviationClass, DeviationKind, DeviationReview, Participant, Site
from schedules.queries import deviation_query

blp = Blueprint(
    "deviations", __name__, url_prefix="/api/v1", description="The protocol-deviation log (unmasked staff only)."
)
_errors = error_responses(blp)

KINDS = [k.value for k in DeviationKind]
CLASSES = [c.value for c in DeviationClass]
REVIEWS = [r.value for r in DeviationReview]
REFUSAL = "the masked assessor does not see the deviation log"


def _study_code(deviation: Deviation) -> str:
    return object_session(deviation).get(Participant, deviation.participant_id).study_code


class DeviationSchema(Schema):
    """One deviation of the log and its review."""

    id = fields.Integer(metadata={"example": 4})
    participant_id = fields.Integer(metadata={"example": 3})
    study_code = fields.Function(_study_code, metadata={"example": "P-021"})
    site = fields.Function(site_code_of, metadata={"example": "PKUPH"})
    dose_id = fields.Integer(allow_none=True, metadata={"example": 17})
    kind = fields.String(validate=validate.OneOf(KINDS), metadata={"example": "missed_dose"})
    classification = fields.String(validate=validate.OneOf(CLASSES), metadata={"example": "major"})
    rule = fields.String(metadata={"example": "missed_in_a_row_major = 2: 2 doses not taken in a row"})
    detail = fields.String(metadata={"example": ""})
    local_date = fields.Date(metadata={"description": "the participant's local day", "example": "2026-03-03"})
    detected_at = fields.DateTime(metadata={"example": "2026-03-04T04:01:00+00:00"})
    review_state = fields.String(validate=validate.OneOf(REVIEWS), metadata={"example": "open"})
    comment = fields.String(metadata={"example": ""})
    reviewed_by = fields.String(metadata={"example": ""})
    reviewed_at = fields.DateTime(allow_none=True, metadata={"example": None})


class DeviationQuerySchema(Schema):
    """Filters of the log; each repeatable filter matches any of its values."""

    site = fields.String(
        load_default=None,
        metadata={"description": "site code; admins only (others always see their own site)", "example": "PKUPH"},
    )
    participant = fields.String(load_default=None, metadata={"description": "study code", "example": "P-021"})
    kind = fields.List(fields.String(validate=validate.OneOf(KINDS)), load_default=None, metadata={"example": []})
    classification = fields.List(
        fields.String(validate=validate.OneOf(CLASSES)), load_default=None, metadata={"example": ["major"]}
    )
    review_state = fields.List(
        fields.String(validate=validate.OneOf(REVIEWS)), load_default=None, metadata={"example": ["open"]}
    )
    date_from = fields.Date(load_default=None, metadata={"description": "local date, inclusive", "example": None})
    date_to = fields.Date(load_default=None, metadata={"description": "local date, inclusive", "example": None})
    limit = fields.Integer(load_default=200, validate=validate.Range(1, 1000), metadata={"example": 200})
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 2**31 - 1), metadata={"example": 0})


class DeviationReviewSchema(Schema):
    """A nurse's review: the state and a comment saying what was found."""

    review_state = fields.String(required=True, validate=validate.OneOf(REVIEWS), metadata={"example": "reviewed"})
    comment = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=2000), NO_NUL],
        metadata={"example": "participant was travelling; dose taken next morning"},
    )


def filtered(session: Session, principal: Principal, args: dict):
    """The caller's deviations by the list's filters (the page uses the same), oldest day first."""
    query = deviation_query(
        kinds=args.get("kind"),
        classifications=args.get("classification"),
        review_states=args.get("review_state"),
        date_from=args.get("date_from"),
        date_to=args.get("date_to"),
    ).where(scope.site_filter(principal, Deviation.site_id))
    if args.get("site"):
        query = query.join(Site, Site.id == Deviation.site_id).where(Site.code == args["site"])
    if args.get("participant"):
        query = query.join(Participant, Participant.id == Deviation.participant_id).where(
            Participant.study_code == args["participant"]
        )
    return query


def _load_references(session: Session, deviations: list[Deviation]) -> None:
    """The participants and sites of a page of deviations in two queries; kept until the response is dumped."""
    participant_ids = {d.participant_id for d in deviations}
    site_ids = {d.site_id for d in deviations}
    g.deviation_references = (
        session.exec(select(Participant).where(Participant.id.in_(participant_ids))).all() if deviations else [],
        session.exec(select(Site).where(Site.id.in_(site_ids))).all() if deviations else [],
    )


def visible_deviation(session: Session, principal: Principal, deviation_id: int) -> Deviation:
    """The deviation if the caller may see it: 404 outside their site."""
    deviation = session.get(Deviation, deviation_id)
    if deviation is None or not principal.can_see_site(deviation.site_id):
        abort(404, message="no such deviation")
    return deviation


@blp.route("/deviations")
class DeviationList(MethodView):
    @require_staff(*UNMASKED, refusal=REFUSAL)
    @blp.arguments(DeviationQuerySchema, location="query")
    @blp.response(200, DeviationSchema(many=True))
    @_errors(401, 403, 422)
    def get(self, args):
        """The caller's site's deviations, oldest local day first; `limit` and `offset` page through them."""
        session = get_session()
        query = filtered(session, current_principal(), args).offset(args["offset"]).limit(args["limit"])
        deviations = list(session.exec(query).all())
        _load_references(session, deviations)
        return deviations


@blp.route(f"/deviations/<{ID}:deviation_id>")
class DeviationDetail(MethodView):
    @require_staff(*UNMASKED, refusal=REFUSAL)
    @blp.response(200, DeviationSchema)
    @_errors(401, 403, 404)
    def get(self, deviation_id):
        """One deviation."""
        return visible_deviation(get_session(), current_principal(), deviation_id)

    @require_staff(*UNMASKED, refusal=REFUSAL)
    @blp.arguments(DeviationReviewSchema)
    @blp.response(200, DeviationSchema)
    @_errors(401, 403, 404, 422)
    def patch(self, data, deviation_id):
        """Review a deviation: its state (open, reviewed, not_a_deviation) and a comment (audited)."""
        principal = current_principal()
        session = get_session()
        return review_deviation(
            session,
            deviation=visible_deviation(session, principal, deviation_id),
            state=data["review_state"],
            comment=data["comment"],
            actor=principal.actor,
            now=utcnow(),
        )
