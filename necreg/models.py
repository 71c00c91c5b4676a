"""The domain's tables. Invariants live here as database constraints, not only in forms."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    func,
    text,
)
from sqlalchemy import (
    event as sa_event,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db
from .folding import SEARCHED_FIELDS, search_text
from .formats import time_zone
from .trigrams import trigram_schema

#: Attendee roles, in the order they are shown, with their labels. The one source for both.
ROLES: dict[str, str] = {
    "clinician": "Clinician",
    "scientist": "Scientist",
    "family": "Patient-family",
    "advocate": "Advocate",
}

#: The role of a companion registered by a lead registrant (a household): not offered on the
#: form, never capped by role.
GUEST_ROLE = "guest"
#: Every role an attendee row may hold, with its label.
ATTENDEE_ROLES: dict[str, str] = {**ROLES, GUEST_ROLE: "Companion"}
#: How a companion's age is given; an infant takes a place only if the event says so.
AGE_BANDS: dict[str, str] = {"adult": "Adult", "child": "Child", "infant": "Infant"}
INFANT = "infant"
#: Credentials a registrant may give: they decide the wording of a CME certificate.
CREDENTIALS: dict[str, str] = {
    "MD": "MD",
    "DO": "DO",
    "RN": "RN",
    "NP": "NP",
    "PA": "PA",
    "PhD": "PhD",
    "other": "Other",
}

#: How one attends, when the event is also online (``virtual``).
IN_PERSON = "in_person"
VIRTUAL = "virtual"
ATTENDANCE: dict[str, str] = {IN_PERSON: "In person", VIRTUAL: "Online"}

#: Registration statuses. Only ``confirmed`` counts as an active attendee (Attendee.is_active);
#: ``pending_payment`` holds a place (every cap counts it) until ``payment_due_at``.
STATUS_CONFIRMED = "confirmed"
STATUS_PENDING = "pending_payment"
STATUS_WAITLISTED = "waitlisted"
STATUS_CANCELLED = "cancelled"
STATUSES = (STATUS_CONFIRMED, STATUS_PENDING, STATUS_WAITLISTED, STATUS_CANCELLED)
#: The statuses that hold a place.
HOLDING_STATUSES = (STATUS_CONFIRMED, STATUS_PENDING)
#: How pages name each status.
STATUS_LABELS = {
    STATUS_CONFIRMED: "Confirmed",
    STATUS_PENDING: "Held until paid",
    STATUS_WAITLISTED: "Waitlisted",
    STATUS_CANCELLED: "Cancelled",
}

#: Longest accepted value of each free-text field of a registration or an organizer account,
#: in characters: the forms, the columns and their check constraints all read it from here.
MAX_LENGTHS = {
    "first_name": 100,
    "last_name": 100,
    "badge_name": 100,
    "email": 254,
    "institution": 200,
}
#: The same for an event's texts (event file and settings page).
EVENT_MAX_LENGTHS = {
    "name": 200,
    "tagline": 300,
    "venue": 200,
    "join_url": 500,
    "consent_version": 40,
    "timezone": 64,
    "highlights_url": 500,
}
#: Longest name of a price, and of a code (codes are stored upper-case).
PRICE_NAME_LENGTH = 100
CODE_LENGTH_MAX = 40

#: The most companions an event may let a registrant bring.
MAX_GUESTS_LIMIT = 10

#: Alphabet of attendee codes: no 0/O, 1/I/L, so a code read aloud or typed is unambiguous.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_token() -> str:
    """An unguessable token for the attendee's self-service link (256 bits)."""
    return secrets.token_urlsafe(32)


def new_code(prefix: str, rng: Any = secrets) -> str:
    """A short human code such as ``NEC-7K3QXA`` (31**6, about 890 million values), drawn with
    ``rng``'s ``choice`` (``secrets``; a seeded ``random.Random`` for demo data)."""
    return prefix + "-" + "".join(rng.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored as UTC
    and given back their ``tzinfo`` when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def registration_window_open(
    opens_at: datetime | None,
    closes_at: datetime | None,
    now: datetime,
    over_at: datetime | None = None,
) -> bool:
    """Whether registration is open at ``now`` for a window from ``opens_at`` (None: open from
    the start) until ``closes_at`` (None: until the event is over, at ``over_at``), its end
    excluded."""
    if over_at is not None and now >= over_at:
        return False
    return (opens_at is None or now >= opens_at) and (closes_at is None or now < closes_at)


def event_over_at(ends_on: date, timezone: str) -> datetime:
    """When an event that ends on ``ends_on`` is over: midnight after its last day in its time
    zone (an unknown zone counts as UTC: the event file and the settings refuse one)."""
    zone = time_zone(timezone) or UTC
    return datetime.combine(ends_on + timedelta(days=1), time(0), zone).astimezone(UTC)


def default_badge_name(first_name: str, last_name: str) -> str:
    """What the badge says when the person leaves their badge name empty."""
    return f"{first_name} {last_name}"[: MAX_LENGTHS["badge_name"]]


def _length_check(column: str, low: int = 0, *, trimmed: bool = False) -> CheckConstraint:
    """The check that ``column`` holds from ``low`` to MAX_LENGTHS[column] characters."""
    measured = f"length(trim({column}))" if trimmed else f"length({column})"
    high = MAX_LENGTHS[column]
    rule = f"{measured} BETWEEN {low} AND {high}" if low else f"{measured} <= {high}"
    return CheckConstraint(rule, name=f"{column}_length")


def _search_text_default(context: Any) -> str:
    return search_text(context.get_current_parameters())


def _in(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Event(db.Model):
    """A symposium that people register for. Exactly one event at most is *current*."""

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("length(slug) BETWEEN 1 AND 64", name="slug_length"),
        CheckConstraint("ends_on >= starts_on", name="dates_in_order"),
        CheckConstraint("sessions >= 0 AND faculty >= 0", name="counters_not_negative"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity_not_negative"),
        CheckConstraint(
            "virtual_capacity IS NULL OR virtual_capacity >= 0",
            name="virtual_capacity_not_negative",
        ),
        CheckConstraint(f"max_guests BETWEEN 0 AND {MAX_GUESTS_LIMIT}", name="max_guests_range"),
        # At most one current event: a unique index over the rows where is_current is true.
        Index(
            "uq_events_one_current",
            "is_current",
            unique=True,
            sqlite_where=text("is_current"),
            postgresql_where=text("is_current"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(EVENT_MAX_LENGTHS["name"]))
    tagline: Mapped[str] = mapped_column(String(EVENT_MAX_LENGTHS["tagline"]), default="")
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    venue: Mapped[str] = mapped_column(String(EVENT_MAX_LENGTHS["venue"]), default="")
    #: Organisations hosting the event, in the order they are named.
    hosts: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: The event that ``/`` and ``/register`` serve.
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Public counters that organizers set: educational sessions and faculty.
    sessions: Mapped[int] = mapped_column(Integer, default=0)
    faculty: Mapped[int] = mapped_column(Integer, default=0)
    #: Active attendees in total; None means unlimited.
    capacity: Mapped[int | None] = mapped_column(Integer)
    #: Caps per role, e.g. {"family": 60}; roles not named are unlimited.
    capacity_by_role: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    #: Also attended online: ``capacity`` and ``capacity_by_role`` then cap in-person attendees,
    #: ``virtual_capacity`` (None: unlimited) the online ones.
    virtual: Mapped[bool] = mapped_column(Boolean, default=False)
    virtual_capacity: Mapped[int | None] = mapped_column(Integer)
    #: The link online attendees join by: shown only to confirmed online attendees.
    join_url: Mapped[str] = mapped_column(String(EVENT_MAX_LENGTHS["join_url"]), default="")
    #: How many companions a registrant may bring (0: none); whether infants take a place.
    max_guests: Mapped[int] = mapped_column(Integer, default=0)
    infants_count: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The version of the consent texts shown on the form, stored with each consent given.
    consent_version: Mapped[str] = mapped_column(
        String(EVENT_MAX_LENGTHS["consent_version"]), default=""
    )
    #: ISO 4217 currency of the prices ("" while the event has none).
    currency: Mapped[str] = mapped_column(String(3), default="")
    #: Until when a cancellation is refunded (None: no refunds promised).
    refund_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Printed on certificates of attendance (CME/CE wording), and from when they are given.
    cme_statement: Mapped[str] = mapped_column(Text, default="")
    certificates_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Money for travel grants, in minor units of the event's currency (None: no budget set).
    support_budget: Mapped[int | None] = mapped_column(Integer)
    #: When the "your certificate is ready" e-mails were queued (None: not yet).
    certificates_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    registration_opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    registration_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The IANA time zone the event takes place in: every time shown to people is in it, and
    #: the event is over (registration closed) at the end of ``ends_on`` there.
    timezone: Mapped[str] = mapped_column(String(EVENT_MAX_LENGTHS["timezone"]), default="UTC")
    #: A video of the meeting, shown on its page once it is over ("" while there is none).
    highlights_url: Mapped[str] = mapped_column(
        String(EVENT_MAX_LENGTHS["highlights_url"]), default=""
    )
    #: Markdown shown on the landing page.
    description: Mapped[str] = mapped_column(Text, default="")
    #: [{"quote": ..., "name": ..., "title": ...}, ...]
    testimonials: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    attendees: Mapped[list[Attendee]] = relationship(back_populates="event", lazy="raise")

    @property
    def zone(self) -> tzinfo:
        """The event's time zone (``timezone``; UTC if it names none)."""
        return time_zone(self.timezone) or UTC

    @property
    def over_at(self) -> datetime:
        """When the meeting is over: registration closes and its page presents it as held."""
        return event_over_at(self.ends_on, self.timezone)

    def is_over(self, now: datetime) -> bool:
        return now >= self.over_at

    def registration_open(self, now: datetime) -> bool:
        return registration_window_open(
            self.registration_opens_at, self.registration_closes_at, now, self.over_at
        )

    def __repr__(self) -> str:
        return f"<Event {self.slug}>"


def _trigrams_in_public(_ddl: Any, _target: Any, bind: Any, **_kw: Any) -> bool:
    """create_all makes the trigram index when pg_trgm is in public (installed if missing and
    allowed), where the index's operator class is looked for."""
    return trigram_schema(bind) == "public"


class Attendee(db.Model):
    """One person's registration for one event, whatever its status."""

    __tablename__ = "attendees"
    __table_args__ = (
        CheckConstraint(_in("role", ATTENDEE_ROLES), name="role_known"),
        CheckConstraint(_in("attendance", ATTENDANCE), name="attendance_known"),
        CheckConstraint(f"age_band IS NULL OR {_in('age_band', AGE_BANDS)}", name="age_band_known"),
        CheckConstraint(_in("status", STATUSES), name="status_known"),
        CheckConstraint(
            f"credential = '' OR {_in('credential', CREDENTIALS)}", name="credential_known"
        ),
        _length_check("first_name", 1, trimmed=True),
        _length_check("last_name", 1, trimmed=True),
        _length_check("badge_name", 1),
        # A companion has no e-mail of their own.
        CheckConstraint(
            f"length(email) BETWEEN 3 AND {MAX_LENGTHS['email']}"
            " OR (party_id IS NOT NULL AND email = '')",
            name="email_length",
        ),
        _length_check("institution"),
        CheckConstraint("length(country) = 2", name="country_length"),
        # One registration per e-mail per event, in any letter case, unless it was cancelled
        # (companions, without an e-mail, aside).
        Index(
            "uq_attendees_event_email_active",
            "event_id",
            func.lower(text("email")),
            unique=True,
            sqlite_where=text("status <> 'cancelled' AND party_id IS NULL"),
            postgresql_where=text("status <> 'cancelled' AND party_id IS NULL"),
        ),
        Index("ix_attendees_party", "party_id"),
        # Who owes a fee: the dashboard's outstanding total and the payments CSV read it.
        Index(
            "ix_attendees_owing",
            "event_id",
            sqlite_where=text("amount_due > 0"),
            postgresql_where=text("amount_due > 0"),
        ),
        Index("ix_attendees_event_status_role", "event_id", "status", "role"),
        # The holds to expire, soonest first.
        Index(
            "ix_attendees_payment_due",
            "payment_due_at",
            sqlite_where=text(f"status = '{STATUS_PENDING}'"),
            postgresql_where=text(f"status = '{STATUS_PENDING}'"),
        ),
        # The attendee list's default order, so a page (and a bounded count) stops early. On
        # SQLite it holds the search text too: a search reads the index, not each table row.
        # PostgreSQL finds rare words with trigrams instead (migration 0006 says why).
        Index("ix_attendees_event_created", "event_id", "created_at", "id").ddl_if(
            dialect="postgresql"
        ),
        Index(
            "ix_attendees_event_created_text", "event_id", "created_at", "id", "search_text"
        ).ddl_if(dialect="sqlite"),
        Index(
            "ix_attendees_search_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "public.gin_trgm_ops"},
        ).ddl_if(dialect="postgresql", callable_=_trigrams_in_public),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="RESTRICT"))
    #: Short human code printed on the badge and typed at check-in, e.g. NEC-7K3QXA.
    code: Mapped[str] = mapped_column(String(20), unique=True)
    #: Secret in the attendee's self-service link.
    token: Mapped[str] = mapped_column(String(64), unique=True, default=new_token)
    status: Mapped[str] = mapped_column(String(16), default=STATUS_CONFIRMED)
    role: Mapped[str] = mapped_column(String(16))
    first_name: Mapped[str] = mapped_column(String(MAX_LENGTHS["first_name"]))
    last_name: Mapped[str] = mapped_column(String(MAX_LENGTHS["last_name"]))
    #: As typed, normalised by email-validator; uniqueness ignores letter case.
    email: Mapped[str] = mapped_column(String(MAX_LENGTHS["email"]))
    institution: Mapped[str] = mapped_column(String(MAX_LENGTHS["institution"]), default="")
    #: ISO 3166-1 alpha-2 code.
    country: Mapped[str] = mapped_column(String(2))
    #: Trainee or early-career investigator.
    early_career: Mapped[bool] = mapped_column(Boolean, default=False)
    #: CREDENTIALS ('' when not given): the wording of a CME certificate.
    credential: Mapped[str] = mapped_column(String(16), default="")
    badge_name: Mapped[str] = mapped_column(String(MAX_LENGTHS["badge_name"]))
    #: The lead registrant of a companion's party (None: a lead, or alone); a companion's
    #: status follows the lead's.
    party_id: Mapped[int | None] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"))
    #: A companion's age band (AGE_BANDS); None for a registrant.
    age_band: Mapped[str | None] = mapped_column(String(8))
    #: Whether the attendee takes a place when confirmed: not an infant where infants do not
    #: count (``Event.infants_count``), decided when they are added.
    takes_place: Mapped[bool] = mapped_column(Boolean, default=True)
    attendance: Mapped[str] = mapped_column(String(16), default=IN_PERSON)
    #: The fee owed, in minor units of the event's currency (0: free), and the name of the
    #: price it came from, fixed when the person registered (after any code).
    amount_due: Mapped[int] = mapped_column(Integer, default=0)
    price_name: Mapped[str] = mapped_column(String(PRICE_NAME_LENGTH), default="")
    #: When an unpaid registration (``pending_payment``) stops holding its place; kept when
    #: it expired (cancelled for want of payment), cleared when it is paid or cancelled.
    payment_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the person's data was erased (anonymised: name, e-mail, institution and answers
    #: gone; the place and the counts kept), on request or by the retention period.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Consents, each with its time and the version of the text shown (``consent_version``
    #: for the registration terms, given by everyone who registers): photos, and appearing on
    #: the attendee list; None: not given, or withdrawn.
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    consent_version: Mapped[str] = mapped_column(
        String(EVENT_MAX_LENGTHS["consent_version"]), default=""
    )
    photo_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    photo_consent_version: Mapped[str | None] = mapped_column(
        String(EVENT_MAX_LENGTHS["consent_version"])
    )
    list_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    list_consent_version: Mapped[str | None] = mapped_column(
        String(EVENT_MAX_LENGTHS["consent_version"])
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Name, e-mail, institution, code and badge name folded for search (folding.py); written
    #: with every insert (also bulk ones: a column default) and every ORM update.
    search_text: Mapped[str] = mapped_column(Text, default=_search_text_default)

    event: Mapped[Event] = relationship(back_populates="attendees")

    @hybrid_property
    def is_active(self) -> bool:
        """An active attendee: confirmed, so counted, given a badge and let in."""
        return self.status == STATUS_CONFIRMED

    @property
    def holds_place(self) -> bool:
        """Confirmed, or holding a place until it is paid for."""
        return self.status in HOLDING_STATUSES

    @property
    def expired(self) -> bool:
        """Cancelled because it was not paid for in time."""
        return self.status == STATUS_CANCELLED and self.payment_due_at is not None

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def role_label(self) -> str:
        return ATTENDEE_ROLES[self.role]

    @property
    def is_companion(self) -> bool:
        return self.party_id is not None

    def __repr__(self) -> str:
        return f"<Attendee {self.code} {self.status}>"


#: What the database tallies of an event's registrations (triggers.py keeps them), by kind:
#: ``status`` counts every registration; ``day`` every registration by the UTC day it was
#: made; the others only active ones: ``role``, ``country``, ``institution`` (as written,
#: trimmed; grouped case-blind when read), ``early_career`` and ``checked_in`` (key '').
#: ``role`` counts places taken (an infant who takes none is left out) and ``virtual`` the
#: online ones among them, by role (in person is the difference); ``answer`` the active
#: attendees per choice of a question (key ``<question id>:<choice>``, kept by the trigger
#: on answers); ``hold`` the places held until paid for (``pending_payment``), by
#: ``<attendance>:<role>``; ``attended`` the people checked in at each program item's door
#: (key: the item's key, kept by checkin.py).
#: ``version`` counts the changes themselves: a page knows from it whether figures moved.
TALLY_KINDS = (
    "status", "day", "role", "country", "institution", "early_career", "checked_in",
    "virtual", "answer", "hold", "attended", "version",
)  # fmt: skip


class Tally(db.Model):
    """One share of one figure of an event, kept by database triggers in the same transaction
    as every change (see triggers.py for why a figure has several shares)."""

    __tablename__ = "tallies"
    __table_args__ = (CheckConstraint(_in("kind", TALLY_KINDS), name="kind_known"),)

    event_id: Mapped[int] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_LENGTHS["institution"]), primary_key=True)
    #: Which share: each writing transaction has one to itself (triggers.py).
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)
    #: When this share last changed (set by the triggers).
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PlacePool(db.Model):
    """A cap as places: ``event`` (the event's capacity, in person when the event is also
    online), ``role:<role>`` (in person too) or ``virtual`` (the online attendees). It has one
    PlaceSlot per place, or one per active attendee when a cap was lowered below them (a
    place freed there is then removed, triggers.py)."""

    __tablename__ = "place_pools"
    __table_args__ = (Index("uq_place_pools_event_name", "event_id", "name", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    capacity: Mapped[int] = mapped_column(Integer)


class PlaceSlot(db.Model):
    """One place of a pool, free or held by an active attendee. Database triggers claim and
    free them (triggers.py); a registration that finds none is refused by the database."""

    __tablename__ = "place_slots"
    __table_args__ = (
        # Free places in order: a claim reads the first one nobody else holds.
        Index(
            "ix_place_slots_free",
            "pool_id",
            "id",
            sqlite_where=text("attendee_id IS NULL"),
            postgresql_where=text("attendee_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("place_pools.id", ondelete="CASCADE"))
    attendee_id: Mapped[int | None] = mapped_column(
        ForeignKey("attendees.id", ondelete="SET NULL"), index=True
    )


#: Kinds of question an event may ask (``[[questions]]`` in the event file), with what an
#: organizer sees them called.
QUESTION_TYPES: dict[str, str] = {
    "text": "Short text",
    "textarea": "Long text",
    "choice": "One choice",
    "multi": "Several choices",
    "yes_no": "Yes or no",
}
#: Longest key, label and help of a question, choice value and label, and answer texts.
QUESTION_MAX_LENGTHS = {
    "key": 40,
    "label": 300,
    "help": 1000,
    "choice": 100,
    "choice_label": 200,
    "text": 200,
    "textarea": 2000,
}


class Question(db.Model):
    """Something an event asks of its registrants beyond the fixed fields (dietary needs,
    photo consent ...). Its answers are rows of Answer, so a new question needs no migration.

    A question that has answers keeps its key and type; one no longer asked is *retired*
    (``retired_at``), and its answers stay.
    """

    __tablename__ = "questions"
    __table_args__ = (
        CheckConstraint(_in("type", QUESTION_TYPES), name="type_known"),
        Index("uq_questions_event_key", "event_id", "key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    #: a-z, 0-9 and ``_``: the form input and CSV column are ``q_<key>``.
    key: Mapped[str] = mapped_column(String(QUESTION_MAX_LENGTHS["key"]))
    label: Mapped[str] = mapped_column(String(QUESTION_MAX_LENGTHS["label"]))
    help: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(16))
    #: [{"value": ..., "label": ...}, ...] for ``choice`` and ``multi``.
    choices: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    #: ``choice``/``multi``: an "Other" choice with a text of the registrant's own.
    other: Mapped[bool] = mapped_column(Boolean, default=False)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Asked only of these roles; empty: of everyone.
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Kept from check-in staff and left out of exports unless asked for.
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Order on the form (then by id).
    position: Mapped[int] = mapped_column(Integer, default=0)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Answer(db.Model):
    """One answer of one attendee to one question: a ``multi`` question has a row per choice
    taken. ``choice`` holds the value of a choice (or ``yes``/``no``), indexed so that the
    attendee list filters by it; ``text`` a written answer, or the text of an "Other"."""

    __tablename__ = "answers"
    __table_args__ = (
        Index("ix_answers_attendee", "attendee_id", "question_id"),
        Index("ix_answers_question_choice", "question_id", "choice", "attendee_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"))
    choice: Mapped[str | None] = mapped_column(String(QUESTION_MAX_LENGTHS["choice"]))
    text: Mapped[str | None] = mapped_column(Text)


@sa_event.listens_for(Attendee, "before_update")
def _refresh_search_text(_mapper: Any, _connection: Any, attendee: Attendee) -> None:
    attendee.search_text = search_text({name: getattr(attendee, name) for name in SEARCHED_FIELDS})


#: Organizer roles: admins do everything, staff only check people in.
ADMIN = "admin"
ORGANIZER_ROLES: dict[str, str] = {ADMIN: "Administrator", "staff": "Check-in staff"}


class OrganizerRole:
    """What an organizer's ``role`` allows, for the account row and the signed-in organizer."""

    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def role_label(self) -> str:
        return ORGANIZER_ROLES[self.role]


class Organizer(OrganizerRole, db.Model):
    """A person who runs the event from the /organizer/ pages."""

    __tablename__ = "organizers"
    __table_args__ = (
        CheckConstraint(_in("role", ORGANIZER_ROLES), name="role_known"),
        _length_check("email", 3),
        Index("uq_organizers_email", func.lower(text("email")), unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(MAX_LENGTHS["email"]))
    #: argon2id hash (argon2-cffi), never the password itself.
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=ADMIN)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the password was last set (its change ends every session opened before).
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The TOTP authenticator's secret (base32), and since when sign-in asks for its code
    #: (None: not enrolled, or enrolment not confirmed with a first code).
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The last TOTP time step accepted, so a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)

    def __repr__(self) -> str:
        return f"<Organizer {self.email} {self.role}>"


class OrganizerSession(db.Model):
    """A signed-in organizer's session: the cookie carries its id (a random token, stored
    hashed); signing out, a password change or a deactivation revokes it, and it ends after
    SESSION_IDLE_MINUTES without use or SESSION_MAX_HOURS after sign-in."""

    __tablename__ = "organizer_sessions"
    __table_args__ = (
        Index("uq_organizer_sessions_token", "token_hash", unique=True),
        Index("ix_organizer_sessions_organizer", "organizer_id", "revoked_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organizer_id: Mapped[int] = mapped_column(ForeignKey("organizers.id", ondelete="CASCADE"))
    #: Hex SHA-256 of the session's token (the cookie's value).
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Where it was opened from: the client's address and browser, as the log shows them.
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class RecoveryCode(db.Model):
    """A one-time code that signs in in place of the authenticator's (ten are given at
    enrolment; only their hashes are kept)."""

    __tablename__ = "recovery_codes"
    __table_args__ = (Index("ix_recovery_codes_organizer", "organizer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organizer_id: Mapped[int] = mapped_column(ForeignKey("organizers.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(255))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginFailure(db.Model):
    """A failed sign-in: counted per (account, client address) and per address to slow the
    next attempts (growing delays, never a lock the owner cannot get past)."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_account", "email", "address", "failed_at"),
        Index("ix_login_failures_address", "address", "failed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The e-mail tried, normalised (lower case, NFKC), whether an account has it or not.
    email: Mapped[str] = mapped_column(String(MAX_LENGTHS["email"]))
    address: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(db.Model):
    """What an organizer (or the system) did that changes or reveals data beyond one
    registration: settings changed, exports (with e-mails or not), erasures, purges, accounts
    managed. Shown to admins; the security log has the same lines."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Who (None: the command line or the system, or an account since deleted).
    organizer_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizers.id", ondelete="SET NULL")
    )
    #: What, e.g. "settings.update", "export.badges", "attendee.erase", "purge".
    action: Mapped[str] = mapped_column(String(64))
    #: What it was done to, in words (an event's slug, an attendee's code ...).
    target: Mapped[str] = mapped_column(String(200), default="")
    #: The details: fields changed ({field: [old, new]}), filters, counts; never a secret.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    address: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organizer: Mapped[Organizer | None] = relationship()


class AttendeeChange(db.Model):
    """One change to a registration, kept for the audit trail: who, when, what, old and new."""

    __tablename__ = "attendee_changes"
    __table_args__ = (Index("ix_attendee_changes_attendee", "attendee_id", "changed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"))
    #: The organizer who made the change; None when the attendee or the system made it.
    organizer_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizers.id", ondelete="SET NULL")
    )
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: What was done, e.g. "update", "cancel", "restore", "promote", "check_in", "undo_check_in".
    action: Mapped[str] = mapped_column(String(32))
    #: {field: [old, new]} for every field whose value changed.
    changes: Mapped[dict[str, list[Any]]] = mapped_column(JSON, default=dict)

    organizer: Mapped[Organizer | None] = relationship()


#: What a scan at the door found (checkin.py words each for the person at the door).
SCAN_CHECKED_IN = "checked_in"
SCAN_ALREADY = "already"
SCAN_UNKNOWN = "unknown"
SCAN_CANCELLED = "cancelled"
SCAN_WAITLISTED = "waitlisted"
SCAN_INVALID = "invalid"
#: At the door of a program item with places: no place there.
SCAN_NOT_SIGNED_UP = "not_signed_up"
SCAN_OUTCOMES = (
    SCAN_CHECKED_IN,
    SCAN_ALREADY,
    SCAN_UNKNOWN,
    SCAN_CANCELLED,
    SCAN_WAITLISTED,
    SCAN_INVALID,
    SCAN_NOT_SIGNED_UP,
)


class CheckInScan(db.Model):
    """One scan (or typed code) at the door and what it found: the page that follows a scan
    shows it from here, and the rows are the door's log."""

    __tablename__ = "check_in_scans"
    __table_args__ = (CheckConstraint(_in("outcome", SCAN_OUTCOMES), name="outcome_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    #: Who scanned; None when the organizer account is gone.
    organizer_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizers.id", ondelete="SET NULL")
    )
    #: The registration the code belongs to, if any.
    attendee_id: Mapped[int | None] = mapped_column(ForeignKey("attendees.id", ondelete="SET NULL"))
    #: The code found in what was scanned, in its canonical form; None when there was none.
    code: Mapped[str | None] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(16))
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The program item at whose door it was scanned (None: the registration desk).
    item_id: Mapped[int | None] = mapped_column(ForeignKey("program_items.id", ondelete="SET NULL"))

    attendee: Mapped[Attendee | None] = relationship()
    item: Mapped[ProgramItem | None] = relationship()


#: States of a queued e-mail.
MAIL_PENDING = "pending"
MAIL_SENT = "sent"
MAIL_FAILED = "failed"
MAIL_STATUSES = (MAIL_PENDING, MAIL_SENT, MAIL_FAILED)


class OutboxMessage(db.Model):
    """An e-mail queued in the same transaction as the change that causes it (an outbox).

    ``necreg mail-worker`` delivers pending messages and records each attempt.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint(_in("status", MAIL_STATUSES), name="status_known"),
        Index("ix_outbox_messages_due", "status", "next_attempt_at"),
        # A person's mail, found when their data is exported or erased (privacy.py).
        Index("ix_outbox_messages_attendee", "attendee_id"),
        # The outbox page's search by part of the recipient's address (migration 0021).
        Index(
            "ix_outbox_messages_to_address_trgm",
            "to_address",
            postgresql_using="gin",
            postgresql_ops={"to_address": "public.gin_trgm_ops"},
        ).ddl_if(dialect="postgresql", callable_=_trigrams_in_public),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    attendee_id: Mapped[int | None] = mapped_column(ForeignKey("attendees.id", ondelete="SET NULL"))
    #: What the message is: "confirmation", "waitlisted", "promoted", "cancelled", "link".
    kind: Mapped[str] = mapped_column(String(32))
    to_address: Mapped[str] = mapped_column(String(MAX_LENGTHS["email"]))
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text, default="")
    #: [{"filename": ..., "content_type": ..., "content": text}, ...]
    attachments: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=MAIL_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: A worker that claims the message sets this; another worker leaves it alone until then.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    #: The organizers' message this e-mail is one of (None: a message of the system).
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizer_messages.id", ondelete="SET NULL"), index=True
    )
    #: More header fields, e.g. {"List-Unsubscribe": ..., "List-Unsubscribe-Post": ...}.
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)


class Price(db.Model):
    """A registration fee of an event: the first price (by ``position``) whose conditions
    match the registrant and whose ``until`` has not passed applies (an early-bird tier ends
    at its ``until``). Amounts are whole minor units of the event's currency."""

    __tablename__ = "prices"
    __table_args__ = (CheckConstraint("amount >= 0", name="amount_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(PRICE_NAME_LENGTH))
    amount: Mapped[int] = mapped_column(Integer)
    #: For these roles only (empty: every role; ``guest`` prices companions).
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: For trainees and early-career investigators only (True), for the others (False), or
    #: for both (None).
    early_career: Mapped[bool | None] = mapped_column(Boolean)
    #: For one attendance (in_person, virtual) only, or for both (None).
    attendance: Mapped[str | None] = mapped_column(String(16))
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DiscountCode(db.Model):
    """A code that lowers the fee: by a percentage (100: free) or by a fixed amount; used at
    most ``max_uses`` times (counted under the code's own row lock), until ``expires_at``,
    by the ``roles`` named (empty: anyone); ``bypass_caps``: a place even when full."""

    __tablename__ = "discount_codes"
    __table_args__ = (
        Index("uq_discount_codes_event_code", "event_id", "code", unique=True),
        CheckConstraint("(percent IS NULL) <> (amount IS NULL)", name="one_kind"),
        CheckConstraint("percent IS NULL OR percent BETWEEN 1 AND 100", name="percent_range"),
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount_not_negative"),
        CheckConstraint("uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)", name="uses"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(CODE_LENGTH_MAX))
    percent: Mapped[int | None] = mapped_column(Integer)
    #: The amount taken off, in minor units of the event's currency.
    amount: Mapped[int | None] = mapped_column(Integer)
    max_uses: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: A place even when the event or the role is full (faculty, speakers): the cap is
    #: passed by as many places as such codes take, and the next places freed go to
    #: bring it back, not to the waiting list.
    bypass_caps: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CodeUse(db.Model):
    """A registration that used a code (a use is not given back when it is cancelled)."""

    __tablename__ = "code_uses"
    __table_args__ = (Index("ix_code_uses_code", "code_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("discount_codes.id", ondelete="CASCADE"))
    attendee_id: Mapped[int] = mapped_column(
        ForeignKey("attendees.id", ondelete="CASCADE"), unique=True
    )
    used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


#: How a payment was made.
PAYMENT_METHODS: dict[str, str] = {"offline": "Bank transfer, cheque or cash", "card": "Card"}
#: Longest payment reference (a bank transfer's, a cheque number ...).
REFERENCE_LENGTH = 200


class Payment(db.Model):
    """Money received for a registration, with its receipt: numbered without gaps per event,
    the number taken in the same transaction as the payment (ReceiptCounter)."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(_in("method", PAYMENT_METHODS), name="method_known"),
        Index("uq_payments_event_receipt", "event_id", "receipt_number", unique=True),
        Index("ix_payments_attendee", "attendee_id", "paid_at"),
        # A card payment is its PaymentIntent: recorded once, however often it is announced.
        Index(
            "uq_payments_card_reference",
            "reference",
            unique=True,
            sqlite_where=text("method = 'card'"),
            postgresql_where=text("method = 'card'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="RESTRICT"))
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="RESTRICT"))
    #: In minor units of ``currency`` (the event's when it was paid).
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(REFERENCE_LENGTH), default="")
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    receipt_number: Mapped[int] = mapped_column(Integer)
    #: The organizer who recorded it (None: recorded by the payment provider).
    organizer_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizers.id", ondelete="SET NULL")
    )
    #: When the money was given back (None: kept), and the refund's reference.
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refund_reference: Mapped[str] = mapped_column(String(REFERENCE_LENGTH), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReceiptCounter(db.Model):
    """The last receipt number of an event: a payment takes the next under this row's lock,
    in its own transaction, so numbers run 1, 2, 3 ... with no gap and no repeat."""

    __tablename__ = "receipt_counters"

    event_id: Mapped[int] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class StripeEvent(db.Model):
    """A webhook event of Stripe already processed: its id, kept so that an event delivered
    again (Stripe retries until answered) changes nothing the second time."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


#: Kinds of program items; a ``workshop`` (or any item with a ``capacity``) is signed up for.
PROGRAM_KINDS: dict[str, str] = {
    "plenary": "Plenary",
    "session": "Session",
    "workshop": "Workshop",
}
#: Sign-up statuses of a program item with places.
SIGNUP_STATUSES = (STATUS_CONFIRMED, STATUS_WAITLISTED, STATUS_CANCELLED)
PROGRAM_MAX_LENGTHS = {"key": 40, "title": 200, "room": 100}


class ProgramItem(db.Model):
    """A plenary, session or workshop of an event's program, at a time and in a room, with
    the CME/CE credits it earns; with a ``capacity``, people sign up for it (a waiting list
    of its own when full). An item no longer in the event file but signed up for is
    *retired* and its sign-ups kept."""

    __tablename__ = "program_items"
    __table_args__ = (
        CheckConstraint(_in("kind", PROGRAM_KINDS), name="kind_known"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("capacity IS NULL OR capacity >= 1", name="capacity_positive"),
        CheckConstraint("credits >= 0", name="credits_not_negative"),
        Index("uq_program_items_event_key", "event_id", "key", unique=True),
        Index("ix_program_items_event_start", "event_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(PROGRAM_MAX_LENGTHS["key"]))
    title: Mapped[str] = mapped_column(String(PROGRAM_MAX_LENGTHS["title"]))
    kind: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    room: Mapped[str] = mapped_column(String(PROGRAM_MAX_LENGTHS["room"]), default="")
    #: Places (None: no sign-up, everyone may come).
    capacity: Mapped[int | None] = mapped_column(Integer)
    #: CME/CE credit hours, in hundredths (150: 1.5 hours): exact, never a float.
    credits: Mapped[int] = mapped_column(Integer, default=0)
    speakers: Mapped[list[str]] = mapped_column(JSON, default=list)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def signs_up(self) -> bool:
        return self.capacity is not None


class ProgramSignup(db.Model):
    """An attendee's place (or place in line) at a program item with places."""

    __tablename__ = "program_signups"
    __table_args__ = (
        CheckConstraint(_in("status", SIGNUP_STATUSES), name="status_known"),
        Index("uq_program_signups_item_attendee", "item_id", "attendee_id", unique=True),
        Index("ix_program_signups_item_status", "item_id", "status", "created_at"),
        Index("ix_program_signups_attendee", "attendee_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("program_items.id", ondelete="CASCADE"))
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProgramAttendance(db.Model):
    """A person checked in at a program item's door: what their certificate lists."""

    __tablename__ = "program_attendance"
    __table_args__ = (
        Index("uq_program_attendance_item_attendee", "item_id", "attendee_id", unique=True),
        Index("ix_program_attendance_attendee", "attendee_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("program_items.id", ondelete="CASCADE"))
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"))
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Who scanned (None: the account is gone).
    organizer_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizers.id", ondelete="SET NULL")
    )


class Certificate(db.Model):
    """A certificate of attendance given to an attendee, with the code that verifies it
    (printed and in its QR code) and the credits it counts."""

    __tablename__ = "certificates"
    __table_args__ = (
        Index("uq_certificates_attendee", "attendee_id", unique=True),
        Index("uq_certificates_code", "verification_code", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"))
    verification_code: Mapped[str] = mapped_column(String(20))
    #: Credit hours in hundredths, as of the last download.
    credits: Mapped[int] = mapped_column(Integer, default=0)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


#: What organizers decide on a support request.
SUPPORT_DECISIONS: dict[str, str] = {
    "award": "Travel award",
    "waiver": "Fee waiver",
    "decline": "Declined",
}
#: Longest statement of an applicant, in characters.
SUPPORT_STATEMENT_MAX = 2000


class SupportRequest(db.Model):
    """A registrant's request for support to come (a travel grant or a fee waiver), with
    their statement, the reviewers' score and the decision."""

    __tablename__ = "support_requests"
    __table_args__ = (
        CheckConstraint(
            "decision = '' OR " + _in("decision", SUPPORT_DECISIONS), name="decision_known"
        ),
        CheckConstraint("award >= 0", name="award_not_negative"),
        Index("uq_support_requests_attendee", "attendee_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    attendee_id: Mapped[int] = mapped_column(ForeignKey("attendees.id", ondelete="CASCADE"))
    statement: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: 0 to 10, given by reviewers (None: not scored).
    score: Mapped[int | None] = mapped_column(Integer)
    #: SUPPORT_DECISIONS, or "" while undecided.
    decision: Mapped[str] = mapped_column(String(16), default="")
    #: An award's amount, in minor units of the event's currency (0 otherwise).
    award: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    organizer_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizers.id", ondelete="SET NULL")
    )


#: Longest subject and body of an organizers' message, in characters.
MESSAGE_SUBJECT_MAX = 200
MESSAGE_BODY_MAX = 20_000


class OrganizerMessage(db.Model):
    """A message organizers wrote to the attendees they chose: its text, who they were (the
    attendee-list filters), how many, who sent it and when. The log of messages sent, and
    their audit entry; each recipient's e-mail is an outbox row pointing here."""

    __tablename__ = "organizer_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(MESSAGE_SUBJECT_MAX))
    #: Markdown with placeholders ({first_name}, {last_name}, {code}, {link}).
    body: Mapped[str] = mapped_column(Text)
    #: The attendee-list filters that chose the recipients, as query arguments.
    recipients_filter: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    #: How many were chosen, and how many of those had unsubscribed (not sent to).
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    unsubscribed: Mapped[int] = mapped_column(Integer, default=0)
    organizer_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizers.id", ondelete="SET NULL")
    )
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organizer: Mapped[Organizer | None] = relationship()


class MailOptOut(db.Model):
    """An address that asked for no more organizers' messages (one click in any of them).
    Messages about the person's own registration are still sent."""

    __tablename__ = "mail_opt_outs"

    #: The address in lower case.
    email: Mapped[str] = mapped_column(String(MAX_LENGTHS["email"]), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InterestSignup(db.Model):
    """Someone who asked to hear about the next symposium: counted once they confirm their
    address (double opt-in); unsubscribing keeps the row, so they are never mailed again."""

    __tablename__ = "interest_signups"
    __table_args__ = (
        _length_check("email", 3),
        Index("uq_interest_signups_email", func.lower(text("email")), unique=True),
        Index("uq_interest_signups_token", "token", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(MAX_LENGTHS["email"]))
    name: Mapped[str] = mapped_column(String(MAX_LENGTHS["first_name"] + MAX_LENGTHS["last_name"]))
    #: The secret in the confirmation and unsubscribe links.
    token: Mapped[str] = mapped_column(String(64), default=new_token)
    #: The consent given, and the version of its text.
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    consent_version: Mapped[str] = mapped_column(
        String(EVENT_MAX_LENGTHS["consent_version"]), default=""
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InterestNotice(db.Model):
    """That an interest signup was told an edition opened: at most once per edition."""

    __tablename__ = "interest_notices"

    signup_id: Mapped[int] = mapped_column(
        ForeignKey("interest_signups.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[int] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


#: States of a webhook delivery (as those of an e-mail).
WEBHOOK_STATUSES = MAIL_STATUSES


class WebhookDelivery(db.Model):
    """One event told to one receiver (setting WEBHOOKS), queued in the transaction of the
    change and delivered, with retries, by the mail worker. ``id`` is the delivery id the
    receiver sees: a repeated delivery carries the same one."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(_in("status", WEBHOOK_STATUSES), name="status_known"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The receiver's address, as WEBHOOKS names it (its secret stays in the settings).
    url: Mapped[str] = mapped_column(String(500))
    #: e.g. "registration.created".
    event_type: Mapped[str] = mapped_column(String(64))
    #: The JSON body, exactly as it is sent (and signed).
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=MAIL_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The receiver's last HTTP status (None: no answer), and what went wrong.
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text, default="")


class ApiToken(db.Model):
    """A token that organizers' tools read the API with (``necreg create-api-token``). Only
    its SHA-256 is kept; the token itself is shown once."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint("length(name) BETWEEN 1 AND 100", name="name_length"),
        Index("uq_api_tokens_name", "name", unique=True),
        Index("uq_api_tokens_hash", "token_hash", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    #: Hex SHA-256 of the token.
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
