"""Forms of the organizer pages."""

from __future__ import annotations

from datetime import UTC, tzinfo

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    URL,
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from ..auth import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from ..checkin import MAX_PAYLOAD
from ..fees import MAX_CODE_USES
from ..formats import local_input, local_moment, zone_name
from ..forms import (
    country_field,
    email_field,
    no_control_characters,
    no_control_characters_but_lines,
    normalised_email,
    strip,
    text_field,
)
from ..models import (
    EVENT_MAX_LENGTHS,
    MAX_GUESTS_LIMIT,
    ORGANIZER_ROLES,
    QUESTION_TYPES,
    ROLES,
    Attendee,
)
from ..question_settings import choices_from_text

#: What an authenticator or recovery code field says under its label.
OTP_HINT = "The 6-digit code your authenticator app shows now, or one of your recovery codes."


def _otp_field(label: str = "Authenticator code", required: bool = True) -> StringField:
    presence = (
        DataRequired(message="Please enter the code from your authenticator app.")
        if required
        else Optional()
    )
    return StringField(
        label,
        description=OTP_HINT,
        filters=[strip],
        validators=[
            presence,
            Length(max=32, message="That is too long to be a code."),
            no_control_characters,
        ],
    )


def _new_password_field(label: str = "New password") -> PasswordField:
    return PasswordField(
        label,
        description=(
            f"At least {MIN_PASSWORD_LENGTH} characters and hard to guess: "
            "a few unrelated words work well."
        ),
        validators=[
            DataRequired(message="Please enter the new password."),
            Length(max=MAX_PASSWORD_LENGTH),
        ],
    )


def _confirm_field() -> PasswordField:
    return PasswordField(
        "New password again",
        validators=[
            DataRequired(message="Please enter the new password a second time."),
            EqualTo("new_password", message="The two new passwords are not the same."),
        ],
    )


class LoginForm(FlaskForm):
    email = email_field(required="Please enter your e-mail address.")
    password = PasswordField(
        "Password",
        validators=[
            DataRequired(message="Please enter your password."),
            Length(max=MAX_PASSWORD_LENGTH),
        ],
    )
    #: Sent with the password by a client that knows the account has an authenticator;
    #: the page asks for it in a second step otherwise (OtpForm).
    otp = _otp_field(required=False)


class OtpForm(FlaskForm):
    """The second step of signing in, for an account with an authenticator."""

    otp = _otp_field()


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(
        "Current password",
        validators=[
            DataRequired(message="Please enter your current password."),
            Length(max=MAX_PASSWORD_LENGTH),
        ],
    )
    new_password = _new_password_field()
    confirm_password = _confirm_field()


class SetPasswordForm(FlaskForm):
    """A set-password link's page: a new password, twice."""

    new_password = _new_password_field("Password")
    confirm_password = _confirm_field()


class TotpCodeForm(FlaskForm):
    """Confirming or turning off the authenticator, or new recovery codes: a current code."""

    otp = _otp_field()


class InviteForm(FlaskForm):
    email = email_field(required="Please enter the new organizer's e-mail address.")
    role = SelectField(
        "Role",
        choices=[SelectChoice(key, label) for key, label in ORGANIZER_ROLES.items()],
        default="staff",
    )


#: What an administrator may do to another account (organizers.py).
ACCOUNT_ACTIONS = ("deactivate", "reactivate", "reset", "role", "remove_authenticator")


class AccountActionForm(FlaskForm):
    """One button on the list of accounts: what to do, and the new role for "role"."""

    action = SelectField(choices=[SelectChoice(a, a) for a in ACCOUNT_ACTIONS])
    role = SelectField(
        "Role",
        choices=[SelectChoice(key, label) for key, label in ORGANIZER_ROLES.items()],
        validate_choice=False,
    )


class CheckInForm(FlaskForm):
    code = StringField(
        "Attendee code or QR code",
        description="Scan the badge or confirmation QR code, or type the code, e.g. NEC-7K3QXA.",
        validators=[Length(max=MAX_PAYLOAD, message="That is too long to be a code.")],
    )
    #: The door: "" the registration desk, else a program item's key (choices set per event).
    program = SelectField("Door", choices=[SelectChoice("", "Registration desk")], default="")


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token is sent."""


class LocalMomentField(DateTimeLocalField):
    """A date and time typed on the clock of the event's time zone (``zone``, which
    ``on_clock_of`` sets), shown back on that clock; once validated, ``data`` is the moment
    in UTC, as it is stored. A time the clocks skip is refused with a message; one of the hour
    that comes twice is the first of the two (formats.local_moment)."""

    zone: tzinfo = UTC

    def __init__(self, label: str, **kwargs):
        super().__init__(label, format="%Y-%m-%dT%H:%M", **kwargs)

    def _value(self) -> str:
        if self.raw_data:
            return " ".join(self.raw_data)
        return local_input(self.data, self.zone)

    def pre_validate(self, form) -> None:
        if self.data is not None and self.data.tzinfo is None:
            try:
                self.data = local_moment(self.data, self.zone)
            except ValueError as exc:
                self.data = None  # no moment, for the checks that compare it with another
                raise ValidationError(str(exc)) from None


def on_clock_of(form: FlaskForm, zone: tzinfo) -> FlaskForm:
    """``form`` with each of its LocalMomentFields on the clock of ``zone`` (the event's), the
    zone named in its label. Before ``validate``: that is when what was typed becomes UTC."""
    for field in form:
        if isinstance(field, LocalMomentField):
            field.zone = zone
            field.label.text = f"{field.label.text} ({zone_name(zone)})"
    return form


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
    registration_opens_at = LocalMomentField(
        "Registration opens",
        validators=[Optional()],
        description="Leave empty to open at once.",
    )
    registration_closes_at = LocalMomentField(
        "Registration closes",
        validators=[Optional()],
        description="Leave empty to keep registration open.",
    )
    tagline = StringField(
        "Tagline",
        filters=[strip],
        validators=[
            Length(
                max=EVENT_MAX_LENGTHS["tagline"],
                message=f"At most {EVENT_MAX_LENGTHS['tagline']} characters.",
            ),
            no_control_characters,
        ],
    )
    description = TextAreaField(
        "Landing page text",
        description="Markdown: **bold**, *italic*, lists, links.",
        validators=[
            Length(max=50_000, message="At most 50,000 characters."),
            no_control_characters_but_lines,
        ],
    )
    virtual = BooleanField("Also attended online: people choose in person or online")
    virtual_capacity = _count_field("Capacity online", "Leave empty for no limit.", required=False)
    join_url = StringField(
        "Link to join online",
        filters=[strip],
        description="Shown only to confirmed online attendees: on their page, in their e-mails.",
        validators=[
            Optional(),
            Length(max=EVENT_MAX_LENGTHS["join_url"]),
            no_control_characters,
            URL(require_tld=False, message="Please enter a web address such as https://…"),
        ],
    )
    highlights_url = StringField(
        "Video of the meeting (highlights)",
        filters=[strip],
        description="Shown on the event's page once it is over.",
        validators=[
            Optional(),
            Length(max=EVENT_MAX_LENGTHS["highlights_url"]),
            no_control_characters,
            URL(require_tld=False, message="Please enter a web address such as https://…"),
        ],
    )
    max_guests = IntegerField(
        "Companions a registrant may bring",
        description=f"0 for none, at most {MAX_GUESTS_LIMIT}.",
        validators=[
            InputRequired(message="Please enter a number."),
            NumberRange(min=0, max=MAX_GUESTS_LIMIT, message=f"From 0 to {MAX_GUESTS_LIMIT}."),
        ],
    )
    infants_count = BooleanField("Infants take a place of their own")
    consent_version = StringField(
        "Version of the consent texts",
        filters=[strip],
        description="Stored with each consent given; change it when the texts change.",
        validators=[Length(max=EVENT_MAX_LENGTHS["consent_version"]), no_control_characters],
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

    first_name = text_field("First name", "first_name", required="Please enter a first name.")
    last_name = text_field("Last name", "last_name", required="Please enter a last name.")
    email = email_field(required="Please enter an e-mail address.")
    role = SelectField("Role", choices=[SelectChoice(v, label) for v, label in ROLES.items()])
    institution = text_field("Institution", "institution")
    country = country_field(required="Please choose a country.")
    early_career = BooleanField("Trainee or early-career investigator")
    badge_name = text_field(
        "Name on the badge", "badge_name", description="Empty: first and last name."
    )

    @classmethod
    def of(cls, attendee: Attendee) -> AttendeeForm:
        """The form for ``attendee``: a companion has no e-mail and keeps its role."""
        form = cls(obj=attendee)
        if attendee.is_companion:
            del form.email
            del form.role
        return form

    def validate_email(self, field) -> None:
        normalised_email(field)

    def values(self) -> dict[str, object]:
        values = {
            "first_name": self.first_name.data,
            "last_name": self.last_name.data,
            "institution": self.institution.data or "",
            "country": self.country.data,
            "early_career": bool(self.early_career.data),
            "badge_name": self.badge_name.data or "",
        }
        for name in ("email", "role"):
            if name in self:
                values[name] = self[name].data
        return values


class QuestionForm(FlaskForm):
    """A question of the event, as the organizer adds or changes it: its values are checked
    as an event file's ``[[questions]]`` table is (question_settings.py)."""

    key = StringField(
        "Key",
        filters=[strip],
        description="a-z, 0-9 and _, e.g. dietary: the CSV column is q_<key>. It stays once "
        "the question has answers.",
        validators=[no_control_characters],
    )
    label = StringField("Question", filters=[strip], validators=[no_control_characters])
    help = TextAreaField(
        "Help under the question",
        filters=[strip],
        description="Optional.",
        validators=[no_control_characters_but_lines],
    )
    type = SelectField(
        "Type", choices=[SelectChoice(v, label) for v, label in QUESTION_TYPES.items()]
    )
    choices = TextAreaField(
        "Choices",
        description="For one or several choices: one per line, as the form shows it, or "
        "value | label to keep a short value in exports.",
        validators=[no_control_characters_but_lines],
    )
    other = BooleanField("Offer “Other”, with a text of the person’s own")
    required = BooleanField("An answer is required")
    sensitive = BooleanField(
        "Sensitive: kept from check-in staff and left out of exports unless asked for"
    )

    def item(self, roles: list[str]) -> dict[str, object]:
        """The question as an event file's ``[[questions]]`` table, asked of ``roles``."""
        item: dict[str, object] = {
            "key": self.key.data or "",
            "label": self.label.data or "",
            "help": self.help.data or "",
            "type": self.type.data,
            "required": bool(self.required.data),
            "roles": roles,
            "sensitive": bool(self.sensitive.data),
        }
        if self.type.data in ("choice", "multi"):  # the rest have no choices to offer
            item["choices"] = choices_from_text(self.choices.data or "")
            item["other"] = bool(self.other.data)
        return item


class CodeForm(FlaskForm):
    """A new registration code (fees.create_code checks it)."""

    code = StringField(
        "Code",
        filters=[strip],
        description="3 to 40 letters, digits, - and _, e.g. FACULTY25.",
        validators=[no_control_characters],
    )
    percent = IntegerField(
        "Percentage off",
        description="1 to 100 (100: free). Leave empty for an amount off.",
        validators=[Optional()],
    )
    amount = StringField(
        "Amount off",
        filters=[strip],
        description="In the event's currency, e.g. 100.00. Leave empty for a percentage.",
        validators=[no_control_characters],
    )
    max_uses = IntegerField(
        "Use limit",
        description="How many registrations may use it; empty for no limit.",
        validators=[
            Optional(),
            NumberRange(min=1, max=MAX_CODE_USES, message="From 1 to 1,000,000."),
        ],
    )
    expires_at = LocalMomentField(
        "Usable until",
        validators=[Optional()],
        description="Leave empty to keep it usable.",
    )
    bypass_caps = BooleanField(
        "A place even when full",
        description="For faculty and speakers: the code gives a place when the event or the"
        " role is full, and the next places freed go to bring the cap back.",
    )


class PaymentForm(FlaskForm):
    """A payment received outside the site (payments.record_payment checks it)."""

    amount = StringField("Amount received", filters=[strip], description="e.g. 450.00")
    paid_on = DateField(
        "Received on",
        validators=[Optional()],
        description="Leave empty for today.",
    )
    #: Amount and reference are checked by payments.record_payment (control characters too).
    reference = StringField(
        "Reference", filters=[strip], description="The transfer's reference, a cheque number …"
    )


class MessageForm(FlaskForm):
    """A message to the attendees chosen by the list's filters (messages.py checks it)."""

    subject = StringField("Subject", filters=[strip])
    body = TextAreaField(
        "Message",
        description=(
            "Markdown: *italic*, **bold**, [a link](https://…), blank lines between paragraphs. "
            "Placeholders: {first_name}, {last_name}, {code}, {link} (their registration)."
        ),
    )
    #: How many recipients the sender was shown (sending refuses if that changed).
    expected = IntegerField(validators=[Optional()])
