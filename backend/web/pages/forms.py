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
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.fields import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

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
        description="Site time; leave empty for now.",
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
