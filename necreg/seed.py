"""Synthetic registrations for demos and benchmarks (``necreg seed-demo``).

Rows are built as plain dicts and inserted in batches with one executemany per batch
(``session.execute(insert(Attendee), rows)``), which makes 100,000 registrations in seconds.
Capacity is respected as registration would: confirmed while there is room, else waitlisted,
a household as one.
"""

from __future__ import annotations

import random
import secrets
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from .counters import PLACE_KINDS, bulk_load, places_from, tallied
from .folding import fold, search_text
from .models import (
    ATTENDEE_ROLES,
    GUEST_ROLE,
    IN_PERSON,
    STATUS_CANCELLED,
    STATUS_CONFIRMED,
    STATUS_WAITLISTED,
    VIRTUAL,
    Answer,
    Attendee,
    Event,
    default_badge_name,
    new_code,
    utcnow,
)
from .questions import OTHER, AnswerValue, QuestionSpec, answer_rows, event_questions
from .registration import lock_event, takes_place

#: Shares of the four roles among registrants.
ROLE_SHARES = {"clinician": 0.46, "scientist": 0.27, "family": 0.17, "advocate": 0.10}
CANCELLED_SHARE = 0.04
EARLY_CAREER_SHARE = {"clinician": 0.35, "scientist": 0.45, "family": 0.0, "advocate": 0.05}
#: Registrations are spread over this many days before the registration deadline.
SPREAD_DAYS = 180

FIRST_NAMES = (  # noqa: SIM905 - easier to read and extend as text
    "Emma Liam Olivia Noah Ava Mateo Sofía Lucas Mia Elijah Zoë Aarav Ananya Wei Mei Hiroshi "
    "Yuki Fatima Omar Amara Kwame Chidi Ngozi Ingrid Lars Søren Anaïs Léa Chloé Étienne Giulia "
    "Marco Lucía Diego Joaquín María José Ana João Inês Nadia Ivan Olga Priya Rohan Sara David "
    "Hannah Jonas Lena Felix Ayşe Mehmet Thandiwe Sipho Aroha Nikau Camila Valentina Benjamin "
    "Charlotte Amelia James Henry Grace Daniel Rachel Samuel Leah Aisha Yusuf Layla Tomás Björn"
).split()
LAST_NAMES = (  # noqa: SIM905
    "Smith Johnson Williams Brown Jones García Martínez Rodríguez López Hernández Müller Schmidt "
    "Schneider Fischer Weber Rossi Russo Bianchi Dubois Lefèvre Moreau Nguyen Tran Kim Lee Park "
    "Wang Li Zhang Chen Liu Tanaka Suzuki Sato Patel Sharma Singh Gupta Khan Ahmed Okafor "
    "Adeyemi Mensah Nkosi Dlamini Kowalski Nowak Novák Horváth Jensen Nielsen Hansen Johansson "
    "Andersson Virtanen O'Brien Murphy Kelly Silva Santos Oliveira Pereira Costa Yılmaz Kaya "
    "Cohen Levi Haddad Ivanova Petrov Popescu Papadopoulos Núñez Søndergaard Walsh Thompson"
).split()
INSTITUTIONS = (
    ("Cincinnati Children's", "US"), ("UNC Children's", "US"), ("Boston Children's Hospital", "US"),
    ("Children's Hospital of Philadelphia", "US"), ("Texas Children's Hospital", "US"),
    ("Lurie Children's Hospital of Chicago", "US"), ("Johns Hopkins Children's Center", "US"),
    ("Stanford Medicine Children's Health", "US"), ("Nationwide Children's Hospital", "US"),
    ("Seattle Children's", "US"), ("UCSF Benioff Children's Hospitals", "US"),
    ("Children's Mercy Kansas City", "US"), ("University of Pittsburgh", "US"),
    ("Washington University in St. Louis", "US"), ("NEC Society", "US"),
    ("Mayo Clinic", "US"), ("Yale School of Medicine", "US"), ("Emory University", "US"),
    ("The Hospital for Sick Children", "CA"), ("McGill University Health Centre", "CA"),
    ("CHU Sainte-Justine", "CA"), ("Great Ormond Street Hospital", "GB"),
    ("Imperial College London", "GB"), ("Newcastle University", "GB"),
    ("University of Oxford", "GB"), ("Rotunda Hospital", "IE"),
    ("Charité – Universitätsmedizin Berlin", "DE"), ("Universitätsklinikum Tübingen", "DE"),
    ("Hôpital Necker–Enfants malades", "FR"), ("Hôpital Robert-Debré", "FR"),
    ("Karolinska Institutet", "SE"), ("Rigshospitalet", "DK"), ("Oslo universitetssykehus", "NO"),
    ("Erasmus MC Sophia", "NL"), ("Amsterdam UMC", "NL"), ("UZ Leuven", "BE"),
    ("Ospedale Pediatrico Bambino Gesù", "IT"), ("Hospital Sant Joan de Déu", "ES"),
    ("Hospital Universitario La Paz", "ES"), ("Centro Hospitalar Universitário do Porto", "PT"),
    ("Universitäts-Kinderspital Zürich", "CH"), ("Medizinische Universität Wien", "AT"),
    ("Uniwersytet Medyczny w Warszawie", "PL"), ("Hospital Israelita Albert Einstein", "BR"),
    ("Universidade de São Paulo", "BR"), ("Hospital Italiano de Buenos Aires", "AR"),
    ("Pontificia Universidad Católica de Chile", "CL"), ("Hospital Infantil de México", "MX"),
    ("Royal Children's Hospital Melbourne", "AU"), ("Murdoch Children's Research Institute", "AU"),
    ("Starship Children's Hospital", "NZ"), ("Tokyo Medical and Dental University", "JP"),
    ("Seoul National University Hospital", "KR"), ("Fudan University Children's Hospital", "CN"),
    ("KK Women's and Children's Hospital", "SG"), ("All India Institute of Medical Sciences", "IN"),
    ("Aga Khan University", "PK"), ("Red Cross War Memorial Children's Hospital", "ZA"),
    ("University of Nairobi", "KE"), ("Lagos University Teaching Hospital", "NG"),
    ("Korle Bu Teaching Hospital", "GH"), ("Hacettepe Üniversitesi", "TR"),
    ("Sheba Medical Center", "IL"), ("Sidra Medicine", "QA"),
)  # fmt: skip
#: Family members and advocates come without an institution more often than not.
NO_INSTITUTION_SHARE = {"clinician": 0.02, "scientist": 0.02, "family": 0.7, "advocate": 0.4}
DOMAINS = ("example.org", "example.com", "example.net")


def _codes(rng: random.Random, prefix: str, taken: set[str]) -> Callable[[], str]:
    def draw() -> str:
        while True:
            code = new_code(prefix, rng)
            if code not in taken:
                taken.add(code)
                return code

    return draw


#: Where the event allows companions: the share of patient-family registrants who bring
#: some (one to max_guests, mostly one or two), and the companions' age bands.
PARTY_SHARE = 0.4
COMPANION_BANDS = {"child": 0.6, "infant": 0.25, "adult": 0.15}
#: Where the event is also online: the share of registrants who attend online.
VIRTUAL_SHARE = 0.15
#: Shares of registrants who agree to photos, and to appear on the attendee list.
PHOTO_CONSENT_SHARE = 0.85
LIST_CONSENT_SHARE = 0.6


class _Places:
    """Places taken while seeding, as the caps count them: in person in total and per role,
    and online."""

    def __init__(self, session: Session, event: Event) -> None:
        self.event = event
        taken = places_from(tallied(session, event.id, PLACE_KINDS))
        self.by_role = Counter({role: taken.taken_in_person_of(role) for role in ATTENDEE_ROLES})
        self.in_person = taken.taken_in_person
        self.virtual = taken.taken_virtual

    def take(self, role: str, attendance: str, places: int) -> bool:
        """Take ``places`` for a party whose lead has ``role``, if they all fit."""
        event = self.event
        if attendance == VIRTUAL:
            if (
                event.virtual_capacity is not None
                and self.virtual + places > event.virtual_capacity
            ):
                return False
            self.virtual += places
            return True
        if event.capacity is not None and self.in_person + places > event.capacity:
            return False
        role_cap = (event.capacity_by_role or {}).get(role)
        if role_cap is not None and self.by_role[role] + 1 > role_cap:
            return False
        self.in_person += places
        self.by_role[role] += 1
        self.by_role[GUEST_ROLE] += places - 1
        return True


def _companion_bands(event: Event, role: str, rng: random.Random) -> list[str]:
    """The age bands of the companions a registrant of ``role`` brings (often none)."""
    if not event.max_guests or role != "family" or rng.random() >= PARTY_SHARE:
        return []
    size = min(event.max_guests, rng.choice((1, 1, 2, 2, 3)))
    bands, weights = list(COMPANION_BANDS), list(COMPANION_BANDS.values())
    return rng.choices(bands, weights, k=size)


def seed_demo(
    session: Session,
    event: Event,
    count: int,
    *,
    code_prefix: str,
    batch_size: int = 5000,
    seed: int | None = None,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> int:
    """Add ``count`` synthetic registrations to ``event``, with their companions, consents and
    answers; return how many registrations were added (companions not counted).

    ``progress`` is called with the number of rows of each batch as it is inserted.
    """
    if count < 0:
        raise ValueError("the number of attendees cannot be negative")
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets (tokens use secrets)
    now = now or utcnow()
    # Registrations come in before the registration deadline, else before the event starts.
    deadline = event.registration_closes_at or datetime.combine(
        event.starts_on, datetime.min.time(), tzinfo=UTC
    )
    end = min(now, deadline)
    lock_event(session, event)
    places = _Places(session, event)
    taken = set(session.execute(select(Attendee.code)).scalars())
    draw_code = _codes(rng, code_prefix, taken)
    run = secrets.token_hex(3)
    roles, weights = list(ROLE_SHARES), list(ROLE_SHARES.values())
    # Registration times, oldest first, so the waiting list forms in the order people came.
    offsets = sorted((rng.random() ** 0.6 for _ in range(count)), reverse=True)
    rows: list[dict[str, Any]] = []
    parties: list[tuple[dict[str, Any], list[str]]] = []
    added = 0
    before = session.execute(select(func.coalesce(func.max(Attendee.id), 0))).scalar_one()
    with bulk_load(session, event):
        for n, offset in enumerate(offsets, start=1):
            role = rng.choices(roles, weights)[0]
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            if rng.random() < NO_INSTITUTION_SHARE[role]:
                institution, country = "", rng.choice(INSTITUTIONS)[1]
            else:
                institution, country = rng.choice(INSTITUTIONS)
            created = end - timedelta(days=SPREAD_DAYS * offset, seconds=rng.randrange(86_400))
            attendance = VIRTUAL if event.virtual and rng.random() < VIRTUAL_SHARE else IN_PERSON
            bands = _companion_bands(event, role, rng)
            seats = 1 + sum(takes_place(event, band) for band in bands)
            if rng.random() < CANCELLED_SHARE:
                status = STATUS_CANCELLED
            elif places.take(role, attendance, seats):
                status = STATUS_CONFIRMED
            else:
                status = STATUS_WAITLISTED
            local = fold(f"{first}.{last}").replace("'", "").encode("ascii", "ignore").decode()
            photos = rng.random() < PHOTO_CONSENT_SHARE
            listed = rng.random() < LIST_CONSENT_SHARE
            cancelled_at = (
                min(created + timedelta(days=1), end) if status == STATUS_CANCELLED else None
            )
            row = {
                **_person(event, draw_code(), first, last, created, status, cancelled_at),
                "role": role,
                "email": f"{local}.{run}-{n}@{rng.choice(DOMAINS)}",
                "institution": institution,
                "country": country,
                "early_career": rng.random() < EARLY_CAREER_SHARE[role],
                "attendance": attendance,
                "photo_consent_at": created if photos else None,
                "photo_consent_version": event.consent_version if photos else None,
                "list_consent_at": created if listed else None,
                "list_consent_version": event.consent_version if listed else None,
            }
            # Given here, not left to the column's per-row default, so the rows go to the
            # database in multi-row INSERTs.
            row["search_text"] = search_text(row)
            rows.append(row)
            if bands:
                parties.append((row, bands))
            if len(rows) >= batch_size:
                added += _insert(session, rows, progress)
                rows = []
        added += _insert(session, rows, progress)
        if parties:
            _seed_companions(session, event, parties, before, draw_code, rng, batch_size)
        questions = event_questions(session, event.id)
        if questions:
            new_ids = session.execute(
                select(Attendee.id, Attendee.role)
                .where(
                    Attendee.event_id == event.id,
                    Attendee.id > before,
                    Attendee.party_id.is_(None),
                )
                .order_by(Attendee.id)
            ).all()
            _seed_answers(session, questions, new_ids, rng, batch_size)
    if session.get_bind().dialect.name == "postgresql":
        # Fresh statistics after a bulk load, or the planner keeps guessing a tiny table.
        session.execute(text("ANALYZE attendees"))
        session.execute(text("ANALYZE answers"))
    return added


def _person(
    event: Event,
    code: str,
    first: str,
    last: str,
    created: datetime,
    status: str,
    cancelled_at: datetime | None,
) -> dict[str, Any]:
    """The columns every seeded attendee row has, lead or companion."""
    return {
        "event_id": event.id,
        "code": code,
        "token": secrets.token_urlsafe(32),
        "status": status,
        "first_name": first,
        "last_name": last,
        "badge_name": default_badge_name(first, last),
        "consent_at": created,
        "consent_version": event.consent_version,
        "created_at": created,
        "updated_at": created,
        "cancelled_at": cancelled_at,
    }


def _insert(
    session: Session, rows: list[dict[str, Any]], progress: Callable[[int], None] | None
) -> int:
    if rows:
        session.execute(insert(Attendee), rows)
        if progress:
            progress(len(rows))
    return len(rows)


def _seed_companions(
    session: Session,
    event: Event,
    parties: list[tuple[dict[str, Any], list[str]]],
    before: int,
    draw_code: Callable[[], str],
    rng: random.Random,
    batch_size: int,
) -> None:
    """The companions of the seeded ``parties`` ((lead row, age bands)): in their lead's
    status, attendance and photo consent, with the lead's last name."""
    ids = dict(
        session.execute(
            select(Attendee.code, Attendee.id).where(
                Attendee.event_id == event.id, Attendee.id > before
            )
        ).all()
    )
    rows: list[dict[str, Any]] = []
    for lead, bands in parties:
        for band in bands:
            first = rng.choice(FIRST_NAMES)
            row = {
                **_person(
                    event, draw_code(), first, lead["last_name"], lead["created_at"],
                    lead["status"], lead["cancelled_at"],
                ),
                "role": GUEST_ROLE,
                "email": "",
                "institution": "",
                "country": lead["country"],
                "early_career": False,
                "party_id": ids[lead["code"]],
                "age_band": band,
                "takes_place": takes_place(event, band),
                "attendance": lead["attendance"],
                "photo_consent_at": lead["photo_consent_at"],
                "photo_consent_version": lead["photo_consent_version"],
            }  # fmt: skip
            row["search_text"] = search_text(row)
            rows.append(row)
            if len(rows) >= batch_size:
                _insert(session, rows, None)
                rows = []
    _insert(session, rows, None)


#: Share of registrants who leave an optional question unanswered, and who take the first
#: choice of a question (the common answer: "None" of dietary needs).
SKIPPED_SHARE = 0.3
FIRST_CHOICE_SHARE = 0.6
OTHER_TEXTS = ("No nuts", "Shellfish allergy", "Low FODMAP", "A seat near the door")


def _seed_answer(question: QuestionSpec, rng: random.Random) -> tuple[AnswerValue, str | None]:
    """One registrant's made-up answer to ``question`` and the text of its "Other", if any."""
    if not question.is_choice:
        return rng.choice(OTHER_TEXTS), None
    values = [value for value, _label in question.options]
    if question.type == "multi":
        chosen = tuple(rng.sample(values, k=min(len(values), rng.choice((1, 1, 1, 2)))))
    elif rng.random() < FIRST_CHOICE_SHARE:
        chosen = (values[0],)
    else:
        chosen = (rng.choice(values),)
    detail = rng.choice(OTHER_TEXTS) if OTHER in chosen else None
    if question.type == "yes_no":
        return chosen == ("yes",), None
    return (chosen if question.type == "multi" else chosen[0]), detail


def _seed_answers(
    session: Session,
    questions: tuple[QuestionSpec, ...],
    attendees: list[Any],
    rng: random.Random,
    batch_size: int,
) -> None:
    """Made-up answers of ``attendees`` ((id, role) rows) to the questions asked of them."""
    rows: list[dict[str, Any]] = []
    for attendee_id, role in attendees:
        for question in questions:
            if not question.asked_of(role):
                continue
            if not question.required and rng.random() < SKIPPED_SHARE:
                continue
            value, detail = _seed_answer(question, rng)
            for row in answer_rows(question, value, detail):
                rows.append({"attendee_id": attendee_id, "question_id": question.id, **row})
        if len(rows) >= batch_size:
            session.execute(insert(Answer), rows)
            rows = []
    if rows:
        session.execute(insert(Answer), rows)
