"""Study-wide exports: the CSV bundle (zip), CDISC ODM 1.3.2 and a FHIR R4B Bundle (backend/exports)."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from backend.db import get_session
from backend.exports.run import EXPORTERS, FORMATS, MEDIA_TYPES, build_export, check_format, record_export, render
from backend.web.api.errors import error_responses
from backend.web.auth import current_principal, require_staff
from schedules.dbtypes import utcnow

blp = Blueprint("exports", __name__, url_prefix="/api/v1", description="Study-wide exports.")
_errors = error_responses(blp)
REFUSAL = "exports are for investigators and admins (the masked assessor gets the masked variant), not a {role}"


class ExportQuerySchema(Schema):
    """Which part of the study to export."""

    site = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "one site's participants only (within your own sites)", "example": "PKUPH"},
    )
    study = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "needed only when several studies are loaded", "example": "NCT04237987"},
    )


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_BUNDLE = {
    "schema": {
        "type": "object",
        "description": "a FHIR R4B Bundle of type collection",
        "required": ["resourceType", "type"],
        "properties": {"resourceType": {"type": "string", "enum": ["Bundle"]}, "type": {"type": "string"}},
    }
}
_CONTENT = {"application/zip": _BINARY, "application/xml": _BINARY, "application/fhir+json": _BUNDLE}


@blp.route("/exports/<string:export_format>")
class ExportDocument(MethodView):
    @require_staff(*EXPORTERS, refusal=REFUSAL, masked_safe=True)
    @blp.arguments(ExportQuerySchema, location="query")
    @blp.doc(
        parameters=[{"in": "path", "name": "export_format", "schema": {"type": "string", "enum": list(FORMATS)}}],
        responses={
            "200": {
                "description": "csv: a zip of one CSV per dataset, data_dictionary.csv and README.txt; odm: CDISC "
                "ODM 1.3.2 XML; fhir: a FHIR R4B collection Bundle. The masked assessor gets the masked variant.",
                "content": {media_type: _CONTENT[media_type] for media_type in MEDIA_TYPES.values()},
            }
        },
    )
    @_errors(401, 403, 404, 422)
    def get(self, args, export_format):
        """The study's data, pseudonymised (study codes, no phones or names); every export is audited."""
        principal = current_principal()
        session = get_session()
        fmt = check_format(export_format)
        export = build_export(session, principal, site_code=args["site"], study_code=args["study"], now=utcnow())
        document = render(export, fmt)
        record_export(session, export, fmt, actor=principal.actor, reason="export through the API", destination="api")
        # Streamed: the rows are read and the audit row written before the first byte goes out.
        response = Response(iter(document.chunks), status=200, mimetype=document.media_type)
        response.headers["Content-Disposition"] = f'attachment; filename="{document.filename}"'
        return response
