"""The `participants show --json` report: the API's own resource schemas, times in UTC with a Z."""

from __future__ import annotations

from marshmallow import Schema, fields

from backend.web.api.schemas import AdherenceSchema, DoseSchema, ParticipantSchema
from backend.web.api.symptom_schemas import AlertSchema


class ZuluDateTime(fields.DateTime):
    """An aware datetime as ISO 8601 in UTC ending in Z (what operators' scripts parse)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else value.isoformat().replace("+00:00", "Z")


class _ReportDoseSchema(DoseSchema):
    due_at = ZuluDateTime()
    window_opens_at = ZuluDateTime()
    window_closes_at = ZuluDateTime()


class _ReportAlertSchema(AlertSchema):
    opened_at = ZuluDateTime()
    deadline_at = ZuluDateTime(allow_none=True)


PARTICIPANT_FIELDS = (
    "id",
    "study_code",
    "arm",
    "status",
    "time_zone",
    "language",
    "reminder_time",
    "first_dose_date",
    "treatment_end_date",
    "follow_up_end_date",
    "opted_out",
)


class ParticipantReportSchema(Schema):
    """The participant, every dose (UTC due time, window, state), adherence figures and open alerts."""

    participant = fields.Nested(ParticipantSchema(only=PARTICIPANT_FIELDS))
    doses = fields.Nested(
        _ReportDoseSchema(
            many=True, only=("seq", "local_date", "due_at", "window_opens_at", "window_closes_at", "state")
        )
    )
    adherence = fields.Nested(AdherenceSchema(exclude=("last_dose_at",)))
    open_alerts = fields.Nested(
        _ReportAlertSchema(many=True, only=("id", "kind", "priority", "state", "summary", "opened_at", "deadline_at"))
    )
