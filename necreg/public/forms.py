"""Forms of the public side of the site."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    Field,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError

from ..forms import (
    country_field,
    email_field,
    no_control_characters,
    registrant_email,
    strip,
    text_field,
)
from ..interest import CONSENT_TEXT as INTEREST_CONSENT
from ..models import (
    ATTENDANCE,
    CODE_LENGTH_MAX,
    CREDENTIALS,
    IN_PERSON,
    MAX_LENGTHS,
    ROLES,
    SUPPORT_STATEMENT_MAX,
    Attendee,
    Event,
)
from ..registration import EDITABLE_FIELDS, Registrant, Room

#: Longest name on the interest list (first and last name together).
INTEREST_NAME_MAX = MAX_LENGTHS["first_name"] + MAX_LENGTHS["last_name"]


def _choices(prompt: str, pairs) -> list[SelectChoice]:
    """A select's options: an empty prompt first, then (value, label) pairs."""
    return [SelectChoice("", prompt)] + [SelectChoice(v, label) for v, label in pairs]


def _name_field(label: str, name: str) -> StringField:
    return text_field(label, name, required=f"Please enter your {label.lower()}.")


def _role_field() -> SelectField:
    return SelectField(
        "I attend as",
        choices=_choices("Choose one", ROLES.items()),
        validators=[InputRequired(message="Please choose how you attend.")],
        validate_choice=False,
    )


def _institution_field() -> StringField:
    return text_field(
        "Institution or organisation",
        "institution",
        description="Optional, e.g. your hospital, university or foundation.",
    )


def _country_field() -> SelectField:
    return country_field(prompt="Choose a country")


def _early_career_field() -> BooleanField:
    return BooleanField("I am a trainee or early-career investigator")


def _credential_field() -> SelectField:
    return SelectField(
        "Your credential",
        choices=[SelectChoice("", "None / not given")]
        + [SelectChoice(value, label) for value, label in CREDENTIALS.items()],
        default="",
        description="Optional: it decides the wording of your certificate of attendance"
        " (CME credit is for physicians, MD and DO).",
    )


def _badge_name_field() -> StringField:
    return text_field(
        "Name on your badge",
        "badge_name",
        description="Optional; we print your first and last name if you leave this empty.",
    )


def _attendance_field() -> RadioField:
    return RadioField(
        "I will attend",
        choices=[SelectChoice(value, label) for value, label in ATTENDANCE.items()],
        default=IN_PERSON,
        validate_choice=False,
    )


def _photo_consent_field() -> BooleanField:
    return BooleanField(
        "Photos and recordings of the symposium may show me (and the companions I bring)",
        description="Photographers are told who declined: your badge says so.",
    )


def _list_consent_field() -> BooleanField:
    return BooleanField(
        "Show me on the attendee list shared with other attendees",
        description="Your name, institution and where you come from.",
    )


def _email_field(description: str) -> EmailField:
    return email_field(description, required="Please enter your e-mail address.")


class _DetailsChecks:
    """Checks and helpers shared by the forms that carry a registrant's details.

    Each form declares its fields itself, in the order of its page, so that its error summary
    follows the page.
    """

    def validate_role(self, field: Field) -> None:
        if field.data not in ROLES:
            raise ValidationError("Please choose one of the roles in the list.")

    def validate_attendance(self, field: Field) -> None:
        if field.data not in ATTENDANCE:
            raise ValidationError("Please choose in person or online.")

    def attendance_for(self, event: Event) -> str:
        """How the person attends: as chosen where the event is also online."""
        return self.attendance.data if event.virtual else IN_PERSON

    def consents(self) -> dict[str, bool]:
        """The consents beyond the registration terms, for ``registration.update_consents``."""
        return {"photo": bool(self.consent_photo.data), "list": bool(self.consent_list.data)}

    def show_room(self, room: Room, threshold: int, keep: str | None = None) -> None:
        """Say in the role list which roles are full (and how few places others have left).

        ``keep``: the role the registrant already holds, which is never shown as full to them.
        """
        labels = []
        for role, label in ROLES.items():
            left = room.by_role[role]
            if role != keep and left == 0:
                label = f"{label} (full: joins the waiting list)"
            elif role != keep and left is not None and left < threshold:
                label = f"{label} ({left} {'place' if left == 1 else 'places'} left)"
            labels.append((role, label))
        self.role.choices = _choices("Choose one", labels)


class DetailsForm(_DetailsChecks, FlaskForm):
    """What a registrant may correct themselves from their link (not the e-mail)."""

    first_name = _name_field("First name", "first_name")
    last_name = _name_field("Last name", "last_name")
    role = _role_field()
    early_career = _early_career_field()
    credential = _credential_field()
    institution = _institution_field()
    country = _country_field()
    badge_name = _badge_name_field()
    attendance = _attendance_field()
    consent_photo = _photo_consent_field()
    consent_list = _list_consent_field()

    @classmethod
    def of(cls, attendee: Attendee) -> DetailsForm:
        """The form filled in with the attendee's details and consents."""
        form = cls(obj=attendee)
        if not form.is_submitted():
            form.consent_photo.data = attendee.photo_consent_at is not None
            form.consent_list.data = attendee.list_consent_at is not None
        return form

    def details(self, event: Event) -> dict[str, object]:
        """The values for ``registration.update_details``."""
        values = {name: self[name].data for name in EDITABLE_FIELDS}
        if event.virtual:
            values["attendance"] = self.attendance.data
        values["institution"] = values["institution"] or ""
        values["badge_name"] = values["badge_name"] or ""
        values["early_career"] = bool(values["early_career"])
        return values


class RegistrationForm(_DetailsChecks, FlaskForm):
    first_name = _name_field("First name", "first_name")
    last_name = _name_field("Last name", "last_name")
    email = _email_field("Your confirmation and the link to manage your registration go here.")
    role = _role_field()
    institution = _institution_field()
    country = _country_field()
    early_career = _early_career_field()
    credential = _credential_field()
    badge_name = _badge_name_field()
    attendance = _attendance_field()
    consent_photo = _photo_consent_field()
    consent_list = _list_consent_field()
    code = StringField(
        "Registration code",
        filters=[strip],
        description="Optional: a code from the organizers lowers or waives your fee.",
        validators=[
            Length(max=CODE_LENGTH_MAX, message="That is too long to be a code."),
            no_control_characters,
        ],
    )
    support_request = BooleanField("I ask for support to come (a travel grant or a fee waiver)")
    support_statement = TextAreaField(
        "Why support would help you come",
        filters=[strip],
        description="Optional: your role, where you come from, what support would make possible."
        f" At most {SUPPORT_STATEMENT_MAX} characters; the organizers' reviewers read it.",
        validators=[
            Length(
                max=SUPPORT_STATEMENT_MAX,
                message=f"Please keep your statement to {SUPPORT_STATEMENT_MAX} characters.",
            )
        ],
    )
    consent = BooleanField(
        "I agree that my registration is stored and used as the privacy notice says",
        validators=[DataRequired(message="Please agree to the privacy notice to register.")],
    )

    def validate_email(self, field: Field) -> None:
        registrant_email(field)

    def registrant(self, event: Event) -> Registrant:
        return Registrant(
            first_name=self.first_name.data,
            last_name=self.last_name.data,
            email=self.email.data,
            role=self.role.data,
            country=self.country.data,
            institution=self.institution.data or "",
            early_career=bool(self.early_career.data),
            credential=self.credential.data or "",
            badge_name=self.badge_name.data or "",
            attendance=self.attendance_for(event),
            photo_consent=bool(self.consent_photo.data),
            list_consent=bool(self.consent_list.data),
        )


class CancelForm(FlaskForm):
    """The "Yes, cancel" button: nothing but the CSRF token."""


class LostLinkForm(FlaskForm):
    email = _email_field("The address you registered with.")

    def validate_email(self, field: Field) -> None:
        registrant_email(field)


class InterestForm(FlaskForm):
    """Sign up to hear when registration for the next symposium opens."""

    name = StringField(
        "Your name",
        filters=[strip],
        validators=[
            DataRequired(message="Please enter your name."),
            Length(max=INTEREST_NAME_MAX, message=f"At most {INTEREST_NAME_MAX} characters."),
            no_control_characters,
        ],
    )
    email = _email_field("We write to it once per meeting, when registration opens.")
    consent = BooleanField(
        INTEREST_CONSENT,
        validators=[DataRequired(message="Please agree, so that we may write to you.")],
    )

    def validate_email(self, field: Field) -> None:
        registrant_email(field)


class ButtonForm(FlaskForm):
    """A button that confirms or unsubscribes: nothing but the CSRF token."""
