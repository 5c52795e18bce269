"""Payment tickets as a French terminal prints them, carried in ZT as CK + AK (base64 of Latin-1 text or HTML).

Layout of "both tickets" (CK position 2 = 2), which no public source describes:
one ZT holding the customer ticket's CK/AK pair then the merchant ticket's,
each CK naming its own ticket (x0x, then x1x). Lines are kept short so that
two tickets fit in one ZT (999 characters).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from datetime import datetime

from . import codes
from .protocol import Message, decode, encode

MAX_ZT_SIZE = 999
MAX_LINE = 24  # merchant name and town are cut to this
CUSTOMER, MERCHANT, BOTH = (codes.TICKET_COPIES[name] for name in ("customer", "merchant", "both"))
HTML = codes.TICKET_FORMATS["html"]

OUTCOME_LINES = {  # AF -> how the ticket says the operation failed
    codes.REFUSED: "{operation} REFUSE",
    codes.FAILURE_TYPES["forbidden"]: "{operation} INTERDIT",
    codes.FAILURE_TYPES["cardholder-abandon"]: "ABANDON {operation}",
    codes.INPUT_TIMEOUT: "TEMPS DEPASSE {operation}",
    codes.OPERATOR_ABANDON: "ABANDON {operation}",
}


@dataclass(frozen=True)
class TicketData:
    operation: str  # DEBIT, CREDIT, ANNULATION
    scheme: str  # CARTE BANCAIRE, AMERICAN EXPRESS, CHEQUE
    contactless: bool
    when: datetime
    merchant_name: str
    merchant_town: str
    contract: str
    amount: str  # as printed: "112,45 EUR"
    aid: str | None = None
    pan_last4: str | None = None
    authorisation: str | None = None
    failure: str | None = None  # the AF code when the operation was not performed


def lines(data: TicketData, kind: str, duplicate: bool = False) -> list[str]:
    result = [data.scheme]
    if data.contactless:
        result.append("SANS CONTACT")
    if data.aid:
        result.append(data.aid)
    result += [
        data.when.strftime("LE %d/%m/%y A %H:%M:%S"),
        data.merchant_name[:MAX_LINE],
        data.merchant_town[:MAX_LINE],
        f"CONTRAT {data.contract}",
    ]
    if data.pan_last4:
        result.append("#" * 12 + data.pan_last4)
    if data.authorisation:
        result.append(f"NUM AUTO : {data.authorisation}")
    result += ["MONTANT :", data.amount.rjust(16)]
    if data.failure:
        result.append(OUTCOME_LINES.get(data.failure, "{operation} NON ABOUTI").format(operation=data.operation))
    else:
        result.append(data.operation)
    if duplicate:
        result.append("DUPLICATA")
    result += ["TICKET CLIENT", "A CONSERVER"] if kind == CUSTOMER else ["TICKET COMMERÇANT"]
    return result


def render(data: TicketData, kind: str, fmt: str, duplicate: bool = False) -> bytes:
    text = "\n".join(lines(data, kind, duplicate)) + "\n"
    if fmt == HTML:
        text = f"<html><body><pre>{html.escape(text, quote=False)}</pre></body></html>"
    return text.encode("latin-1", errors="replace")


def zt_value(data: TicketData, ck: str, duplicate: bool = False) -> str:
    """The value of ZT for the tickets that CK asks for."""
    kinds = [CUSTOMER, MERCHANT] if ck[1] == BOTH else [ck[1]]
    records = []
    for kind in kinds:
        ticket = base64.b64encode(render(data, kind, ck[2], duplicate)).decode("ascii")
        records += [("CK", f"{codes.TICKETS_RETURNED}{kind}{ck[2]}"), ("AK", ticket)]
    return encode(records).decode("ascii")


def decode_tickets(zt: str) -> list[tuple[str, str]]:
    """(CK, decoded text) for each ticket in a ZT value; raises ValueError if ZT is not CK/AK records."""
    tickets, ck = [], "100"
    records: Message = decode(zt.encode("ascii"))
    for tag, value in records:
        if tag == "CK":
            ck = value
        elif tag == "AK":
            tickets.append((ck, base64.b64decode(value, validate=True).decode("latin-1")))
    return tickets
