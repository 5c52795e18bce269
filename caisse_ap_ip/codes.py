"""Every code of the protocol, once: actions (CD), statuses (AE), their complements (AF), payment
applications (CC), read modes (CI), ticket choices (CK), answer timing (BA) and versions (CZ).

The facts and their sources are in docs/protocol.md §5 to §11; every other module reads them from here.
"""

from __future__ import annotations

from typing import NamedTuple

# -- CZ: protocol versions (docs/protocol.md §1.2)
DEFAULT_VERSION = "0300"  # what the original client and Odoo send
VERSIONS = ("0300", "0301", "0310", "0320")

# -- the tags every request carries, and those of a payment (docs/protocol.md §6)
COMMON_TAGS = frozenset({"CZ", "CJ", "CA", "CD"})
PAYMENT_TAGS = COMMON_TAGS | {"CB", "CE"}


class Action(NamedTuple):
    """One CD value: its code, the name of --action and scenario files, and what a request of it needs."""

    code: str
    name: str
    description: str
    payment: bool = False  # moves money: has an amount and a currency, takes the customer's time
    mandatory: frozenset[str] = COMMON_TAGS
    ticket_operation: str | None = None  # the operation as a ticket prints it


# -- CD: action types (docs/protocol.md §7)
# rows are plain named tuples, not dataclasses: the client imports this module, and it starts in a blink
DEBIT = Action("0", "debit", "debit", True, PAYMENT_TAGS, "DEBIT")
REFUND = Action("1", "refund", "credit (refund)", True, PAYMENT_TAGS, "CREDIT")
CANCEL = Action("2", "cancel", "cancellation", True, PAYMENT_TAGS, "ANNULATION")
DUPLICATE = Action("3", "duplicate", "duplicata", mandatory=COMMON_TAGS | {"CK"})
DEFERRED = Action("7", "deferred", "deferred debit", True, PAYMENT_TAGS, "DEBIT DIFFERE")
TELECOLLECTION = Action("B", "telecollection", "telecollection")
IDENTIFY = Action("I", "identify", "identification")
PRINT = Action("P", "print", "print", mandatory=COMMON_TAGS | {"ZT"})
REBOOT = Action("R", "reboot", "reboot")
CTMS = Action("C", "ctms", "CTMS status")
STATUS = Action("T", "status", "transaction status")

ACTIONS = (DEBIT, REFUND, CANCEL, DUPLICATE, DEFERRED, TELECOLLECTION, IDENTIFY, PRINT, REBOOT, CTMS, STATUS)
ACTION_BY_CODE = {action.code: action for action in ACTIONS}
ACTION_BY_NAME = {action.name: action for action in ACTIONS}
ACTION_CODES = {action.name: action.code for action in ACTIONS}  # --action name -> CD
PAYMENT_CODES = frozenset(action.code for action in ACTIONS if action.payment)


def action_description(code: str) -> str:
    action = ACTION_BY_CODE.get(code)
    return action.description if action else f"action {code!r}"


def is_payment(code: str | None) -> bool:
    return code in PAYMENT_CODES


def mandatory_tags(code: str) -> frozenset[str]:
    """The tags a request of this CD must carry (an unknown CD: those of every request)."""
    action = ACTION_BY_CODE.get(code)
    return action.mandatory if action else COMMON_TAGS


# -- AE: status of the action (docs/protocol.md §8.1)
SUCCESS, FAILURE, ACKNOWLEDGED = "10", "01", "11"
STATUSES = {
    SUCCESS: "operation performed",
    FAILURE: "operation not performed",
    ACKNOWLEDGED: "request taken into account (immediate answer)",
}


class Complement(NamedTuple):
    """One AF code: the name a failure is given by (-ft, outcomes, scenarios), and what it means."""

    code: str
    name: str | None  # None: not a failure (01 means authorised)
    meaning: str


# -- AF: complement of the status (docs/protocol.md §8.2); the first two characters are the code
COMPLEMENTS = (
    Complement("00", "unknown", "unknown"),
    Complement("01", None, "transaction authorised"),
    Complement("02", "voice-authorisation", "voice authorisation required"),
    Complement("03", "forced", "forced transaction"),
    Complement("04", "refused", "refused"),
    Complement("05", "forbidden", "forbidden"),
    Complement("06", "cardholder-abandon", "abandoned by the cardholder"),
    Complement("07", "not-completed", "not completed"),
    Complement("08", "timeout", "not performed: input time-out"),
    Complement("09", "format-error", "not performed: message format error"),
    Complement("10", "selection-error", "not performed: selection error"),
    Complement("11", "abandon", "not performed: operator abandon"),
    Complement("12", "unknown-action", "not performed: action type unknown"),
    Complement("13", "currency", "currency not supported"),
)
STATUS_COMPLEMENTS = {complement.code: complement.meaning for complement in COMPLEMENTS}
AUTHORISED, REFUSED, NOT_COMPLETED, INPUT_TIMEOUT = "01", "04", "07", "08"
FORMAT_ERROR, SELECTION_ERROR, OPERATOR_ABANDON, UNKNOWN_ACTION, UNSUPPORTED_CURRENCY = "09", "10", "11", "12", "13"

# failure names: the original simulator's four (-ft/--failure-type) first, then every other failure code
_ORIGINAL_FAILURES = ("abandon", "timeout", "refused", "forbidden")
_NAMED = {complement.name: complement.code for complement in COMPLEMENTS if complement.name}
FAILURE_TYPES = {name: _NAMED[name] for name in _ORIGINAL_FAILURES} | {
    name: code for name, code in _NAMED.items() if name not in _ORIGINAL_FAILURES
}
DEFAULT_FAILURE = "abandon"


# CB2A sub-fields that may follow the two-digit code of AF (docs/protocol.md §8.3): (key, name, width)
AF_EXTENSION = (
    ("response_code", "authorisation response code (CB2A field 39)", 2),
    ("message", "message for the initiator (CB2A field 44-BC)", 21),
    ("check_results", "acceptor check results (CB2A field 55-DF70)", 2),
    ("non_completion", "reason for non-completion (CB2A field 58-FF50)", 2),
)
AF_EXTENSION_SIZE = sum(width for _, _, width in AF_EXTENSION)


def af_extension(**fields: str) -> str:
    """The sub-fields after an AF code, each space-padded to its width (missing ones are spaces)."""
    return "".join(fields.get(key, "")[:width].ljust(width) for key, _, width in AF_EXTENSION)


class CodeError(ValueError):
    """A name or code the protocol does not define."""


def failure_code(name_or_code: str) -> str:
    """The AF of a failure given by name (refused, any case) or by code (04); raises CodeError otherwise."""
    value = name_or_code.strip().lower()
    code = FAILURE_TYPES.get(value, value)
    if code not in STATUS_COMPLEMENTS or code == AUTHORISED:
        raise CodeError(
            f"unknown failure {name_or_code!r} (choose from {', '.join(FAILURE_TYPES)}, or an AF code 00, 02 to 13)"
        )
    return code


def complement_meaning(af: str) -> str | None:
    """What an AF value means, read from its first two characters (longer ones carry CB2A sub-fields)."""
    return STATUS_COMPLEMENTS.get(af[:2])


# -- CC: payment application (docs/protocol.md §9.1)
CHECK_APPLICATION = "00C"
APPLICATIONS = {
    "000": "indifferent / other",
    "001": "CB/Visa/Mastercard contact",
    "002": "American Express contact",
    "003": "CB Enseigne",
    "004": "Cetelem",
    "005": "Cofinoga",
    "006": "Diners Club",
    "007": "PASS",
    "008": "Franfinance",
    "009": "JCB",
    "00A": "Banque Accord EMV",
    "00B": "CB/Visa/Mastercard contactless",
    CHECK_APPLICATION: "cheque",
    "00D": "American Express contactless",
    "00E": "CONECS contact",
    "00F": "DCC",
    "00G": "QuickPass",
    "00I": "CPEI-EMV",
    "00S": "Sofinco private card",
    "00U": "UPI / China UnionPay",
    "00V": "ANCV chèques-vacances",
    "10E": "CONECS contactless",
    "101": "CB VAD (card number keyed)",
    "201": "quasi-cash",
    "301": "PLBS",
    "30F": "PLBS-DCC-GB",
    "401": "Optalion",
    "501": "Cash-Agence",
    "601": "PNF",
    "602": "P3F",
    "603": "Optalion",
    "604": "Preauto-CM",
    "605": "PRCME",
    "607": "QR-code payment",
    "608": "TOP3-3XCB",
    "609": "PNF-HPS",
    "701": "PPFCA",
}


def is_check(fields: dict[str, str]) -> bool:
    return fields.get("CC") == CHECK_APPLICATION


# -- CI: how the card was read (docs/protocol.md §9.2)
CONTACT, CONTACTLESS = "1", "2"
READ_MODES = {"0": "unspecified", CONTACT: "contact (chip)", CONTACTLESS: "contactless", "3": "magnetic stripe",
              "4": "manual entry"}  # fmt: skip

# -- BA: when the terminal answers (docs/protocol.md §12.5)
AT_THE_END, IMMEDIATELY = "0", "1"
ANSWER_TIMINGS = {AT_THE_END: "at the end of the transaction", IMMEDIATELY: "immediately"}

# -- CK: ticket management, one digit per position (docs/protocol.md §10.1)
TICKETS_RETURNED = "1"
TICKET_COPIES = {"customer": "0", "merchant": "1", "both": "2"}  # --ticket name -> second digit
TICKET_FORMATS = {"text": "0", "html": "1"}  # --ticket-format name -> third digit
TICKET_POSITIONS = (
    {"0": "no ticket returned", TICKETS_RETURNED: "tickets returned to the POS"},
    {"0": "customer ticket", "1": "merchant ticket", "2": "both tickets"},
    {"0": "text", "1": "HTML"},
)

# -- small tables of the POS's yes/no tags and of AL
YES_NO = {"0": "no", "1": "yes"}
PARTIAL_PAYMENT = {"0": "refused", "1": "accepted"}
PAN_TYPES = {"1": "partial card number"}
