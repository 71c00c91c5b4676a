"""Form fields that the public and the organizer forms share, built from the one definition of
each fact: lengths (models.MAX_LENGTHS), e-mail normalisation and the characters refused in text
(formats.py), countries."""

from __future__ import annotations

from flask import current_app
from markupsafe import Markup, escape
from wtforms import EmailField, Field, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError
from wtforms.widgets import html_params

from .countries import countries, country_names, country_options
from .formats import LINE_CONTROLS, InvalidEmail, has_control_characters, nfc, normalise_email
from .models import MAX_LENGTHS
from .speed.memo import kept

#: Why a text with control or invisible formatting characters is refused.
CONTROL_CHARACTERS_MESSAGE = (
    "Please remove line breaks, tabs, control characters and invisible formatting characters"
    " (such as direction marks or zero-width spaces)."
)


def strip(value: str | None) -> str | None:
    """The filter of every text field (public and organizer forms): the text in NFC (one way
    of writing each accented letter), without surrounding spaces."""
    return nfc(value).strip() if isinstance(value, str) else value


def no_control_characters(form, field: Field) -> None:
    """Refuse control characters (line breaks and tabs too) and invisible formatting ones."""
    if field.data and has_control_characters(field.data):
        raise ValidationError(CONTROL_CHARACTERS_MESSAGE)


def no_control_characters_but_lines(form, field: Field) -> None:
    """As ``no_control_characters``, but a text of several lines keeps its line breaks and
    tabs."""
    if field.data and has_control_characters(field.data, LINE_CONTROLS):
        raise ValidationError(
            "Please remove control characters and invisible formatting characters"
            " (such as direction marks or zero-width spaces)."
        )


def _at_most(name: str) -> Length:
    limit = MAX_LENGTHS[name]
    return Length(max=limit, message=f"Please use at most {limit} characters.")


def text_field(
    label: str, name: str, *, required: str | None = None, description: str = ""
) -> StringField:
    """A one-line text of the field ``name`` of MAX_LENGTHS; ``required``: the message when it
    is left empty (None: optional)."""
    presence = DataRequired(message=required) if required else Optional()
    return StringField(
        label,
        filters=[strip],
        description=description,
        validators=[presence, _at_most(name), no_control_characters],
    )


def email_field(description: str = "", *, required: str) -> EmailField:
    return EmailField(
        "E-mail",
        filters=[strip],
        description=description,
        validators=[DataRequired(message=required), _at_most("email"), no_control_characters],
    )


def normalised_email(field: Field, *, check_deliverability: bool = False) -> None:
    """Check an e-mail field's address and keep its normalised form (formats.normalise_email)."""
    if not field.data or field.errors:
        return
    try:
        field.data = normalise_email(field.data, check_deliverability=check_deliverability)
    except InvalidEmail as exc:
        raise ValidationError(str(exc)) from None


def registrant_email(field: Field) -> None:
    """As ``normalised_email``, asking DNS too when EMAIL_CHECK_DELIVERABILITY is on."""
    deliverability = bool(current_app.config["EMAIL_CHECK_DELIVERABILITY"])
    normalised_email(field, check_deliverability=deliverability)


def country_menu(selected: str) -> Markup:
    """The ``<option>`` elements of every country, ``selected`` chosen: rendered once per code
    and process (escaping some 250 options took as long as the rest of a page)."""
    size = len(countries()) + 1
    return kept(
        "country_options", selected, lambda: country_options(selected), size=size, watched=False
    )


class CountrySelect:
    """The country ``<select>``, with an empty ``prompt`` option first when one is given."""

    def __init__(self, prompt: str | None = None):
        self.prompt = prompt

    def __call__(self, field: Field, **kwargs) -> Markup:
        kwargs.setdefault("id", field.id)
        if "required" not in kwargs and "required" in getattr(field, "flags", []):
            kwargs["required"] = True
        first = f'<option value="">{escape(self.prompt)}</option>' if self.prompt else ""
        options = country_menu(field.data or "")
        # html_params escapes the attributes; the prompt is escaped above, the options in
        # country_options.
        return Markup(f"<select {html_params(name=field.name, **kwargs)}>{first}{options}</select>")  # noqa: S704


def _country_known(form, field: Field) -> None:
    if field.data not in country_names():
        raise ValidationError("Please choose a country from the list.")


def country_field(
    label: str = "Country",
    *,
    prompt: str | None = None,
    required: str = "Please choose your country.",
) -> SelectField:
    """An ISO 3166-1 alpha-2 code chosen from the list of countries."""
    return SelectField(
        label,
        choices=[],
        validators=[InputRequired(message=required), _country_known],
        validate_choice=False,
        widget=CountrySelect(prompt),
    )
