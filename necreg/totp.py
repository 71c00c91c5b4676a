"""Second factor for organizers: a TOTP authenticator (RFC 6238, through ``pyotp``) and ten
one-time recovery codes.

Enrolment has two steps: ``start_enrolment`` keeps a new secret (shown as a QR code and as
text), ``confirm_enrolment`` turns it on once a first code from the authenticator is right and
gives the recovery codes, shown once and kept only as argon2id hashes. From then on sign-in
asks for a code (``check_code``): the authenticator's, never accepted twice (the last time step
used is kept), or an unused recovery code.

Domain functions: a database session and plain values; they flush, never commit.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime

import pyotp
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from .auth import AccountError, hash_password, verify_password
from .models import Organizer, RecoveryCode, utcnow

#: How many recovery codes an enrolment gives.
RECOVERY_CODES = 10
#: The name an authenticator app shows beside the account.
ISSUER = "NEC Symposium"
#: Time steps either side of now whose code is accepted (clocks drift; 30 s each).
VALID_WINDOW = 1
#: Letters of a recovery code: no 0/O, 1/I/L to misread.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_CODE_GROUP = 5
_AUTHENTICATOR_CODE = re.compile(r"\d{6}")
_RECOVERY_CODE = re.compile(rf"[{_ALPHABET}]{{{2 * _CODE_GROUP}}}")

WRONG_CODE = "That code is not right. Enter the 6-digit code your authenticator shows now."


class TotpError(AccountError):
    """A code or a step the rules refuse; ``str(exc)`` says why."""


def provisioning_uri(secret: str, email: str) -> str:
    """The ``otpauth://`` address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def start_enrolment(session: Session, organizer: Organizer) -> str:
    """Keep a new secret for the organizer (not used at sign-in until confirmed); return it."""
    if organizer.totp_enabled_at is not None:
        raise TotpError("An authenticator is set up already; turn it off first to set up another.")
    organizer.totp_secret = pyotp.random_base32()
    organizer.totp_last_step = None
    session.flush()
    return organizer.totp_secret


def confirm_enrolment(
    session: Session, organizer: Organizer, code: str, *, now: datetime | None = None
) -> list[str]:
    """Turn the authenticator on when ``code`` is its current code; return the recovery
    codes (to show once)."""
    now = now or utcnow()
    if organizer.totp_secret is None or organizer.totp_enabled_at is not None:
        raise TotpError("There is no authenticator waiting to be confirmed; start again.")
    if not _take_step(session, organizer, code, now):
        raise TotpError(WRONG_CODE)
    organizer.totp_enabled_at = now
    codes = new_recovery_codes(session, organizer)
    session.flush()
    return codes


def new_recovery_codes(session: Session, organizer: Organizer) -> list[str]:
    """Replace the organizer's recovery codes with ten new ones; return them (shown once)."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.organizer_id == organizer.id))
    codes = ["".join(secrets.choice(_ALPHABET) for _ in range(2 * _CODE_GROUP))
             for _ in range(RECOVERY_CODES)]  # fmt: skip
    session.add_all(
        RecoveryCode(organizer_id=organizer.id, code_hash=hash_password(code)) for code in codes
    )
    session.flush()
    return [f"{code[:_CODE_GROUP]}-{code[_CODE_GROUP:]}" for code in codes]


def unused_recovery_codes(session: Session, organizer_id: int) -> int:
    return session.execute(
        select(func.count()).where(
            RecoveryCode.organizer_id == organizer_id, RecoveryCode.used_at.is_(None)
        )
    ).scalar_one()


def check_code(
    session: Session, organizer: Organizer, code: str, *, now: datetime | None = None
) -> bool:
    """Whether ``code`` signs the organizer in: the authenticator's current code (each time
    step once) or an unused recovery code (then used up)."""
    if organizer.totp_enabled_at is None or organizer.totp_secret is None:
        return False
    now = now or utcnow()
    cleaned = _cleaned(code)
    if _AUTHENTICATOR_CODE.fullmatch(cleaned):
        return _take_step(session, organizer, cleaned, now)
    if _RECOVERY_CODE.fullmatch(cleaned.upper()):
        return _use_recovery_code(session, organizer, cleaned.upper(), now)
    return False


def disable(
    session: Session, organizer: Organizer, code: str, *, now: datetime | None = None
) -> None:
    """Turn the authenticator off, given a current code (or a recovery code)."""
    if organizer.totp_enabled_at is None:
        # An enrolment never confirmed is simply forgotten.
        organizer.totp_secret = None
    elif not check_code(session, organizer, code, now=now):
        raise TotpError(
            "That code is not right. Enter the code your authenticator shows now, "
            "or one of your recovery codes."
        )
    remove(session, organizer)


def remove(session: Session, organizer: Organizer) -> None:
    """Forget the organizer's authenticator and recovery codes (an administrator resetting a
    lost device, or the owner turning it off)."""
    organizer.totp_secret = None
    organizer.totp_enabled_at = None
    organizer.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.organizer_id == organizer.id))
    session.flush()


def _cleaned(code: str) -> str:
    return "".join(ch for ch in (code or "") if ch not in " -\t")[:64]


def _take_step(session: Session, organizer: Organizer, code: str, now: datetime) -> bool:
    """Accept ``code`` if it is the code of a time step within the window that is later than
    the last one accepted; the step is claimed by a conditional UPDATE, so two requests
    racing with one code cannot both win."""
    code = _cleaned(code)
    if not _AUTHENTICATOR_CODE.fullmatch(code) or organizer.totp_secret is None:
        return False
    totp = pyotp.TOTP(organizer.totp_secret)
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if not secrets.compare_digest(totp.generate_otp(step), code):
            continue
        claimed = session.execute(
            update(Organizer)
            .where(
                Organizer.id == organizer.id,
                or_(Organizer.totp_last_step.is_(None), Organizer.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        ).rowcount
        session.expire(organizer, ["totp_last_step"])
        return claimed == 1
    return False


def _use_recovery_code(session: Session, organizer: Organizer, code: str, now: datetime) -> bool:
    unused = session.execute(
        select(RecoveryCode).where(
            RecoveryCode.organizer_id == organizer.id, RecoveryCode.used_at.is_(None)
        )
    ).scalars()
    for row in unused:
        if verify_password(row.code_hash, code):
            used = session.execute(
                update(RecoveryCode)
                .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                .values(used_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            return used == 1
    return False
