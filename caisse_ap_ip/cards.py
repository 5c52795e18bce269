"""Payment cards of the simulator: what each -pt/--payment-type answers, and card numbers that look real."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Card:
    application: str  # CC
    read_mode: str  # CI
    aid: str  # AI
    pan_prefixes: tuple[str, ...]
    pan_length: int
    scheme: str  # as printed on tickets


_CB = ("4970", "5132", "4973")  # CB co-badged Visa and Mastercard ranges
_AMEX = ("34", "37")
# -pt/--payment-type of the original simulator
PAYMENT_TYPES = {
    "cbcontact": Card("001", "1", "A0000000421010", _CB, 16, "CARTE BANCAIRE"),
    "cbcontactless": Card("00B", "2", "A0000000421010", _CB, 16, "CARTE BANCAIRE"),
    "amexcontact": Card("002", "1", "A00000002501", _AMEX, 15, "AMERICAN EXPRESS"),
    "amexcontactless": Card("00D", "2", "A00000002501", _AMEX, 15, "AMERICAN EXPRESS"),
}


def pan(card: Card, draw: int) -> str:
    """A Luhn-valid card number of the brand, from a random integer."""
    draw, which = divmod(draw, len(card.pan_prefixes))
    prefix = card.pan_prefixes[which]
    digits = card.pan_length - len(prefix) - 1
    body = f"{prefix}{draw % 10**digits:0{digits}d}"
    return body + _luhn_check_digit(body)


def _luhn_check_digit(body: str) -> str:
    """The digit that makes ``body`` + digit pass the Luhn check (payment card numbers)."""
    doubled = body[::-2].translate(_LUHN_DOUBLE)  # every second digit from the right, doubled, digits summed
    total = sum(doubled.encode()) + sum(body[-2::-2].encode()) - 48 * len(body)
    return str(-total % 10)


_LUHN_DOUBLE = str.maketrans("0123456789", "0246813579")
