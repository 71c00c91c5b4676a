"""Money: amounts are ``Decimal`` in Python and whole minor units (cents) in the database, in
the event's ISO 4217 currency; never a float.

An amount is read from text (the event file, the settings and codes forms) with at most as
many decimals as the currency has, and written the way a receipt shows it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import pycountry

#: ISO 4217 currencies without minor units, and with three (all others have two).
ZERO_DECIMALS = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()  # noqa: SIM905
)
THREE_DECIMALS = frozenset("BHD IQD JOD KWD LYD OMR TND".split())  # noqa: SIM905
#: The largest amount accepted, in major units: far beyond any registration fee.
MAX_AMOUNT = Decimal(1_000_000)


class MoneyError(ValueError):
    """An amount or a currency that cannot be used; the message says why."""


def currency_known(code: str) -> bool:
    """Whether ``code`` is an ISO 4217 currency (upper-case, e.g. USD)."""
    return len(code) == 3 and code.isupper() and pycountry.currencies.get(alpha_3=code) is not None


def decimals(currency: str) -> int:
    """How many decimals amounts in ``currency`` have."""
    if currency in ZERO_DECIMALS:
        return 0
    return 3 if currency in THREE_DECIMALS else 2


def parse_amount(text: object, currency: str, *, what: str = "amount") -> Decimal:
    """The amount written in ``text`` (e.g. "450", "225.50"): 0 or more, at most the
    currency's decimals; MoneyError says what is wrong."""
    if isinstance(text, bool) or not isinstance(text, str | int | Decimal):
        raise MoneyError(f'{what} must be written as text, e.g. "450.00"')
    try:
        amount = Decimal(str(text).strip())
    except InvalidOperation:
        raise MoneyError(f"{what} must be a number such as 450.00, not {text!r}") from None
    if not amount.is_finite() or amount < 0:
        raise MoneyError(f"{what} must be 0 or more")
    if amount > MAX_AMOUNT:
        raise MoneyError(f"{what} must be at most {MAX_AMOUNT}")
    places = decimals(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise MoneyError(f"{what} may have at most {places} decimals in {currency}")
    return amount


def to_minor(amount: Decimal, currency: str) -> int:
    """``amount`` in whole minor units (cents), rounded half up."""
    scaled = (amount * (10 ** decimals(currency))).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    """The amount of ``minor`` units, with the currency's decimals."""
    places = decimals(currency)
    return (Decimal(minor) / (10**places)).quantize(Decimal(1).scaleb(-places))


def amount_text(minor: int, currency: str) -> str:
    """An amount as JSON gives it: a decimal string (``"450.00"``), ``"0"`` without a
    currency (an event without fees)."""
    return str(from_minor(minor, currency)) if currency else str(minor)


def format_amount(minor: int, currency: str) -> str:
    """How pages, e-mails and receipts write a sum of money: ``USD 1,450.00``."""
    return f"{currency} {from_minor(minor, currency):,}"


def format_money(minor: int, currency: str) -> str:
    """A fee as pages and e-mails write it: ``USD 1,450.00``; nothing to pay is ``free``."""
    return "free" if minor == 0 else format_amount(minor, currency)
