"""A scenario file from the journal: one ``replay`` rule per request shape that a real terminal answered.

    text, rules = export.scenario(journal.read("shop.db"), "shop.db", datetime.now())

The shape of a request is what a terminal's answer depends on: the action, the amount and currency, card or
check, the tickets asked for (CK). Each shape gets one rule, in the order the shapes were first recorded,
with the latest whole answer recorded for it (whole as the client reads answers: one the POS left in the
middle of is no recording); the POS's own records (CJ, CA, CF ...) are echoed from each new
request when it is replayed (replay.py). The file is the plain TOML of README "Scenarios", with a comment per
rule saying when and from which terminal it was recorded, for a person to read and edit.
"""

from __future__ import annotations

from datetime import datetime

from . import __version__, codes, display
from .amounts import currency_from_number, in_currency_units
from .answers import AnswerReader, Expectation, Progress
from .protocol import Message, decode
from .scenarios import NO_TICKET

HEADER = """\
# Answers of a real terminal, recorded through caisse-ap-ip-server --proxy and exported from {source}
# by caisse-ap-ip-server {version} on {now}. Replay them with: caisse-ap-ip-server --scenario FILE
#
# Each rule answers the requests of one shape (action, amount, currency, card or check, tickets asked for)
# with what the terminal answered: its records (AE, AF, card data, tickets) come from the recording, the
# POS's own (CJ, CA, CF, ...) from each new request. timing = "recorded" also sends the answer cut and
# paced as the terminal sent it (segments: seconds after the request, bytes); "simulated" sends it whole
# after -d.
"""


class NothingToExport(Exception):
    pass


def scenario(entries: list[dict], source: str, now: datetime) -> tuple[str, int]:
    """(the TOML text, how many rules) from journal entries; raises NothingToExport when none was answered by a
    real terminal."""
    latest: dict[str, tuple[dict, Message, int]] = {}  # shape -> (latest entry, its request, recordings)
    for entry in entries:
        request = _recorded_request(entry)
        if request is not None:
            key = _inline(predicates(request))  # requests of one shape are those one rule matches
            seen = latest.get(key, (None, None, 0))[2]
            latest[key] = (entry, request, seen + 1)  # a key keeps its first place
    if not latest:
        raise NothingToExport(f"no transaction in {source} was answered by a real terminal (--proxy)")
    header = HEADER.format(source=source, version=__version__, now=now.isoformat(sep=" ", timespec="seconds"))
    rules = [_rule(entry, request, count) for entry, request, count in latest.values()]
    return header + "".join(rules), len(rules)


def _recorded_request(entry: dict) -> Message | None:
    """The request of a transaction a real terminal answered with a whole answer, or None."""
    relayed = entry.get("proxy")
    if not relayed or not relayed["terminal_answer"] or entry["request_records"] is None:
        return None
    request = decode(entry["request"].encode("latin-1"))
    return request if _whole_answer(request, relayed["terminal_answer"].encode("latin-1")) else None


def _whole_answer(request: Message, answer: bytes) -> bool:
    """Whether ``answer`` is whole by the client's reading rule (answers.py): complete by the protocol's evidence,
    or on a record boundary with its AE, which the client takes after its quiet time (card records of another
    profile than the one expected, say). Not an answer cut before its AE, or inside a record."""
    reader = AnswerReader(Expectation.of(request))
    progress = reader.receive(answer)
    return progress is Progress.COMPLETE or (progress is Progress.QUIET and "AE" in dict(reader.final or []))


def predicates(request: Message) -> dict[str, object]:
    """The ``when`` of the rule for this request's shape: action, amount, currency, card or check, tickets."""
    fields = dict(request)
    action = codes.ACTION_BY_CODE.get(fields.get("CD", ""))
    when: dict[str, object] = {"action": action.name} if action else {"tags": {"CD": fields.get("CD", "")}}
    if action and action.payment:
        currency = currency_from_number(fields.get("CE", ""))
        if currency is not None and currency.exponent is not None and fields.get("CB", "").isdigit():
            when["amount"] = str(in_currency_units(int(fields["CB"]), currency))
            when["currency"] = currency.code
        else:  # no amount in currency units to say: the records themselves
            when["tags"] = {tag: fields[tag] for tag in ("CD", "CB", "CE") if tag in fields}
        when["check"] = codes.is_check(fields)
    when["ticket"] = fields.get("CK", NO_TICKET)
    return when


def _rule(entry: dict, request: Message, count: int) -> str:
    relayed = entry["proxy"]
    when = datetime.fromtimestamp(entry["received"]).isoformat(sep=" ", timespec="seconds")
    recordings = f"the latest of {count} recordings of this shape" if count > 1 else "recorded once"
    name = display.summary(request) + (f", ticket CK={dict(request)['CK']}" if "CK" in dict(request) else "")
    segments = ", ".join(
        f"{{ at = {segment['at']:.3f}, size = {segment['size']} }}"
        for segment in relayed["segments"]
        if segment["from"] == "terminal"
    )
    return (
        f"\n# {name}: recorded {when} from the terminal at {relayed['terminal']}\n"
        f"# (journal transaction #{entry['id']}, {recordings})\n"
        f"[[rule]]\nname = {toml_string(name)}\nwhen = {_inline(predicates(request))}\n\n"
        f'[rule.outcome]\noutcome = "replay"\ntiming = "simulated"\n'
        f"request = {toml_string(entry['request'])}\nanswer = {toml_string(relayed['terminal_answer'])}\n"
        f"segments = [{segments}]\n{_closes(relayed)}"
    )


def _closes(relayed: dict) -> str:
    """Whether the replay closes the line after its answer, as the terminal did; left out (false) when the terminal
    closed after the POS had shut its sending side down: that close may have been its answer to the POS's."""
    if relayed["terminal_closed"] and relayed["pos_half_closed_at"] is not None:
        return "# closes left out: the terminal closed after the POS had shut its sending side down\n"
    return f"closes = {_value(relayed['terminal_closed'])}\n"


def _inline(table: dict[str, object]) -> str:
    return "{ " + ", ".join(f"{key} = {_value(value)}" for key, value in table.items()) + " }"


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return _inline(value)
    return toml_string(str(value))


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """A TOML basic string of ``text``, in ASCII: control and non-ASCII characters escaped."""
    escaped = "".join(_ESCAPES.get(char) or (char if " " <= char <= "~" else f"\\u{ord(char):04x}") for char in text)
    return f'"{escaped}"'
