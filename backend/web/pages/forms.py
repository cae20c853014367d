"""The nurse pages' forms; every one carries a CSRF token (Flask-WTF) and every change asks for a reason."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    EmailField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from backend.web.words import CODE_WORDS, SIGNATURE_MEANING_WORDS, SOC_WORDS
from schedules.ctcae import ctcae_by_soc
from schedules.vocabulary import (
    ACTIONS_TAKEN,
    NARRATIVE_MAX,
    OUTCOMES,
    RELATEDNESS,
    SERIOUS_CRITERIA,
    SEVERITIES,
    SIGNATURE_MEANING_LABELS,
)
from schedules.wallclock import parse_hhmm

# The language switch names each language in itself, so a reader finds theirs whatever the page is in.
LANGUAGE_NAMES = {"zh-CN": "中文", "en": "English"}

REASON_HELP = _l("Say why, for the audit trail.")


def _reason(label=_l("Reason")) -> TextAreaField:
    return TextAreaField(
        label, validators=[DataRequired(_l("Give a reason for this change.")), Length(max=500)], description=REASON_HELP
    )


class HhmmField(TimeField):
    """A time-of-day input read by the one HH:MM parser the API and the domain use."""

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        try:
            self.data = parse_hhmm(" ".join(valuelist))
        except ValueError as exc:
            self.data = None
            raise ValueError(_l("Give the time as HH:MM, for example 08:30.")) from exc


class LoginForm(FlaskForm):
    """Staff email and password."""

    email = EmailField(_l("Email"), validators=[DataRequired(_l("Enter your email.")), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=200)])


class RecordDoseForm(FlaskForm):
    """A dose the participant reported by phone."""

    dose = SelectField(_l("Dose"), coerce=int, validators=[InputRequired(_l("Choose the dose."))])
    taken = RadioField(
        _l("What did the participant say?"),
        choices=[SelectChoice("yes", _l("Taken")), SelectChoice("no", _l("Not taken"))],
        validators=[InputRequired(_l("Say whether it was taken."))],
    )
    taken_at = DateTimeLocalField(
        _l("When taken (optional)"),
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
        description=_l("Site time. On time or late is judged by this time; empty means taken now."),
    )
    reason = _reason(_l("Reason / call note"))


class HoldForm(FlaskForm):
    """Hold dosing from a date."""

    effective = DateField(
        _l("Hold from (participant's local date)"), validators=[InputRequired(_l("Give the first held day."))]
    )
    reason = _reason()


class ResumeForm(FlaskForm):
    """Resume dosing: the every-other-day cadence restarts on the resume date."""

    resume_date = DateField(
        _l("Resume on (participant's local date)"), validators=[InputRequired(_l("Give the resume date."))]
    )
    reason = _reason()


class WithdrawForm(FlaskForm):
    """Withdraw from the trial: future doses and prompts are cancelled."""

    confirm = BooleanField(
        _l("I confirm this participant is withdrawn from the trial"),
        validators=[DataRequired(_l("Tick the box to confirm the withdrawal."))],
    )
    reason = _reason()


class DetailsForm(FlaskForm):
    """Phone, time zone and reminder time."""

    phone = StringField(
        _l("New phone number (E.164, e.g. +8613812345678)"),
        validators=[Optional(), Length(max=32)],
        description=_l("Leave empty to keep the current number."),
    )
    time_zone = StringField(
        _l("Time zone (IANA, e.g. Asia/Shanghai)"), validators=[DataRequired(_l("Give a time zone.")), Length(max=64)]
    )
    reminder_time = HhmmField(
        _l("Reminder time (participant's local time)"),
        format="%H:%M",
        validators=[InputRequired(_l("Give the reminder time."))],
    )
    reason = _reason()


def _choices(codes: tuple[str, ...]) -> list[SelectChoice]:
    return [SelectChoice(code, CODE_WORDS.get(code, code.replace("_", " "))) for code in codes]


class AeReviewForm(FlaskForm):
    """An investigator's grading of an adverse event; after a signature it becomes a new version."""

    ctcae_grade = SelectField(
        _l("CTCAE v5 grade"),
        coerce=int,
        choices=[SelectChoice(g, f"{g}") for g in range(1, 6)],
        validators=[InputRequired(_l("Choose the grade."))],
        description=_l("1 mild … 5 death."),
    )
    serious = RadioField(
        _l("Serious?"),
        choices=[SelectChoice("yes", _l("Serious")), SelectChoice("no", _l("Not serious"))],
        validators=[InputRequired(_l("Say whether it is serious."))],
    )
    serious_criteria = SelectMultipleField(
        _l("Seriousness criteria (at least one when serious)"),
        choices=_choices(SERIOUS_CRITERIA),
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    relatedness = SelectField(_l("Relatedness"), choices=_choices(RELATEDNESS), validators=[InputRequired()])
    outcome = SelectField(_l("Outcome"), choices=_choices(OUTCOMES), validators=[InputRequired()])
    reason = _reason()


NOT_KNOWN = SelectChoice("", _l("(not known)"))
YES_NO = [NOT_KNOWN, SelectChoice("yes", _l("Yes")), SelectChoice("no", _l("No"))]


def _ctcae_choices() -> list[SelectChoice]:
    """The CTCAE v5 list for a <select> grouped by system organ class (an <optgroup> per SOC)."""
    return [
        SelectChoice("", _l("(not coded yet)")),
        *(
            SelectChoice(t.meddra_code, f"{t.term} ({t.meddra_code})", optgroup=SOC_WORDS.get(soc, soc))
            for soc, terms in ctcae_by_soc()
            for t in terms
        ),
    ]


class AeRecordForm(FlaskForm):
    """A nurse completing a report into an SAE-ready record; after a signature it is a new version."""

    ctcae_term = SelectField(
        _l("CTCAE v5 term"),
        choices=_ctcae_choices(),
        validators=[Optional()],
        description=_l("Grouped by system organ class; the MedDRA code is in brackets."),
    )
    onset_date = DateField(_l("Onset date"), validators=[Optional()])
    stop_date = DateField(_l("Stop date"), validators=[Optional()], description=_l("Leave empty while it is ongoing."))
    severity = SelectField(_l("Severity"), choices=[NOT_KNOWN, *_choices(SEVERITIES)], validators=[Optional()])
    ongoing = SelectField(_l("Ongoing?"), choices=YES_NO, validators=[Optional()])
    went_to_hospital = SelectField(_l("Went to hospital?"), choices=YES_NO, validators=[Optional()])
    action_taken = SelectField(
        _l("Action taken with the study drug"), choices=[NOT_KNOWN, *_choices(ACTIONS_TAKEN)], validators=[Optional()]
    )
    aware_at = DateTimeLocalField(
        _l("Site became aware"),
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
        description=_l("Site time. The 24-hour reporting clock of a serious event runs from here."),
    )
    narrative = TextAreaField(_l("Narrative"), validators=[Optional(), Length(max=NARRATIVE_MAX)])
    reason = _reason(_l("Where does this come from?"))


class AeFollowUpForm(FlaskForm):
    """Follow-up information; after a signature it is a new version, to be signed again."""

    outcome = SelectField(_l("Outcome"), choices=[SelectChoice("", _l("(not set)")), *_choices(OUTCOMES)])
    stop_date = DateField(_l("Stop date (when the event ended)"), validators=[Optional()])
    narrative = TextAreaField(_l("Narrative"), validators=[Optional(), Length(max=NARRATIVE_MAX)])
    reason = _reason(_l("Where does this come from?"))


class AeSignForm(FlaskForm):
    """An electronic signature: email and password again, and what the signature means."""

    email = EmailField(_l("Your email"), validators=[DataRequired(_l("Enter your email.")), Length(max=254)])
    password = PasswordField(
        _l("Your password"), validators=[DataRequired(_l("Enter your password to sign.")), Length(max=200)]
    )
    meaning = RadioField(
        _l("This signature means"),
        choices=[
            SelectChoice(code, SIGNATURE_MEANING_WORDS.get(code, label))
            for code, label in SIGNATURE_MEANING_LABELS.items()
        ],
        validators=[InputRequired(_l("Choose what your signature means."))],
    )


class AcknowledgeForm(FlaskForm):
    """Acknowledge an alert."""

    next = HiddenField()


class ResolveForm(FlaskForm):
    """Resolve an alert with a note saying what was done."""

    note = TextAreaField(_l("Resolution note"), validators=[DataRequired(_l("Say what was done.")), Length(max=1000)])
    next = HiddenField()


class SimulatorReplyForm(FlaskForm):
    """Reply to the app as a participant would by SMS."""

    participant = SelectField(_l("Reply as"), coerce=int, validators=[InputRequired(_l("Choose a participant."))])
    body = StringField(
        _l("Message text"),
        validators=[DataRequired(_l("Type what the participant sends.")), Length(max=1600)],
        description=_l("For example 1, 2, V 4.5, AE headache, HELP, STOP."),
    )


class RunJobsForm(FlaskForm):
    """Run every scheduled job once, now."""

    participant = HiddenField()


class LanguageForm(FlaskForm):
    """The page language switch in the header (zh-CN or en)."""

    language = SelectField(_l("Language"), choices=[SelectChoice(code, name) for code, name in LANGUAGE_NAMES.items()])
    next = HiddenField()


_DEVIATION_KINDS = [
    SelectChoice("missed_dose", _l("Missed dose")),
    SelectChoice("late_dose", _l("Late dose")),
    SelectChoice("hold", _l("Hold")),
    SelectChoice("out_of_window_change", _l("Record changed after the window")),
]
DEVIATION_REVIEWS = [
    SelectChoice("open", _l("Open (not reviewed)")),
    SelectChoice("reviewed", _l("Reviewed")),
    SelectChoice("not_a_deviation", _l("Not a deviation")),
]
_ANY = SelectChoice("", _l("Any"))


class DeviationFilterForm(FlaskForm):
    """Filters of the deviation log: a GET form, so a filtered list can be bookmarked (no CSRF token)."""

    class Meta:
        csrf = False

    site = StringField(_l("Site code (admins)"), validators=[Optional(), Length(max=40)])
    participant = StringField(_l("Participant (study code)"), validators=[Optional(), Length(max=40)])
    kind = SelectField(_l("Kind"), choices=[_ANY, *_DEVIATION_KINDS], validators=[Optional()])
    classification = SelectField(
        _l("Classification"),
        choices=[_ANY, SelectChoice("minor", _l("Minor")), SelectChoice("major", _l("Major"))],
        validators=[Optional()],
    )
    review_state = SelectField(_l("Review"), choices=[_ANY, *DEVIATION_REVIEWS], validators=[Optional()])
    date_from = DateField(_l("From (local date)"), validators=[Optional()])
    date_to = DateField(_l("To (local date)"), validators=[Optional()])


class DeviationReviewForm(FlaskForm):
    """A nurse's review of one deviation: the state and a comment."""

    review_state = SelectField(
        _l("Review"), choices=DEVIATION_REVIEWS, validators=[InputRequired(_l("Choose a state."))]
    )
    comment = TextAreaField(
        _l("Comment"), validators=[DataRequired(_l("Say what was found.")), Length(max=2000)], description=REASON_HELP
    )
    next = HiddenField()
