"""Forms of the public side of the site."""

from __future__ import annotations

import unicodedata
from functools import cache

from email_validator import EmailNotValidError
from email_validator import validate_email as check_email_address
from flask import current_app
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import BooleanField, EmailField, Field, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError
from wtforms.widgets import Select, html_params

from ..countries import countries, country_names
from ..models import MAX_LENGTHS, ROLES
from ..registration import EDITABLE_FIELDS, Registrant, Room


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _choices(prompt: str, pairs) -> list[SelectChoice]:
    """A select's options: an empty prompt first, then (value, label) pairs."""
    return [SelectChoice("", prompt)] + [SelectChoice(v, label) for v, label in pairs]


@cache
def _country_choices() -> list[SelectChoice]:
    return _choices("Choose a country", countries())


def no_control_characters(form: FlaskForm, field: Field) -> None:
    if field.data and any(unicodedata.category(ch) == "Cc" for ch in field.data):
        raise ValidationError("Please remove line breaks, tabs and other control characters.")


def _text(label: str, name: str, *, required: bool, description: str = "") -> StringField:
    limit = MAX_LENGTHS[name]
    presence = (
        DataRequired(message=f"Please enter your {label.lower()}.") if required else Optional()
    )
    return StringField(
        label,
        filters=[_strip],
        description=description,
        validators=[
            presence,
            Length(max=limit, message=f"Please use at most {limit} characters."),
            no_control_characters,
        ],
    )


def _email_field(description: str = "") -> EmailField:
    return EmailField(
        "E-mail",
        filters=[_strip],
        description=description,
        validators=[
            DataRequired(message="Please enter your e-mail address."),
            Length(max=MAX_LENGTHS["email"], message="Please use at most 254 characters."),
            no_control_characters,
        ],
    )


def _normalised_email(field: Field) -> None:
    """Check an address with email-validator and keep its normalised form."""
    if not field.data or field.errors:
        return
    try:
        result = check_email_address(
            field.data,
            check_deliverability=current_app.config["EMAIL_CHECK_DELIVERABILITY"],
        )
    except EmailNotValidError as exc:
        raise ValidationError(f"This e-mail address does not look right: {exc}") from None
    field.data = result.normalized


def _role_field() -> SelectField:
    return SelectField(
        "I attend as",
        choices=_choices("Choose one", ROLES.items()),
        validators=[InputRequired(message="Please choose how you attend.")],
        validate_choice=False,
    )


def _institution_field() -> StringField:
    return _text(
        "Institution or organisation",
        "institution",
        required=False,
        description="Optional, e.g. your hospital, university or foundation.",
    )


class PrerenderedSelect(Select):
    """A select whose long, fixed list of options is turned into HTML once per process.

    Rendering some 250 countries option by option took most of the time of the registration
    page; the list never changes, so only the chosen option is marked on each render.
    """

    @staticmethod
    @cache
    def _options(choices: tuple[tuple[str, str], ...]) -> str:
        return "".join(
            f'<option value="{escape(value)}">{escape(label)}</option>' for value, label in choices
        )

    def __call__(self, field: Field, **kwargs) -> Markup:
        kwargs.setdefault("id", field.id)
        if "required" not in kwargs and "required" in getattr(field, "flags", []):
            kwargs["required"] = True
        options = self._options(tuple((c.value, c.label) for c in field.choices))
        if field.data:
            plain = f'<option value="{escape(field.data)}">'
            options = options.replace(plain, plain[:-1] + " selected>", 1)
        # Every value and label was escaped above; html_params escapes the attributes.
        return Markup(f"<select {html_params(name=field.name, **kwargs)}>{options}</select>")  # noqa: S704


def _country_field() -> SelectField:
    return SelectField(
        "Country",
        choices=[],
        validators=[InputRequired(message="Please choose your country.")],
        validate_choice=False,
        widget=PrerenderedSelect(),
    )


def _early_career_field() -> BooleanField:
    return BooleanField("I am a trainee or early-career investigator")


def _badge_name_field() -> StringField:
    return _text(
        "Name on your badge",
        "badge_name",
        required=False,
        description="Optional; we print your first and last name if you leave this empty.",
    )


class _DetailsChecks:
    """Checks and helpers shared by the forms that carry a registrant's details.

    Each form declares its fields itself, in the order of its page, so that its error summary
    follows the page.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.country.choices = _country_choices()

    def validate_role(self, field: Field) -> None:
        if field.data not in ROLES:
            raise ValidationError("Please choose one of the roles in the list.")

    def validate_country(self, field: Field) -> None:
        if field.data not in country_names():
            raise ValidationError("Please choose a country from the list.")

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

    first_name = _text("First name", "first_name", required=True)
    last_name = _text("Last name", "last_name", required=True)
    role = _role_field()
    early_career = _early_career_field()
    institution = _institution_field()
    country = _country_field()
    badge_name = _badge_name_field()

    def details(self) -> dict[str, object]:
        """The values for ``registration.update_details``."""
        values = {name: self[name].data for name in EDITABLE_FIELDS}
        values["institution"] = values["institution"] or ""
        values["badge_name"] = values["badge_name"] or ""
        values["early_career"] = bool(values["early_career"])
        return values


class RegistrationForm(_DetailsChecks, FlaskForm):
    first_name = _text("First name", "first_name", required=True)
    last_name = _text("Last name", "last_name", required=True)
    email = _email_field("Your confirmation and the link to manage your registration go here.")
    role = _role_field()
    institution = _institution_field()
    country = _country_field()
    early_career = _early_career_field()
    badge_name = _badge_name_field()
    consent = BooleanField(
        "I agree that my registration is stored and used as the privacy notice says",
        validators=[DataRequired(message="Please agree to the privacy notice to register.")],
    )

    def validate_email(self, field: Field) -> None:
        _normalised_email(field)

    def registrant(self) -> Registrant:
        return Registrant(
            first_name=self.first_name.data,
            last_name=self.last_name.data,
            email=self.email.data,
            role=self.role.data,
            country=self.country.data,
            institution=self.institution.data or "",
            early_career=bool(self.early_career.data),
            badge_name=self.badge_name.data or "",
        )


class CancelForm(FlaskForm):
    """The "Yes, cancel" button: nothing but the CSRF token."""


class LostLinkForm(FlaskForm):
    email = _email_field("The address you registered with.")

    def validate_email(self, field: Field) -> None:
        _normalised_email(field)
