"""The nurse pages' forms; every one carries a CSRF token (Flask-WTF) and every change asks for a reason."""

from __future__ import annotations

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

REASON_HELP = "Say why, for the audit trail."


def _reason(label: str = "Reason") -> TextAreaField:
    return TextAreaField(
        label, validators=[DataRequired("Give a reason for this change."), Length(max=500)], description=REASON_HELP
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
            raise ValueError(str(exc)) from None


class LoginForm(FlaskForm):
    """Staff email and password."""

    email = EmailField("Email", validators=[DataRequired("Enter your email."), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=200)])


class RecordDoseForm(FlaskForm):
    """A dose the participant reported by phone."""

    dose = SelectField("Dose", coerce=int, validators=[InputRequired("Choose the dose.")])
    taken = RadioField(
        "What did the participant say?",
        choices=[SelectChoice("yes", "Taken"), SelectChoice("no", "Not taken")],
        validators=[InputRequired("Say whether it was taken.")],
    )
    taken_at = DateTimeLocalField(
        "When taken (optional)",
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
        description="Site time. On time or late is judged by this time; empty means taken now.",
    )
    reason = _reason("Reason / call note")


class HoldForm(FlaskForm):
    """Hold dosing from a date."""

    effective = DateField(
        "Hold from (participant's local date)", validators=[InputRequired("Give the first held day.")]
    )
    reason = _reason()


class ResumeForm(FlaskForm):
    """Resume dosing: the every-other-day cadence restarts on the resume date."""

    resume_date = DateField("Resume on (participant's local date)", validators=[InputRequired("Give the resume date.")])
    reason = _reason()


class WithdrawForm(FlaskForm):
    """Withdraw from the trial: future doses and prompts are cancelled."""

    confirm = BooleanField(
        "I confirm this participant is withdrawn from the trial",
        validators=[DataRequired("Tick the box to confirm the withdrawal.")],
    )
    reason = _reason()


class DetailsForm(FlaskForm):
    """Phone, time zone and reminder time."""

    phone = StringField(
        "New phone number (E.164, e.g. +8613812345678)",
        validators=[Optional(), Length(max=32)],
        description="Leave empty to keep the current number.",
    )
    time_zone = StringField(
        "Time zone (IANA, e.g. Asia/Shanghai)", validators=[DataRequired("Give a time zone."), Length(max=64)]
    )
    reminder_time = HhmmField(
        "Reminder time (participant's local time)",
        format="%H:%M",
        validators=[InputRequired("Give the reminder time.")],
    )
    reason = _reason()


def _choices(codes: tuple[str, ...]) -> list[SelectChoice]:
    return [SelectChoice(code, code.replace("_", " ")) for code in codes]


class AeReviewForm(FlaskForm):
    """An investigator's grading of an adverse event; after a signature it becomes a new version."""

    ctcae_grade = SelectField(
        "CTCAE v5 grade",
        coerce=int,
        choices=[SelectChoice(g, f"{g}") for g in range(1, 6)],
        validators=[InputRequired("Choose the grade.")],
        description="1 mild … 5 death.",
    )
    serious = RadioField(
        "Serious?",
        choices=[SelectChoice("yes", "Serious"), SelectChoice("no", "Not serious")],
        validators=[InputRequired("Say whether it is serious.")],
    )
    serious_criteria = SelectMultipleField(
        "Seriousness criteria (at least one when serious)",
        choices=_choices(SERIOUS_CRITERIA),
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    relatedness = SelectField("Relatedness", choices=_choices(RELATEDNESS), validators=[InputRequired()])
    outcome = SelectField("Outcome", choices=_choices(OUTCOMES), validators=[InputRequired()])
    reason = _reason()


NOT_KNOWN = SelectChoice("", "(not known)")
YES_NO = [NOT_KNOWN, SelectChoice("yes", "Yes"), SelectChoice("no", "No")]


def _ctcae_choices() -> list[SelectChoice]:
    """The CTCAE v5 list for a <select> grouped by system organ class (an <optgroup> per SOC)."""
    return [
        SelectChoice("", "(not coded yet)"),
        *(
            SelectChoice(t.meddra_code, f"{t.term} ({t.meddra_code})", optgroup=soc)
            for soc, terms in ctcae_by_soc()
            for t in terms
        ),
    ]


class AeRecordForm(FlaskForm):
    """A nurse completing a report into an SAE-ready record; after a signature it is a new version."""

    ctcae_term = SelectField(
        "CTCAE v5 term",
        choices=_ctcae_choices(),
        validators=[Optional()],
        description="Grouped by system organ class; the MedDRA code is in brackets.",
    )
    onset_date = DateField("Onset date", validators=[Optional()])
    stop_date = DateField("Stop date", validators=[Optional()], description="Leave empty while it is ongoing.")
    severity = SelectField("Severity", choices=[NOT_KNOWN, *_choices(SEVERITIES)], validators=[Optional()])
    ongoing = SelectField("Ongoing?", choices=YES_NO, validators=[Optional()])
    went_to_hospital = SelectField("Went to hospital?", choices=YES_NO, validators=[Optional()])
    action_taken = SelectField(
        "Action taken with the study drug", choices=[NOT_KNOWN, *_choices(ACTIONS_TAKEN)], validators=[Optional()]
    )
    aware_at = DateTimeLocalField(
        "Site became aware",
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
        description="Site time. The 24-hour reporting clock of a serious event runs from here.",
    )
    narrative = TextAreaField("Narrative", validators=[Optional(), Length(max=NARRATIVE_MAX)])
    reason = _reason("Where does this come from?")


class AeFollowUpForm(FlaskForm):
    """Follow-up information; after a signature it is a new version, to be signed again."""

    outcome = SelectField("Outcome", choices=[SelectChoice("", "(not set)"), *_choices(OUTCOMES)])
    stop_date = DateField("Stop date (when the event ended)", validators=[Optional()])
    narrative = TextAreaField("Narrative", validators=[Optional(), Length(max=NARRATIVE_MAX)])
    reason = _reason("Where does this come from?")


class AeSignForm(FlaskForm):
    """An electronic signature: email and password again, and what the signature means."""

    email = EmailField("Your email", validators=[DataRequired("Enter your email."), Length(max=254)])
    password = PasswordField(
        "Your password", validators=[DataRequired("Enter your password to sign."), Length(max=200)]
    )
    meaning = RadioField(
        "This signature means",
        choices=[SelectChoice(code, label) for code, label in SIGNATURE_MEANING_LABELS.items()],
        validators=[InputRequired("Choose what your signature means.")],
    )


class AcknowledgeForm(FlaskForm):
    """Acknowledge an alert."""

    next = HiddenField()


class ResolveForm(FlaskForm):
    """Resolve an alert with a note saying what was done."""

    note = TextAreaField("Resolution note", validators=[DataRequired("Say what was done."), Length(max=1000)])
    next = HiddenField()


class SimulatorReplyForm(FlaskForm):
    """Reply to the app as a participant would by SMS."""

    participant = SelectField("Reply as", coerce=int, validators=[InputRequired("Choose a participant.")])
    body = StringField(
        "Message text",
        validators=[DataRequired("Type what the participant sends."), Length(max=1600)],
        description="For example 1, 2, V 4.5, AE headache, HELP, STOP.",
    )


class RunJobsForm(FlaskForm):
    """Run every scheduled job once, now."""

    participant = HiddenField()


_DEVIATION_KINDS = [
    SelectChoice("missed_dose", "Missed dose"),
    SelectChoice("late_dose", "Late dose"),
    SelectChoice("hold", "Hold"),
    SelectChoice("out_of_window_change", "Record changed after the window"),
]
DEVIATION_REVIEWS = [
    SelectChoice("open", "Open (not reviewed)"),
    SelectChoice("reviewed", "Reviewed"),
    SelectChoice("not_a_deviation", "Not a deviation"),
]
_ANY = SelectChoice("", "Any")


class DeviationFilterForm(FlaskForm):
    """Filters of the deviation log: a GET form, so a filtered list can be bookmarked (no CSRF token)."""

    class Meta:
        csrf = False

    site = StringField("Site code (admins)", validators=[Optional(), Length(max=40)])
    participant = StringField("Participant (study code)", validators=[Optional(), Length(max=40)])
    kind = SelectField("Kind", choices=[_ANY, *_DEVIATION_KINDS], validators=[Optional()])
    classification = SelectField(
        "Classification",
        choices=[_ANY, SelectChoice("minor", "Minor"), SelectChoice("major", "Major")],
        validators=[Optional()],
    )
    review_state = SelectField("Review", choices=[_ANY, *DEVIATION_REVIEWS], validators=[Optional()])
    date_from = DateField("From (local date)", validators=[Optional()])
    date_to = DateField("To (local date)", validators=[Optional()])


class DeviationReviewForm(FlaskForm):
    """A nurse's review of one deviation: the state and a comment."""

    review_state = SelectField("Review", choices=DEVIATION_REVIEWS, validators=[InputRequired("Choose a state.")])
    comment = TextAreaField(
        "Comment", validators=[DataRequired("Say what was found."), Length(max=2000)], description=REASON_HELP
    )
    next = HiddenField()
