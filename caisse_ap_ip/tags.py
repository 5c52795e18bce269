"""The Caisse-AP tag dictionary as data: names, directions, sizes, charsets (docs/protocol.md §3.1).

The value tables are the codes of codes.py.
"""

from __future__ import annotations

import base64
import binascii
import functools
from dataclasses import dataclass

from .codes import (
    ACTIONS,
    ANSWER_TIMINGS,
    APPLICATIONS,
    PAN_TYPES,
    PARTIAL_PAYMENT,
    READ_MODES,
    STATUSES,
    TICKET_POSITIONS,
    YES_NO,
    complement_meaning,
)

POS_TO_TERMINAL, TERMINAL_TO_POS, BOTH = "POS->terminal", "terminal->POS", "both"


@dataclass(frozen=True)
class TagSpec:
    name: str
    direction: str
    min_size: int
    max_size: int
    charset: str = "text"  # text, digits, base64 or records (a constructed tag)
    values: dict[str, str] | None = None
    lenient_min_size: int | None = None  # what real POS software sends below min_size; refused with --strict


SPECS = {
    "CZ": TagSpec("protocol version", BOTH, 4, 4, "digits"),
    "CJ": TagSpec("POS software identifier", BOTH, 12, 12, lenient_min_size=1),  # real POS send CJ003012
    "CA": TagSpec("cash register number", BOTH, 2, 2, "digits", lenient_min_size=1),
    "CB": TagSpec("amount", BOTH, 2, 12, "digits", lenient_min_size=1),
    "CC": TagSpec("payment application", BOTH, 3, 3, values=APPLICATIONS),
    "CD": TagSpec("action type", BOTH, 1, 1, values={action.code: action.description for action in ACTIONS}),
    "CE": TagSpec("currency", BOTH, 3, 3, "digits"),
    "CF": TagSpec("private data", BOTH, 1, 99),
    "CG": TagSpec("merchant contract number", TERMINAL_TO_POS, 1, 10),
    "CH": TagSpec("external reference", POS_TO_TERMINAL, 1, 999),
    "CI": TagSpec("card read mode", TERMINAL_TO_POS, 1, 1, "digits", READ_MODES),
    "CK": TagSpec("ticket management", BOTH, 3, 3, "digits"),
    "BA": TagSpec("answer timing", POS_TO_TERMINAL, 1, 1, "digits", ANSWER_TIMINGS),
    "BB": TagSpec("force online authorisation", POS_TO_TERMINAL, 1, 1, "digits", YES_NO),
    "BF": TagSpec("partial payment allowed", POS_TO_TERMINAL, 1, 1, "digits", PARTIAL_PAYMENT),
    "BH": TagSpec("shopper phone", POS_TO_TERMINAL, 8, 20),
    "BI": TagSpec("shopper e-mail", POS_TO_TERMINAL, 6, 256),
    "AA": TagSpec("card number (masked)", TERMINAL_TO_POS, 1, 64),
    "AB": TagSpec("card expiry (YYMM)", TERMINAL_TO_POS, 4, 4, "digits"),
    "AC": TagSpec("authorisation number", TERMINAL_TO_POS, 1, 10),
    "AE": TagSpec("action status", TERMINAL_TO_POS, 2, 2, "digits", STATUSES),
    "AF": TagSpec("status complement", TERMINAL_TO_POS, 2, 50),
    "AI": TagSpec("card application identifier (AID)", TERMINAL_TO_POS, 1, 32),
    "AK": TagSpec("ticket data (base64)", BOTH, 1, 900, "base64"),
    "AL": TagSpec("card number type", TERMINAL_TO_POS, 1, 1, "digits", PAN_TYPES),
    "ZT": TagSpec("tickets", BOTH, 1, 999, "records"),
    # PayXpert extensions, shown but never produced
    "AP": TagSpec("operation date (PayXpert)", TERMINAL_TO_POS, 13, 13),
    "AQ": TagSpec("terminal serial number (PayXpert)", TERMINAL_TO_POS, 2, 20),
    "ID": TagSpec("transaction id (PayXpert)", TERMINAL_TO_POS, 1, 999),
    "IM": TagSpec("transaction id (PayXpert)", TERMINAL_TO_POS, 1, 999),
}

TERMINAL_ONLY = frozenset(tag for tag, spec in SPECS.items() if spec.direction == TERMINAL_TO_POS)
_VALUE_TABLES = {tag: spec.values for tag, spec in SPECS.items() if spec.values}


def name(tag: str) -> str:
    spec = SPECS.get(tag)
    return spec.name if spec else "unknown tag"


def meaning(tag: str, value: str) -> str | None:
    """What a coded value means, or None when the tag is not coded or the value is unknown."""
    if tag == "AF":
        return complement_meaning(value)
    if tag == "CK":
        return ticket_meaning(value)
    table = _VALUE_TABLES.get(tag)
    return table.get(value) if table else None


def ticket_meaning(ck: str) -> str | None:
    if len(ck) != 3 or any(char not in table for char, table in zip(ck, TICKET_POSITIONS, strict=True)):
        return None
    if ck[0] == "0":
        return TICKET_POSITIONS[0]["0"]
    return f"{TICKET_POSITIONS[1][ck[1]]}, {TICKET_POSITIONS[2][ck[2]]}"


@functools.lru_cache(maxsize=4096)  # requests repeat the same values; only amounts and references vary
def request_value_problem(tag: str, value: str, strict: bool = False) -> str | None:
    """Why a request's value breaks the dictionary, or None. Unknown tags pass; tags only terminals send pass
    too (they are ignored, never echoed) unless ``strict``."""
    spec = SPECS.get(tag)
    if spec is None:
        return None
    if spec.direction == TERMINAL_TO_POS:
        return f"{tag} ({spec.name}) is sent only by terminals" if strict else None
    return value_problem(tag, value, strict=strict)


def value_problem(tag: str, value: str, *, strict: bool = False) -> str | None:
    """Why a value cannot be what the dictionary says this tag holds, or None. Unknown tags pass."""
    spec = SPECS.get(tag)
    if spec is None:
        return None
    smallest = spec.min_size if strict or spec.lenient_min_size is None else spec.lenient_min_size
    if not smallest <= len(value) <= spec.max_size:
        expected = f"{spec.min_size}" if spec.min_size == spec.max_size else f"{smallest} to {spec.max_size}"
        return f"{tag} has {len(value)} characters, expected {expected}"
    if spec.charset == "digits" and not value.isdigit():
        return f"{tag} is not digits: {value!r}"
    if spec.charset == "base64" and not is_base64(value):
        return f"{tag} is not base64"
    if tag == "CK" and ticket_meaning(value) is None:
        return f"CK {value!r} is not a ticket choice"
    if spec.values is not None and tag not in ("CD", "CC") and value not in spec.values:
        return f"{tag} {value!r} is not one of {', '.join(spec.values)}"
    return None


def is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True
