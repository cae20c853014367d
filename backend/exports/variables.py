"""The declared variables of every export dataset: name, label, type, unit and allowed values, in one place.

The CSV's data_dictionary.csv, ODM's ItemDefs and CodeLists, and the masked variant are all read from these
declarations; a variable with `masked=False` tells the arm (or is free text) and is left out of the masked variant."""

from __future__ import annotations

from dataclasses import dataclass

from notifications.models import OutboxStatus, Purpose
from schedules.ctcae import ctcae_codes
from schedules.models import (
    AlertKind,
    AlertState,
    DeviationClass,
    DeviationKind,
    DeviationReview,
    DoseState,
    InjectionSite,
    ParticipantStatus,
)
from schedules.protocol import Protocol
from schedules.vocabulary import (
    ACTIONS_TAKEN,
    AE_TERMS,
    OUTCOMES,
    RELATEDNESS,
    SERIOUS_CRITERIA,
    SEVERITIES,
    SIGNATURE_MEANINGS,
    VAS_MODES,
)

TYPES = ("text", "integer", "float", "date", "datetime", "boolean")
SOURCES = ("sms", "app", "staff")
VAS_STATUSES = ("valid", "withdrawn", "corrected")
CTCAE_CODES = ctcae_codes()
SYSTEM_ALERTS = {AlertKind.AUDIT_CHAIN_BROKEN.value}  # about no participant: never in an export


@dataclass(frozen=True)
class Variable:
    """One column of a dataset (one ItemDef in ODM)."""

    name: str
    label: str
    type: str
    unit: str = ""
    allowed: tuple[str, ...] = ()
    masked: bool = True  # kept in the masked variant
    many: bool = False  # several allowed values, comma-separated


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its file name, what one row is, its variables; `masked=False`: absent from the masked variant."""

    name: str
    label: str
    variables: tuple[Variable, ...]
    masked: bool = True

    def variable(self, name: str) -> Variable:
        """The variable called `name`."""
        return next(v for v in self.variables if v.name == name)


def _values(enum_type, *, without=()) -> tuple[str, ...]:
    return tuple(member.value for member in enum_type if member.value not in without)


def _code(dataset: str) -> Variable:
    return Variable("study_code", f"Participant study code (pseudonym; the {dataset} belong to them)", "text")


def dataset_specs(protocol: Protocol) -> tuple[DatasetSpec, ...]:
    """Every dataset of an export of a study run under `protocol`, in file order."""
    units = sorted({arm.regimen.dose_unit for arm in protocol.arms if arm.regimen})
    return (
        DatasetSpec(
            "participants",
            "One row per enrolled participant",
            (
                Variable("study_code", "Participant study code (pseudonym)", "text"),
                Variable("site", "Site code", "text"),
                Variable("arm", "Randomised arm", "text", allowed=protocol.arm_codes, masked=False),
                Variable("status", "Participation status", "text", allowed=_values(ParticipantStatus)),
                Variable("language", "Language of messages", "text", allowed=protocol.languages),
                Variable("time_zone", "Participant's IANA time zone (local dates are in it)", "text"),
                Variable("enrolled_at", "Enrolled at (UTC)", "datetime"),
                Variable("enrolled_local_date", "Enrolment date (participant's local day)", "date"),
                Variable("first_dose_date", "First dose date (local day)", "date", masked=False),
                Variable("treatment_end_date", "Treatment end date (local day, exclusive)", "date", masked=False),
                Variable("follow_up_end_date", "Follow-up end date (local day)", "date", masked=False),
                Variable("held_from", "Dosing held from (local day), while on hold", "date", masked=False),
                Variable("withdrawn_at", "Withdrawn at (UTC)", "datetime"),
                Variable("sms_consent", "Consented to SMS", "boolean"),
                Variable("opted_out", "Opted out of SMS (STOP)", "boolean"),
            ),
        ),
        DatasetSpec(
            "doses",
            "One row per scheduled dose (planned, reported, missed, held or cancelled)",
            (
                _code("doses"),
                Variable("dose_seq", "Planned dose (1-based, per participant; every dose ever planned)", "integer"),
                Variable("dose_number", "Dose number as the pages count it (empty when held or cancelled)", "integer"),
                Variable("local_date", "Dose day (participant's local day)", "date"),
                Variable("due_at", "Reminder time (UTC)", "datetime"),
                Variable("window_opens_at", "Report window opens (UTC)", "datetime"),
                Variable("window_closes_at", "Report window closes (UTC)", "datetime"),
                Variable("state", "Dose state", "text", allowed=_values(DoseState)),
                Variable("reported_at", "Reported at (UTC)", "datetime"),
                Variable("taken_at", "Taken at (UTC), as reported", "datetime"),
                Variable("taken_local_date", "Day taken (participant's local day)", "date"),
                Variable("dose_amount", "Planned dose", "float", unit=units[0] if len(units) == 1 else ""),
                Variable("dose_unit", "Unit of the planned dose", "text", allowed=tuple(units)),
                Variable("route", "Route of administration", "text"),
                Variable("injection_site", "Injection site", "text", allowed=_values(InjectionSite)),
                Variable("source", "Reported through", "text", allowed=SOURCES),
            ),
            masked=False,
        ),
        DatasetSpec(
            "vas",
            "One row per patient-global VAS answer (withdrawals and corrections are rows of their own)",
            (
                _code("VAS answers"),
                Variable("vas_seq", "VAS answer number (1-based, per participant)", "integer"),
                Variable(
                    "value",
                    f"Disease activity, {protocol.vas.scale_min} (not active) to {protocol.vas.scale_max} "
                    "(extremely active)",
                    "float",
                    unit="cm",
                ),
                Variable("recorded_at", "Recorded at (UTC)", "datetime"),
                Variable("local_date", "Day answered (participant's local day)", "date"),
                Variable("source", "Answered through", "text", allowed=SOURCES),
                Variable(
                    "mode",
                    "How it was measured: a number typed, or a mark on the app's line",
                    "text",
                    allowed=VAS_MODES,
                ),
                Variable("status", "Whether the answer counts", "text", allowed=VAS_STATUSES),
                Variable("replaces_vas_seq", "The answer this one corrects (vas_seq)", "integer"),
                Variable("withdrawn_at", "Withdrawn at (UTC)", "datetime"),
                Variable("raw_text", "The SMS the participant typed", "text", masked=False),
            ),
        ),
        DatasetSpec(
            "adverse_events",
            "One row per adverse-event report, as currently reviewed",
            (
                _code("adverse events"),
                Variable("ae_seq", "Adverse-event number (1-based, per participant)", "integer"),
                Variable("reported_at", "Reported at (UTC)", "datetime"),
                Variable("reported_local_date", "Day reported (participant's local day)", "date"),
                Variable("aware_at", "Site became aware at (UTC; the 24-hour reporting clock starts here)", "datetime"),
                Variable("source", "Reported through", "text", allowed=SOURCES),
                Variable("term", "Term (PRO-CTCAE-based code)", "text", allowed=AE_TERMS),
                Variable("ctcae_term", "CTCAE v5 term (MedDRA code; empty until coded)", "text", allowed=CTCAE_CODES),
                Variable("ctcae_term_name", "CTCAE v5 term", "text"),
                Variable("other_text", "The term in the reporter's words (term other)", "text", masked=False),
                Variable("raw_text", "The SMS the participant typed", "text", masked=False),
                Variable("onset_date", "Onset date (local day)", "date"),
                Variable("stop_date", "Stop date (local day)", "date"),
                Variable("severity", "Severity as reported", "text", allowed=SEVERITIES),
                Variable("ongoing", "Ongoing when reported", "boolean"),
                Variable("went_to_hospital", "Went to hospital", "boolean"),
                Variable("suspected_serious", "Suspected serious (a serious word or hospital)", "boolean"),
                Variable("matched_keywords", "Serious words found in the text (comma-separated)", "text"),
                Variable("ctcae_grade", "CTCAE v5 grade", "integer", allowed=("1", "2", "3", "4", "5")),
                Variable("serious", "Serious (investigator)", "boolean"),
                Variable("serious_criteria", "Seriousness criteria", "text", allowed=SERIOUS_CRITERIA, many=True),
                Variable("relatedness", "Relatedness to the study drug", "text", allowed=RELATEDNESS),
                Variable(
                    "action_taken", "Action taken with the study drug", "text", allowed=ACTIONS_TAKEN, masked=False
                ),
                Variable("outcome", "Outcome", "text", allowed=OUTCOMES),
                Variable("narrative", "Narrative (investigator)", "text", masked=False),
                Variable("version", "Current version of the record", "integer"),
                Variable("reviewed_by", "Reviewed by (staff account)", "text"),
                Variable("reviewed_at", "Reviewed at (UTC)", "datetime"),
                Variable("signed_off_by", "Latest signature of the current version by (staff account)", "text"),
                Variable("signed_off_at", "Latest signature of the current version at (UTC)", "datetime"),
            ),
        ),
        DatasetSpec(
            "ae_signatures",
            "One row per electronic signature of an adverse-event version",
            (
                _code("signed adverse events"),
                Variable("ae_seq", "Adverse-event number (adverse_events.ae_seq)", "integer"),
                Variable("version", "Version signed", "integer"),
                Variable("signer", "Signed by (staff account)", "text"),
                Variable("signer_role", "Signer's role", "text"),
                Variable("meaning", "Meaning of the signature", "text", allowed=SIGNATURE_MEANINGS),
                Variable("signed_at", "Signed at (UTC)", "datetime"),
                Variable("content_hash", "SHA-256 of the version's content signed", "text"),
            ),
        ),
        DatasetSpec(
            "alerts",
            "One row per alert of the nurse queue about a participant",
            (
                _code("alerts"),
                Variable(
                    "kind", "What needed a human", "text", allowed=_values(AlertKind, without={"audit_chain_broken"})
                ),
                Variable("priority", "Priority", "text", allowed=("high", "normal")),
                Variable("state", "State", "text", allowed=_values(AlertState)),
                Variable("opened_at", "Opened at (UTC)", "datetime"),
                Variable("deadline_at", "Reporting deadline (UTC)", "datetime"),
                Variable("acknowledged_at", "Acknowledged at (UTC)", "datetime"),
                Variable("acknowledged_by", "Acknowledged by (staff account)", "text"),
                Variable("resolved_at", "Resolved at (UTC)", "datetime"),
                Variable("resolved_by", "Resolved by (staff account)", "text"),
                Variable("ae_seq", "The adverse event it is about (adverse_events.ae_seq)", "integer"),
                Variable("dose_seq", "The dose it is about (doses.dose_seq)", "integer", masked=False),
            ),
        ),
        DatasetSpec(
            "deviations",
            "One row per protocol deviation of the log (all of them are about dosing)",
            (
                _code("deviations"),
                Variable("deviation_seq", "Deviation number (1-based, per participant)", "integer"),
                Variable("kind", "What departed from the protocol", "text", allowed=_values(DeviationKind)),
                Variable("classification", "How much it matters", "text", allowed=_values(DeviationClass)),
                Variable("rule", "The protocol rule that classified it", "text"),
                Variable("detail", "Facts found later", "text"),
                Variable("local_date", "The participant's local day of the dose", "date"),
                Variable("dose_seq", "The dose it is about (doses.dose_seq)", "integer"),
                Variable("detected_at", "Detected at (UTC)", "datetime"),
                Variable("review_state", "Review", "text", allowed=_values(DeviationReview)),
                Variable("comment", "The reviewer's comment", "text"),
                Variable("reviewed_by", "Reviewed by (staff account)", "text"),
                Variable("reviewed_at", "Reviewed at (UTC)", "datetime"),
            ),
            masked=False,
        ),
        DatasetSpec(
            "messages",
            "One row per SMS to or from a participant: metadata only, never the text",
            (
                _code("messages"),
                Variable("direction", "Direction", "text", allowed=("outbound", "inbound")),
                Variable("purpose", "Why it was sent (outbound)", "text", allowed=_values(Purpose)),
                Variable("intent", "What it was read as (inbound)", "text"),
                Variable("status", "Delivery status (outbound)", "text", allowed=_values(OutboxStatus)),
                Variable("provider_status", "The provider's last status (outbound)", "text"),
                Variable("at", "Planned for (outbound) or received at (inbound), UTC", "datetime"),
                Variable("sent_at", "Handed to the provider at (UTC)", "datetime"),
                Variable("needs_review", "Left for a nurse to read (inbound)", "boolean"),
            ),
            masked=False,
        ),
    )
