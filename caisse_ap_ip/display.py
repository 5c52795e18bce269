"""Human-readable renderings of messages, shared by the client's output and the server's log."""

from __future__ import annotations

from . import codes, tags
from .amounts import currency_from_number, format_minor_units
from .protocol import FrameError, Message


def describe_record(tag: str, value: str, currency_number: str | None = None) -> dict[str, str | None]:
    meaning = tags.meaning(tag, value)
    if tag == "ZT":
        meaning = "; ".join(ticket["meaning"] for ticket in _zt_tickets(value)) or "no ticket"
    if tag == "CB" and value.isdigit():
        meaning = format_minor_units(int(value), currency_from_number(currency_number or ""))
    elif tag == "CE":
        currency = currency_from_number(value)
        meaning = currency.code if currency else "unknown currency"
    return {"tag": tag, "name": tags.name(tag), "value": value, "meaning": meaning}


def describe(message: Message) -> list[dict[str, str | None]]:
    currency = dict(message).get("CE")
    return [describe_record(tag, value, currency) for tag, value in message]


def tickets(message: Message) -> list[dict[str, str]]:
    """The tickets carried by a message's ZT, decoded: [{"ck", "meaning", "text"}]."""
    zt = dict(message).get("ZT")
    return _zt_tickets(zt) if zt else []


def _zt_tickets(zt: str) -> list[dict[str, str]]:
    from .tickets import decode_tickets  # here: most answers carry no ticket, and the client starts faster

    try:
        found = decode_tickets(zt)
    except (FrameError, ValueError):
        return [{"ck": "", "meaning": "unreadable tickets", "text": ""}]
    return [{"ck": ck, "meaning": tags.ticket_meaning(ck) or f"CK {ck}", "text": text} for ck, text in found]


def table(message: Message, indent: str = "  ") -> str:
    lines = []
    for row in describe(message):
        meaning = f"  ({row['meaning']})" if row["meaning"] else ""
        value = row["value"] if len(row["value"]) <= 48 else f"{row['value'][:40]}… ({len(row['value'])} chars)"
        lines.append(f"{indent}{row['tag']}  {row['name']:<34} {value}{meaning}")
    return "\n".join(lines)


def outcome(answer: Message) -> str:
    """One line: 'success', 'failure: refused (AF=04)', ..."""
    fields = dict(answer)
    status = fields.get("AE")
    if status == codes.SUCCESS:
        return "success"
    if status == codes.FAILURE:
        code = fields.get("AF", "")[:2]  # what follows the code is the CB2A extension
        reason = tags.meaning("AF", code) or "no reason given"
        return f"failure: {reason} (AF={code})" if code else f"failure: {reason}"
    if status == codes.ACKNOWLEDGED:
        return "acknowledged (AE=11, immediate answer)"
    return f"unexpected status AE={status}" if status else "no status (AE missing)"


def summary(request: Message) -> str:
    """One line about a request: 'debit 112.45 EUR', 'refund 5 JPY (check)'."""
    fields = dict(request)
    action = codes.action_description(fields.get("CD", ""))
    amount = fields.get("CB", "")
    if amount.isdigit() and codes.is_payment(fields.get("CD")):
        action += " " + format_minor_units(int(amount), currency_from_number(fields.get("CE", "")))
    if codes.is_check(fields):
        action += " (check)"
    return action


def address(peer) -> str:
    """'host:port' of a socket address tuple (as Twisted's TCP transports keep it) or an address object;
    an IPv6 host in brackets ('[::1]:8888'), as URLs and the 'listening on' lines write it."""
    if isinstance(peer, str):
        return peer
    host, port = (peer[0], peer[1]) if isinstance(peer, tuple) else (peer.host, peer.port)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
