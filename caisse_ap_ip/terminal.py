"""What a payment terminal answers to a request: pure behaviour, no I/O, no clock."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date

from .protocol import Message, Record

DEFAULT_VERSION = "0300"
MANDATORY_TAGS = frozenset({"CZ", "CJ", "CA", "CB", "CD", "CE"})
ALWAYS_MANDATORY_TAGS = frozenset({"CZ", "CJ", "CA", "CD"})
PAYMENT_ACTIONS = frozenset({"0", "1"})  # debit, credit (refund)
CHECK_APPLICATION = "00C"
SUCCESS, FAILURE, IMMEDIATE = "10", "01", "11"
FORMAT_ERROR, UNKNOWN_ACTION, REFUSED = "09", "12", "04"

# -ft/--failure-type of the original simulator -> AF code
FAILURE_TYPES = {"abandon": "11", "timeout": "08", "refused": "04", "forbidden": "05"}


@dataclass(frozen=True)
class Card:
    application: str  # CC
    read_mode: str  # CI
    aid: str  # AI
    pan_prefixes: tuple[str, ...]
    pan_length: int


_CB = ("4970", "5132", "4973")  # CB co-badged Visa and Mastercard ranges
_AMEX = ("34", "37")
# -pt/--payment-type of the original simulator
PAYMENT_TYPES = {
    "cbcontact": Card("001", "1", "A0000000421010", _CB, 16),
    "cbcontactless": Card("00B", "2", "A0000000421010", _CB, 16),
    "amexcontact": Card("002", "1", "A00000002501", _AMEX, 15),
    "amexcontactless": Card("00D", "2", "A00000002501", _AMEX, 15),
}


@dataclass
class TerminalSettings:
    failure: bool = False
    failure_type: str = "abandon"
    duration: float = 3.0
    payment_type: str = "cbcontact"
    seller_contract: str = "424242"


@dataclass(frozen=True)
class Reply:
    records: Message
    delay: float  # seconds to wait before sending, as the customer would take


@dataclass
class Terminal:
    settings: TerminalSettings = field(default_factory=TerminalSettings)
    rng: random.Random = field(default_factory=random.Random)
    today: date = field(default_factory=date.today)

    def is_complete(self, request: Message) -> bool:
        """Whether a request already holds every tag its action needs."""
        return MANDATORY_TAGS.issubset(tag for tag, _ in request)

    def respond(self, request: Message) -> Reply:
        fields = dict(request)
        answer = {"CZ": fields.get("CZ", DEFAULT_VERSION), **fields}
        error = self._format_error(fields)
        if error:
            return Reply(_with(answer, AE=FAILURE, AF=error), 0.0)
        if fields.get("BA") == "1":
            return Reply(_with(answer, AE=IMMEDIATE), 0.0)
        is_check = fields.get("CC") == CHECK_APPLICATION
        if self.settings.failure:
            code = REFUSED if is_check else FAILURE_TYPES[self.settings.failure_type]
            return Reply(_with(answer, AE=FAILURE, AF=code), self.settings.duration)
        answer["AE"] = SUCCESS
        if not is_check:
            answer.update(self._card_data(fields))
        return Reply(list(answer.items()), self.settings.duration)

    def reject(self, request: Message) -> Message:
        """The answer to a request that could not be read whole: echo, AE=01, AF=09."""
        fields = dict(request)
        return _with({"CZ": fields.get("CZ", DEFAULT_VERSION), **fields}, AE=FAILURE, AF=FORMAT_ERROR)

    def _format_error(self, fields: dict[str, str]) -> str | None:
        if not ALWAYS_MANDATORY_TAGS.issubset(fields):
            return FORMAT_ERROR
        if fields["CD"] not in PAYMENT_ACTIONS:
            return UNKNOWN_ACTION
        if not MANDATORY_TAGS.issubset(fields):
            return FORMAT_ERROR
        amount = fields["CB"]
        if not (amount.isdigit() and len(amount) <= 12):
            return FORMAT_ERROR
        return None

    def _card_data(self, request: dict[str, str]) -> dict[str, str]:
        card = PAYMENT_TYPES[self.settings.payment_type]
        return {
            "CC": card.application,
            "CI": card.read_mode,
            "AC": f"{self.rng.randrange(1_000_000):06d}",
            "AA": _mask(self._pan(card)),
            "AI": card.aid,
            "AB": self._expiry(),
            "CF": request.get("CF", "1010000000"),
            "CG": self.settings.seller_contract,
        }

    def _pan(self, card: Card) -> str:
        prefix = self.rng.choice(card.pan_prefixes)
        digits = card.pan_length - len(prefix) - 1
        body = f"{prefix}{self.rng.randrange(10**digits):0{digits}d}"
        return body + _luhn_check_digit(body)

    def _expiry(self) -> str:
        year = (self.today.year + 1 + self.rng.randrange(4)) % 100
        return f"{year:02d}{1 + self.rng.randrange(12):02d}"


def _with(answer: dict[str, str], **records: str) -> list[Record]:
    return list({**answer, **records}.items())


def _mask(pan: str) -> str:
    """First six and last four digits kept, as on French card tickets."""
    return pan[:6] + "#" * (len(pan) - 10) + pan[-4:]


def _luhn_check_digit(body: str) -> str:
    """The digit that makes ``body`` + digit pass the Luhn check (payment card numbers)."""
    digits = body.encode("ascii")
    doubled = sum(_LUHN_DOUBLE[d - 48] for d in digits[::-2])  # every second digit from the right, doubled
    total = doubled + sum(digits[-2::-2]) - 48 * len(digits[-2::-2])
    return str(-total % 10)


_LUHN_DOUBLE = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
