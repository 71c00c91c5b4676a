"""Forms of the organizer pages."""

from __future__ import annotations

from datetime import UTC, datetime

from email_validator import EmailNotValidError, validate_email
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from ..countries import countries, country_names
from ..models import ROLES
from ..public.forms import no_control_characters


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class LoginForm(FlaskForm):
    email = EmailField(
        "E-mail",
        filters=[_strip],
        validators=[DataRequired(message="Please enter your e-mail address."), Length(max=254)],
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired(message="Please enter your password."), Length(max=1024)],
    )


class CheckInForm(FlaskForm):
    code = StringField(
        "Attendee code or QR code",
        description="Scan the badge or confirmation QR code, or type the code, e.g. NEC-7K3QXA.",
        validators=[Length(max=500, message="That is too long to be a code.")],
    )


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token is sent."""


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _count_field(label: str, description: str = "", required: bool = True) -> IntegerField:
    presence = InputRequired(message="Please enter a number.") if required else Optional()
    return IntegerField(
        label,
        description=description,
        validators=[
            presence,
            NumberRange(min=0, max=1_000_000, message="Please enter a whole number of 0 or more."),
        ],
    )


class SettingsForm(FlaskForm):
    sessions = _count_field("Educational sessions", "Shown on the landing page counters.")
    faculty = _count_field("Faculty", "Shown on the landing page counters.")
    capacity = _count_field("Capacity (all attendees)", "Leave empty for no limit.", required=False)
    registration_opens_at = DateTimeLocalField(
        "Registration opens (UTC)",
        format="%Y-%m-%dT%H:%M",
        filters=[_utc],
        validators=[Optional()],
        description="Leave empty to open at once.",
    )
    registration_closes_at = DateTimeLocalField(
        "Registration closes (UTC)",
        format="%Y-%m-%dT%H:%M",
        filters=[_utc],
        validators=[Optional()],
        description="Leave empty to keep registration open.",
    )
    tagline = StringField(
        "Tagline", filters=[_strip], validators=[Length(max=300, message="At most 300 characters.")]
    )
    description = TextAreaField(
        "Landing page text",
        description="Markdown: **bold**, *italic*, lists, links.",
        validators=[Length(max=50_000, message="At most 50,000 characters.")],
    )

    def validate_registration_closes_at(self, field) -> None:
        opens = self.registration_opens_at.data
        if field.data and opens and field.data <= opens:
            raise ValidationError("Registration must close after it opens.")


def role_cap_name(role: str) -> str:
    return f"cap_{role}"


# One optional cap field per role, from the one list of roles.
for _role, _label in ROLES.items():
    setattr(
        SettingsForm,
        role_cap_name(_role),
        _count_field(f"Capacity for {_label}", "Leave empty for no limit.", required=False),
    )


class AttendeeForm(FlaskForm):
    """An organizer's correction of a registration (e-mail included)."""

    first_name = StringField(
        "First name",
        filters=[_strip],
        validators=[
            DataRequired(message="Please enter a first name."),
            Length(max=100),
            no_control_characters,
        ],
    )
    last_name = StringField(
        "Last name",
        filters=[_strip],
        validators=[
            DataRequired(message="Please enter a last name."),
            Length(max=100),
            no_control_characters,
        ],
    )
    email = EmailField(
        "E-mail",
        filters=[_strip],
        validators=[
            DataRequired(message="Please enter an e-mail address."),
            Length(max=254),
            no_control_characters,
        ],
    )
    role = SelectField("Role", choices=[SelectChoice(v, label) for v, label in ROLES.items()])
    institution = StringField(
        "Institution",
        filters=[_strip],
        validators=[Optional(), Length(max=200), no_control_characters],
    )
    country = SelectField("Country", choices=[])
    early_career = BooleanField("Trainee or early-career investigator")
    badge_name = StringField(
        "Name on the badge",
        filters=[_strip],
        description="Empty: first and last name.",
        validators=[Optional(), Length(max=100), no_control_characters],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.country.choices = [SelectChoice(code, name) for code, name in countries()]

    def validate_country(self, field) -> None:
        if field.data not in country_names():
            raise ValidationError("Please choose a country from the list.")

    def validate_email(self, field) -> None:
        if not field.data or field.errors:
            return
        try:
            field.data = validate_email(field.data, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValidationError(f"This e-mail address does not look right: {exc}") from None

    def values(self) -> dict[str, object]:
        return {
            "first_name": self.first_name.data,
            "last_name": self.last_name.data,
            "email": self.email.data,
            "role": self.role.data,
            "institution": self.institution.data or "",
            "country": self.country.data,
            "early_career": bool(self.early_career.data),
            "badge_name": self.badge_name.data or "",
        }
