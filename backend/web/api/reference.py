"""Studies and sites: the reference data enrollment refers to."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlmodel import select

from backend.db import get_session
from backend.identity import scope
from backend.web.api.schemas import SiteSchema, StudySchema
from backend.web.auth import current_principal, require_staff
from backend.web.masking import masked_title
from schedules.models import Site, Study
from schedules.studies import protocol_of

blp = Blueprint("reference", __name__, url_prefix="/api/v1", description="Studies and sites.")


@blp.route("/studies")
class Studies(MethodView):
    @blp.response(200, StudySchema(many=True))
    @require_staff(masked_safe=True)
    def get(self):
        """List loaded studies; the masked assessor reads each study's masked title and no arms."""
        masked = current_principal().masked
        rows = get_session().exec(select(Study).order_by(Study.code)).all()
        return [
            {
                "code": s.code,
                "title": masked_title(s) if masked else s.title,
                "loaded_at": s.loaded_at,
                "arms": [] if masked else list(protocol_of(s).arm_codes),
            }
            for s in rows
        ]


@blp.route("/sites")
class Sites(MethodView):
    @blp.response(200, SiteSchema(many=True))
    @require_staff(masked_safe=True)
    def get(self):
        """List the sites the caller may see."""
        principal = current_principal()
        query = select(Site).where(scope.site_filter(principal, Site.id)).order_by(Site.code)
        return get_session().exec(query).all()
