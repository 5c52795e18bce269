"""Exact amounts: POS decimal amounts <-> the minor units carried by CB, per ISO 4217."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from iso4217 import Currency

MAX_MINOR_UNITS = 999_999_999_999  # CB holds at most 12 digits
_BY_NUMBER = {str(currency.number).zfill(3): currency for currency in Currency}
PAYABLE_NUMBERS = frozenset(number for number, currency in _BY_NUMBER.items() if currency.exponent is not None)


class AmountError(ValueError):
    pass


def currency_from_code(code: str) -> Currency:
    """An ISO 4217 currency from its letters (EUR) or its number (978), any case."""
    text = code.strip().upper()
    currency = _BY_NUMBER.get(text.zfill(3)) if text.isdigit() else Currency.__members__.get(text)
    if currency is None:
        raise AmountError(f"unknown currency {code!r}: give an ISO 4217 code such as EUR, USD, XPF or 978")
    if currency.exponent is None:
        raise AmountError(f"currency {currency.code} has no minor unit and cannot be paid")
    return currency


def currency_from_number(number: str) -> Currency | None:
    return _BY_NUMBER.get(number)


def currency_number(currency: Currency) -> str:
    return str(currency.number).zfill(3)


def parse_amount(text: str) -> Decimal:
    """A decimal amount as a person types it: 112.45, -5, 1,50 (comma as decimal separator)."""
    cleaned = text.strip()
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise AmountError(f"amount {text!r} is not a number") from None
    if not amount.is_finite():
        raise AmountError(f"amount {text!r} is not a number")
    return amount


def to_minor_units(amount: Decimal, currency: Currency) -> int:
    """The absolute amount in minor units; refuses zero, sub-unit precision and more than 12 digits."""
    scaled = abs(amount).scaleb(currency.exponent)
    if scaled != scaled.to_integral_value():
        raise AmountError(f"amount {amount} has more decimals than {currency.code} allows ({currency.exponent})")
    units = int(scaled)
    if units == 0:
        raise AmountError("amount must not be zero")
    if units > MAX_MINOR_UNITS:
        limit = Decimal(MAX_MINOR_UNITS).scaleb(-currency.exponent)
        raise AmountError(f"amount {amount} exceeds the protocol maximum of {limit} {currency.code}")
    return units


def encode_amount(units: int) -> str:
    """CB value: digits, at least two (5 cents -> '05')."""
    return f"{units:02d}"


def in_currency_units(units: int, currency: Currency) -> Decimal:
    """Minor units as the amount in currency units (1245 EUR cents -> 12.45); the currency has a minor unit."""
    return Decimal(units).scaleb(-currency.exponent)


def format_minor_units(units: int, currency: Currency | None) -> str:
    if currency is None:
        return str(units)
    if currency.exponent is None:  # XXX, XAU...: no minor unit, nothing to scale
        return f"{units} {currency.code}"
    return f"{in_currency_units(units, currency):f} {currency.code}"


def format_ticket_amount(units: int, currency: Currency | None) -> str:
    """As French tickets print it: '112,45 EUR'."""
    return format_minor_units(units, currency).replace(".", ",")
