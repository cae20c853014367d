"""Plain words, in the page's language, for what would otherwise reach a nurse as a code: message statuses,
participant statuses, today's dose, spans of time."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from backend.web.i18n import local_day_text, local_text, page_language
from schedules.models import Dose
from schedules.protocol import DEFAULT_INJECTION_SITE_LABELS
from schedules.today import TodayState
from schedules.vocabulary import AE_TERM_LABELS

# How far a message got, in words (outbox statuses and the carrier's finer ones); "twiml" is a reply that went
# back inside Twilio's answer to the participant's own message.
STATUS_WORDS = {
    "planned": _l("waiting to be sent"),
    "sending": _l("being sent"),
    "sent": _l("sent, not yet confirmed"),
    "delivered": _l("delivered"),
    "read": _l("read"),
    "partially_delivered": _l("partly delivered"),
    "undelivered": _l("not delivered"),
    "failed": _l("could not be sent"),
    "expired": _l("dropped: too late to send"),
    "cancelled": _l("cancelled"),
    "twiml": _l("sent as the answer to their message"),
}


def status_words(status: str) -> str:
    """A message status as a nurse reads it."""
    return str(STATUS_WORDS.get(status, status.replace("_", " ")))


PARTICIPANT_STATUS_WORDS = {
    "active": _l("active"),
    "on_hold": _l("dosing on hold"),
    "withdrawn": _l("withdrawn"),
}


def participant_status_words(status: str) -> str:
    """A participant's status as a nurse reads it."""
    return str(PARTICIPANT_STATUS_WORDS.get(status, status.replace("_", " ")))


def today_words(state: TodayState, dose: Dose | None, zone: str) -> str:
    """Today's dose in a sentence, with the time that matters (the window's close, or when it was taken)."""
    if state == TodayState.NO_REGIMEN:
        return _("no study drug")
    if state == TodayState.NOT_DUE or dose is None:
        return _("no dose today")
    if state == TodayState.UPCOMING:
        return _("dose due today, window not open yet")
    if state == TodayState.WAITING:
        return _("window open, no reply yet (closes %(time)s)", time=local_text(dose.window_closes_at, zone))
    if state == TodayState.TAKEN:
        return _("taken %(time)s", time=local_text(dose.taken_at or dose.reported_at, zone))
    if state == TodayState.NOT_TAKEN:
        return _("not taken (the participant said so)")
    if state == TodayState.HELD:
        return _("dosing on hold")
    return _("missed: no reply before %(time)s", time=local_text(dose.window_closes_at, zone))


def duration_words(delta: timedelta) -> str:
    """'2 d 3 h' / '2天3小时': a rounded-down, human-sized span."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("%(d)d d %(h)d h", d=days, h=hours)
    if hours:
        return _("%(h)d h %(m)d min", h=hours, m=mins)
    return _("%(m)d min", m=mins)


# What a participant's message was read as (notifications.parsing.IntentKind), and what an outbound one was for.
INTENT_WORDS = {
    "dose_taken": _l("dose taken"),
    "dose_not_taken": _l("dose not taken"),
    "vas": _l("VAS score"),
    "vas_invalid": _l("VAS score (not accepted)"),
    "adverse_event": _l("adverse event"),
    "stop": _l("stop messages"),
    "start": _l("restart messages"),
    "help": _l("help"),
    "undo": _l("undo the last score"),
    "unknown": _l("not understood"),
    "staff_ack": _l("on-call acknowledgement"),
    "unknown_sender": _l("unknown sender"),
}
OUTBOUND_WORDS = {
    "dose_reminder": _l("dose reminder"),
    "dose_nudge": _l("dose follow-up"),
    "vas_prompt": _l("VAS question"),
    "dose_and_vas": _l("dose reminder and VAS question"),
    "study_closing": _l("end-of-study message"),
    "reply": _l("reply"),
    "staff_alert": _l("on-call page"),
    "digest": _l("on-call digest"),
    "activation": _l("app code"),
}
VAS_ERROR_WORDS = {
    "out_of_range": _l("outside the scale"),
    "too_many_decimals": _l("too many decimals"),
    "not_a_number": _l("not a number"),
}
DOSE_STATE_WORDS = {
    "scheduled": _l("planned"),
    "taken": _l("taken on time"),
    "taken_late": _l("taken late"),
    "skipped": _l("not taken"),
    "missed": _l("missed"),
    "held": _l("held"),
    "cancelled": _l("cancelled"),
}


def message_kind_words(direction: str, kind: str) -> str:
    """What a logged message was: an inbound one by how it was read, an outbound one by its purpose."""
    table = INTENT_WORDS if direction == "in" else OUTBOUND_WORDS
    return str(table.get(kind, kind.replace("_", " ")))


# The outcome an inbound message's handling stored (operations.sms_replies, in English for the audit trail), read
# back into words; each pattern names the one outcome it stands for.
_OUTCOMES = [
    (re.compile(r"VAS (?P<v>[\d.]+) recorded"), lambda m: _("VAS %(v)s recorded", v=m["v"])),
    (re.compile(r"VAS (?P<v>[\d.]+) withdrawn"), lambda m: _("VAS %(v)s withdrawn", v=m["v"])),
    (re.compile(r"VAS refused: out of range"), lambda m: _("VAS not accepted: outside the scale")),
    (
        re.compile(r"VAS refused: (?P<e>\w+)"),
        lambda m: _("VAS not accepted: %(why)s", why=VAS_ERROR_WORDS.get(m["e"], m["e"])),
    ),
    (re.compile(r"nothing to undo"), lambda m: _("nothing to undo")),
    (
        re.compile(r"adverse event recorded \(suspected serious\)"),
        lambda m: _("adverse event recorded: suspected serious"),
    ),
    (re.compile(r"adverse event recorded"), lambda m: _("adverse event recorded")),
    (re.compile(r"unreadable: kept for nurses"), lambda m: _("not understood: kept for nurses")),
    (re.compile(r"unreadable"), lambda m: _("not understood")),
    (re.compile(r"help sent"), lambda m: _("help sent")),
    (re.compile(r"already opted out"), lambda m: _("already opted out")),
    (re.compile(r"opted out"), lambda m: _("opted out of SMS")),
    (re.compile(r"opted in"), lambda m: _("opted back in")),
    (re.compile(r"no open dose"), lambda m: _("no dose open to report")),
    (re.compile(r"no dose expected"), lambda m: _("no dose expected")),
    (
        re.compile(r"dose (?P<n>\d+) already (?P<s>\w+)"),
        lambda m: _("dose %(n)s was already %(state)s", n=m["n"], state=DOSE_STATE_WORDS.get(m["s"], m["s"])),
    ),
    (
        re.compile(r"dose (?P<n>\d+) (?P<s>\w+)"),
        lambda m: _("dose %(n)s %(state)s", n=m["n"], state=DOSE_STATE_WORDS.get(m["s"], m["s"])),
    ),
    (re.compile(r"not recorded: the study has ended"), lambda m: _("not recorded: the study has ended for them")),
    (re.compile(r"no participant has this number"), lambda m: _("no participant has this number")),
]


def outcome_words(outcome: str) -> str:
    """What came of an inbound message, in words; an outcome no pattern knows is shown as stored."""
    for pattern, words in _OUTCOMES:
        match = pattern.match(outcome)
        if match:
            return words(match)
    return outcome


def warning_words(warning) -> tuple[str, str]:
    """A system warning (backend.runtime.job_runs.NurseWarning) as its headline and what it means for the ward."""
    span = duration_words(warning.silent_for) if warning.silent_for is not None else None
    if warning.kind == "outbox_stuck":
        headline = ngettext(
            "%(num)d message has been waiting to be sent for %(span)s",
            "%(num)d messages have been waiting to be sent for %(span)s",
            warning.count,
            span=span,
        )
        meaning = (
            _("Messages are going out late or not at all. Tell the system administrator.")
            if warning.masked
            else _("Reminders and alerts are going out late or not at all. Tell the system administrator.")
        )
        return headline, meaning
    headline = (
        _("The automatic checks have not run for %(span)s", span=span)
        if span
        else _("The automatic checks have not run yet")
    )
    meaning = (
        _("Scheduled messages are not being planned, so this page may be incomplete.")
        if warning.masked
        else _(
            "Missed doses are not being flagged and reminders are not being planned, so this page may be incomplete."
        )
    )
    return headline, meaning + " " + _("Tell the system administrator; until it is fixed, check participants by hand.")


# The adverse-event vocabularies (schedules.vocabulary) and the other stored codes a nurse reads on the pages.
# "unknown" is both an outcome and an action taken: the same word serves both.
CODE_WORDS = {
    # severities
    "mild": _l("mild"),
    "moderate": _l("moderate"),
    "severe": _l("severe"),
    # relatedness to the study drug
    "not_related": _l("not related"),
    "unlikely": _l("unlikely related"),
    "possible": _l("possibly related"),
    "probable": _l("probably related"),
    "definite": _l("definitely related"),
    # outcomes
    "recovered": _l("recovered"),
    "recovering": _l("recovering"),
    "not_recovered": _l("not recovered"),
    "recovered_with_sequelae": _l("recovered with sequelae"),
    "fatal": _l("fatal"),
    "unknown": _l("unknown"),
    # seriousness criteria
    "death": _l("death"),
    "life_threatening": _l("life-threatening"),
    "hospitalisation": _l("hospitalisation"),
    "disability": _l("disability"),
    "congenital_anomaly": _l("congenital anomaly"),
    "other_important": _l("other important medical event"),
    # actions taken with the study drug
    "dose_not_changed": _l("dose not changed"),
    "drug_interrupted": _l("drug interrupted"),
    "drug_withdrawn": _l("drug withdrawn"),
    "dose_reduced": _l("dose reduced"),
    "not_applicable": _l("not applicable"),
    # who or what reported (doses, VAS, adverse events)
    "sms": _l("SMS"),
    "staff": _l("staff"),
    "app": _l("the app"),
    "import": _l("import"),
    # VAS answer states
    "valid": _l("valid"),
    "withdrawn": _l("withdrawn"),
    "corrected": _l("corrected"),
    "invalid": _l("not accepted"),
    # signature meanings
    "reviewed": _l("reviewed"),
    "approved": _l("approved"),
    "withheld": _l("withheld"),
}


def code_words(code: str | None) -> str:
    """A stored vocabulary code (severity, outcome, relatedness, criterion, action, source…) in words."""
    if not code:
        return ""
    return str(CODE_WORDS.get(code, code.replace("_", " ")))


def codes_words(codes: str | None) -> str:
    """A comma-separated list of codes (seriousness criteria) in words."""
    separator = "、" if page_language() == "zh-CN" else ", "
    return separator.join(code_words(c) for c in (codes or "").split(",") if c)


def ae_term_words(term: str | None) -> str:
    """An app adverse-event term (schedules.vocabulary.AE_TERMS) in the page's language."""
    if not term:
        return ""
    if term == "withheld":
        return code_words(term)
    labels = AE_TERM_LABELS.get(term)
    return labels.get(page_language(), labels["en"]) if labels else term.replace("_", " ")


def yes_no_words(value: bool | None) -> str:
    """yes / no / — in the page's language."""
    return "—" if value is None else (_("yes") if value else _("no"))


# The system organ classes of the CTCAE v5 list (schedules/data/ctcae_v5.csv), the groups of the term list.
SOC_WORDS = {
    "Blood and lymphatic system disorders": _l("Blood and lymphatic system disorders"),
    "Cardiac disorders": _l("Cardiac disorders"),
    "Congenital, familial and genetic disorders": _l("Congenital, familial and genetic disorders"),
    "Ear and labyrinth disorders": _l("Ear and labyrinth disorders"),
    "Endocrine disorders": _l("Endocrine disorders"),
    "Eye disorders": _l("Eye disorders"),
    "Gastrointestinal disorders": _l("Gastrointestinal disorders"),
    "General disorders and administration site conditions": _l("General disorders and administration site conditions"),
    "Hepatobiliary disorders": _l("Hepatobiliary disorders"),
    "Immune system disorders": _l("Immune system disorders"),
    "Infections and infestations": _l("Infections and infestations"),
    "Injury, poisoning and procedural complications": _l("Injury, poisoning and procedural complications"),
    "Investigations": _l("Investigations"),
    "Metabolism and nutrition disorders": _l("Metabolism and nutrition disorders"),
    "Musculoskeletal and connective tissue disorders": _l("Musculoskeletal and connective tissue disorders"),
    "Neoplasms benign, malignant and unspecified (incl cysts and polyps)": _l(
        "Neoplasms benign, malignant and unspecified (incl cysts and polyps)"
    ),
    "Nervous system disorders": _l("Nervous system disorders"),
    "Pregnancy, puerperium and perinatal conditions": _l("Pregnancy, puerperium and perinatal conditions"),
    "Psychiatric disorders": _l("Psychiatric disorders"),
    "Renal and urinary disorders": _l("Renal and urinary disorders"),
    "Reproductive system and breast disorders": _l("Reproductive system and breast disorders"),
    "Respiratory, thoracic and mediastinal disorders": _l("Respiratory, thoracic and mediastinal disorders"),
    "Skin and subcutaneous tissue disorders": _l("Skin and subcutaneous tissue disorders"),
    "Social circumstances": _l("Social circumstances"),
    "Surgical and medical procedures": _l("Surgical and medical procedures"),
    "Vascular disorders": _l("Vascular disorders"),
}


def soc_words(soc: str) -> str:
    """A MedDRA system organ class in the page's language (the English name if it is not in the list)."""
    return str(SOC_WORDS.get(soc, soc))


_ALERT_STATE_WORDS = {"open": _l("open"), "acknowledged": _l("acknowledged"), "resolved": _l("resolved")}
# Domain refusals (schedules.errors.DomainError.message, English for the API and the audit trail) that a nurse
# can meet on the pages, read into the page's language; a message not listed is shown as it is.
_DOMAIN_ERRORS = [
    (
        re.compile(r"alert is (?P<s>\w+), not open$"),
        lambda m: _("The alert is %(state)s, not open.", state=_ALERT_STATE_WORDS.get(m["s"], m["s"])),
    ),
    (re.compile(r"alert is already resolved$"), lambda m: _("This alert is already resolved.")),
    (re.compile(r"a note saying what was done is required$"), lambda m: _("Say what was done.")),
    (re.compile(r"taken_at is in the future$"), lambda m: _("The time taken is in the future.")),
    (
        re.compile(r"nothing to change: the values are the current ones$"),
        lambda m: _("Nothing to change: these are the current values."),
    ),
    (re.compile(r"a reason is required for this change$"), lambda m: _("Give a reason for this change.")),
    (re.compile(r"participant is withdrawn$"), lambda m: _("The participant is withdrawn.")),
    (re.compile(r"dosing is already on hold$"), lambda m: _("Dosing is already on hold.")),
    (
        re.compile(r"the site cannot have become aware in the future$"),
        lambda m: _("The site cannot have become aware in the future."),
    ),
    (
        re.compile(r"the site cannot have become aware before the event began \(onset (?P<d>[\d-]+)\)$"),
        lambda m: _("The site cannot have become aware before the event began (onset %(date)s).", date=m["d"]),
    ),
    (
        re.compile(r"an ongoing event has no stop date: clear one of them$"),
        lambda m: _("An ongoing event has no stop date: clear one of them."),
    ),
    (
        re.compile(r"the (?P<what>onset|stop) date (?P<d>[\d-]+) is in the future: it is (?P<t>[\d-]+) where"),
        lambda m: _(
            "The %(what)s date %(date)s is in the future: it is %(today)s where the participant lives.",
            what=_("onset") if m["what"] == "onset" else _("stop"),
            date=m["d"],
            today=m["t"],
        ),
    ),
    (
        re.compile(r"the stop date (?P<s>[\d-]+) is before the onset date (?P<o>[\d-]+)$"),
        lambda m: _("The stop date %(stop)s is before the onset date %(onset)s.", stop=m["s"], onset=m["o"]),
    ),
    # The investigator's grading and signing (schedules.ae_review, backend.operations.ae_review).
    (
        re.compile(r"wrong password: nothing was signed"),
        lambda m: _("wrong password: nothing was signed (wrong passwords count towards locking your sign-in)"),
    ),
    (
        re.compile(r"a serious event needs at least one criterion$"),
        lambda m: _("A serious event needs at least one seriousness criterion."),
    ),
    (
        re.compile(r"review the adverse event \(grade, seriousness, relatedness\) before signing off$"),
        lambda m: _("Grade the adverse event (grade, seriousness, relatedness) before signing it."),
    ),
    (
        re.compile(r"you already signed version (?P<n>\d+) as (?P<m>\w+)$"),
        lambda m: _("You already signed version %(n)s as %(meaning)s.", n=m["n"], meaning=code_words(m["m"])),
    ),
    (
        re.compile(r"version (?P<n>\d+) is signed with this very grading: nothing to change$"),
        lambda m: _("Version %(n)s is signed with this very grading: nothing to change.", n=m["n"]),
    ),
    (re.compile(r"stop date is in the future$"), lambda m: _("The stop date is in the future.")),
    (
        re.compile(r"say where the follow-up comes from \(a reason is required\)$"),
        lambda m: _("Say where the follow-up comes from (a reason is required)."),
    ),
    (
        re.compile(r"'(?P<z>[^']*)' is not an IANA time zone"),
        lambda m: _("%(zone)s is not an IANA time zone (for example Asia/Shanghai).", zone=m["z"]),
    ),
]


def domain_error_words(message: str) -> str:
    """A domain refusal as a nurse reads it; one not listed is shown as it is."""
    for pattern, words in _DOMAIN_ERRORS:
        match = pattern.match(message)
        if match:
            return words(match)
    return message


# What a signature means (schedules.vocabulary.SIGNATURE_MEANING_LABELS) as the radio buttons say it.
SIGNATURE_MEANING_WORDS = {
    "reviewed": _l("Reviewed: I have reviewed this record"),
    "approved": _l("Approved: I approve this assessment"),
}


ROLE_WORDS = {
    "admin": _l("administrator"),
    "investigator": _l("investigator"),
    "nurse": _l("nurse"),
    "assessor": _l("outcome assessor"),
}


def role_words(role: str) -> str:
    """A staff role in words."""
    return str(ROLE_WORDS.get(role, role))


# The fields of an adverse-event record (its versions list every one), as the record's own labels say them.
AE_FIELD_WORDS = {
    "id": _l("number"),
    "participant_id": _l("participant number"),
    "reported_at": _l("reported"),
    "source": _l("reported by"),
    "raw_text": _l("their words"),
    "term": _l("term"),
    "other_text": _l("other: their description"),
    "onset_date": _l("onset date"),
    "severity": _l("severity"),
    "ongoing": _l("ongoing"),
    "went_to_hospital": _l("went to hospital"),
    "suspected_serious": _l("suspected serious"),
    "matched_keywords": _l("serious words found"),
    "ctcae_grade": _l("CTCAE grade"),
    "serious": _l("serious"),
    "serious_criteria": _l("seriousness criteria"),
    "relatedness": _l("relatedness"),
    "outcome": _l("outcome"),
    "stop_date": _l("stop date"),
    "narrative": _l("narrative"),
    "ctcae_term": _l("CTCAE v5 term"),
    "action_taken": _l("action taken with the study drug"),
    "aware_at": _l("site became aware"),
    "version": _l("version"),
}
_CODED_FIELDS = ("severity", "relatedness", "outcome", "action_taken", "source")
_DATE_FIELDS = ("onset_date", "stop_date")
_TIME_FIELDS = ("reported_at", "aware_at")


def field_words(name: str) -> str:
    """An adverse-event field's name in words."""
    return str(AE_FIELD_WORDS.get(name, name.replace("_", " ")))


def value_words(name: str, value: object, zone: str | None = None) -> str:
    """A value of an adverse-event version (as signed: ISO dates, UTC times, codes) as a nurse reads it."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return yes_no_words(value)
    try:
        if name in _DATE_FIELDS and isinstance(value, str):
            return local_day_text(date.fromisoformat(value))
        if name in _TIME_FIELDS and isinstance(value, str) and zone:
            return local_text(datetime.fromisoformat(value), zone)
    except ValueError:
        return str(value)
    if name in _CODED_FIELDS:
        return code_words(str(value))
    if name == "serious_criteria":
        return codes_words(str(value))
    if name == "term":
        return ae_term_words(str(value))
    return str(value)


def injection_site_words(site: str | None) -> str:
    """An injection site (schedules.models.InjectionSite) in the page's language."""
    labels = DEFAULT_INJECTION_SITE_LABELS.get(site or "", {})
    return labels.get(page_language()) or labels.get("en") or (site or "").replace("_", " ")


def _who(actor: str) -> str:
    """An audit label of who changed a record, without its code: 'staff:staff:7' is staff account 7."""
    source, _sep, name = actor.partition(":")
    if source == "staff":
        return _("staff account %(n)s", n=name.rpartition(":")[2])
    return _("the system") if source in ("system", "job") else actor


# The rule text the deviation log stores (schedules.deviations, in English, naming the protocol's setting), read
# back into words; each pattern names the one rule it stands for.
_DEVIATION_RULES = [
    (
        re.compile(r"missed_in_a_row_major = (?P<n>\d+): (?P<r>\d+) doses not taken in a row"),
        lambda m: _("%(r)s doses not taken in a row (the protocol: %(n)s in a row is major)", r=m["r"], n=m["n"]),
    ),
    (
        re.compile(r"missed_in_a_row_major = (?P<n>\d+): taken late after all"),
        lambda m: _("taken late after all, in no row of misses (the protocol: %(n)s in a row is major)", n=m["n"]),
    ),
    (
        re.compile(r"missed_in_a_row_major = (?P<n>\d+): a single dose not taken"),
        lambda m: _("a single dose not taken (the protocol: %(n)s in a row is major)", n=m["n"]),
    ),
    (
        re.compile(r"missed_in_a_row_major = (?P<n>\d+): (?P<r>\d+) doses not taken"),
        lambda m: _("%(r)s doses not taken (the protocol: %(n)s in a row is major)", r=m["r"], n=m["n"]),
    ),
    (
        re.compile(
            r"late_major_after_hours = (?P<l>\d+): (?P<how>taken|reported) (?P<h>\d+) h after the window closed"
        ),
        lambda m: (
            _("taken %(h)s h after the window closed (the protocol: more than %(l)s h is major)", h=m["h"], l=m["l"])
            if m["how"] == "taken"
            else _(
                "reported %(h)s h after the window closed (the protocol: more than %(l)s h is major)",
                h=m["h"],
                l=m["l"],
            )
        ),
    ),
    (
        re.compile(
            r"out_of_window_change_classification = \w+: (?P<from>[\w ]+) changed to (?P<to>[\w ]+?) "
            r"(?:on the day|(?P<days>\d+) day\(s\)) after the window closed, by (?P<who>\S+)"
        ),
        lambda m: _(
            "the record was changed from %(old)s to %(new)s %(when)s after the window closed, by %(who)s",
            old=DOSE_STATE_WORDS.get(m["from"].replace(" ", "_"), m["from"]),
            new=DOSE_STATE_WORDS.get(m["to"].replace(" ", "_"), m["to"]),
            when=ngettext("%(num)d day", "%(num)d days", int(m["days"])) if m["days"] else _("the same day"),
            who=_who(m["who"]),
        ),
    ),
    (
        re.compile(r"hold_classification = \w+: (?P<n>\d+) dose\(s\) held by (?P<who>\S+)"),
        lambda m: ngettext(
            "%(num)d dose held by %(who)s", "%(num)d doses held by %(who)s", int(m["n"]), who=_who(m["who"])
        ),
    ),
    (
        re.compile(r"later reported (?P<state>[\w ]+)"),
        lambda m: _("later reported %(state)s", state=DOSE_STATE_WORDS.get(m["state"].replace(" ", "_"), m["state"])),
    ),
]


def deviation_words(text: str) -> str:
    """A deviation's stored rule or detail in words; a text no pattern knows (a nurse's own note) is shown as is."""
    for pattern, words in _DEVIATION_RULES:
        match = pattern.match(text or "")
        if match:
            return words(match)
    return text
