"""What the terminal does with one request: the vocabulary shared by options, scenario files and the control API.

Text form, as on the command line: a kind, an optional argument after a colon,
then modifiers, separated by spaces::

    success                     success:amexcontactless
    failure:refused             failure:06 delay=2
    silent   close   reset   garbage   truncated   immediate   ask
    answer delay=1-3 fragments=4 pause=0.2      (answer: what the settings say)
    delay:2   delay:1-3   fragments   fragments:4 pause=0.2    (the answer, with that modifier)

The same as a table (TOML, JSON)::

    {outcome = "failure", code = "refused", delay = "1-3", fragments = 4, pause = 0.2}

``replay`` (a real terminal's recorded answer, ``replay.py``) exists only as a
table: it carries the recorded request, answer and segments.
"""

from __future__ import annotations

import dataclasses
import random
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from . import codes, replay
from .cards import PAYMENT_TYPES
from .replay import Recording

DEFAULT_FRAGMENTS = 3  # pieces of an answer cut by "fragments" without a number, as real terminals cut them
KINDS = {
    "answer": "answer as the settings say (-f, -ft, -pt, -d)",
    "success": "the payment succeeds (optionally with a payment type: success:amexcontactless)",
    "failure": "the payment fails with an AF code or name (failure:refused, failure:06)",
    "immediate": "AE=11 at once, as for BA=1",
    "silent": "read the request, never answer, keep the connection open",
    "close": "close the connection without answering",
    "reset": "reset the connection (RST) without answering",
    "garbage": "answer bytes that are no valid frame",
    "truncated": "send the answer cut in the middle of a record, then close",
    "delay": "the answer after S seconds, or between LO and HI (delay:2, delay:1-3)",
    "fragments": f"the answer in N pieces (fragments:4; fragments alone: {DEFAULT_FRAGMENTS})",
    "partial": "a success for less than requested: an amount or a share (partial:10.00, partial:50%)",
    "pending": "AE=11 at once, then the final answer on the same connection after the delay, whatever BA says",
    "crlf": "the answer followed by CR LF, as some terminals send it",
    "extended-af": "a failure whose AF carries CB2A sub-fields after its code (extended-af:refused)",
    "padded-amount": "the answer with CB zero-padded to 12 digits, as real terminals send it",
    "ask": "wait for a person's decision (the server's terminal, the web page or the API), as a real terminal "
    "waits for its customer; nobody's decision is the input time-out (--ask-timeout, AF=08)",
    "replay": "the answer a real terminal gave, recorded through --proxy (scenario files of journal --export-scenario)",
}
TABLE_ONLY = frozenset({"replay"})  # kinds that carry data no text can: given only as tables (scenario files, API)
TEXT_KINDS = tuple(kind for kind in KINDS if kind not in TABLE_ONLY)  # what --outcome accepts
MODIFIER_KINDS = frozenset({"delay", "fragments"})  # kinds that mean "answer", with that modifier
ANSWERING = frozenset({"answer", "success", "failure", "immediate", "garbage", "truncated", "partial", "pending",
                       "crlf", "extended-af", "padded-amount", "replay"})  # fmt: skip
FAILING = frozenset({"failure", "extended-af"})  # kinds whose payment fails with ``code``
ARGUMENTS = {"failure": "code", "extended-af": "code", "success": "payment_type", "partial": "amount"}
CRLF = b"\r\n"
DEFAULT_CODES = {"extended-af": "refused"}  # a bank's refusal is what carries CB2A sub-fields
GARBAGE = b"\x00\xffGARBAGE\r\n"
DEFAULT_PAUSE = 0.05  # seconds between the pieces of a fragmented answer


class OutcomeError(ValueError):
    pass


@dataclass(frozen=True)
class Outcome:
    kind: str = "answer"
    code: str | None = None  # AF of a failure
    payment_type: str | None = None  # card of a success
    delay: tuple[float, float] | None = None  # seconds before acting: fixed (d, d) or a range
    fragments: int = 1  # the answer sent in this many pieces
    pause: float = DEFAULT_PAUSE
    amount: str | None = None  # what a partial authorisation grants: currency units (10.00) or a share (50%)
    recording: Recording | None = None  # what a replay answers

    def delay_seconds(self, rng: random.Random, default: float) -> float:
        if self.delay is None:
            return default
        low, high = self.delay
        return low if low == high else rng.uniform(low, high)

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        argument = self.code or self.payment_type or self.amount
        text = self.kind + (f":{argument}" if argument else "")
        if self.recording and self.recording.timed:
            text += " timing=recorded"
        if self.delay:
            text += f" delay={_format_range(self.delay)}"
        if self.fragments > 1:
            text += f" fragments={self.fragments} pause={self.pause:g}"
        return text

    @property
    def closes_after_answer(self) -> bool:
        """Whether the terminal closes the connection once this answer is sent (a replay of a terminal that did)."""
        return self.recording is not None and self.recording.closes

    def table(self) -> dict[str, object]:
        """The outcome as a table that ``from_table`` reads back, for a replay too (which has no text form)."""
        table: dict[str, object] = {"outcome": self.kind}
        table.update({key: value for key in ("code", "payment_type", "amount") if (value := getattr(self, key))})
        if self.delay:
            table["delay"] = _format_range(self.delay)
        if self.fragments > 1:
            table.update(fragments=self.fragments, pause=self.pause)
        return {**table, **(self.recording.table() if self.recording else {})}


DEFAULT = Outcome()


def parse(text: str) -> Outcome:
    """An outcome from its text form; raises OutcomeError saying what is wrong."""
    words = text.split()
    if not words:
        raise OutcomeError("empty outcome")
    table: dict[str, object] = {}
    if "=" not in words[0]:
        kind, _, argument = words.pop(0).partition(":")
        table["outcome"] = kind
        if argument:
            table["argument"] = argument
    for word in words:
        key, equals, value = word.partition("=")
        if not equals:
            raise OutcomeError(f"{word!r} is not key=value")
        table[key] = value
    return from_table(table)


def of(item: object) -> Outcome:
    """An outcome given by Python code: an Outcome as it is, else its text or table (``coerce``)."""
    return item if isinstance(item, Outcome) else coerce(item)


def coerce(item: object) -> Outcome:
    """An outcome from its text form or its table, whichever a scenario file, the API or a test gives."""
    if isinstance(item, str):
        return parse(item)
    if isinstance(item, dict):
        return from_table(item)
    raise OutcomeError(f"an outcome is text or a table, not {item!r}")


def from_table(table: dict[str, object]) -> Outcome:
    """An outcome from a TOML or JSON table: outcome, code, payment_type, delay, fragments, pause (and what a replay
    carries: timing, request, answer, segments)."""
    known = {"outcome", "argument", "code", "payment_type", "amount", "delay", "fragments", "pause", *replay.KEYS}
    unknown = set(table) - known
    if unknown:
        raise OutcomeError(f"unknown outcome key {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    kind = str(table.get("outcome", "answer")).lower()
    if kind not in KINDS:
        raise OutcomeError(f"unknown outcome {kind!r} (known: {', '.join(KINDS)})")
    table = _modifier_argument(kind, table)
    if "argument" in table:
        if kind not in ARGUMENTS:
            raise OutcomeError(f"outcome {kind!r} takes no argument")
        table = {**table, ARGUMENTS[kind]: table["argument"]}
    for key in ("code", "payment_type", "amount"):
        if table.get(key) is not None and ARGUMENTS.get(kind) != key:
            raise OutcomeError(f"outcome {kind!r} takes no {key}")
    if kind == "partial" and table.get("amount") is None:
        raise OutcomeError("partial needs the amount granted: partial:10.00 or partial:50%")
    kind = "answer" if kind in MODIFIER_KINDS else kind
    recording = _recording(kind, table)
    outcome = with_modifiers(
        Outcome(kind=kind, code=_failure_code(table.get("code", DEFAULT_CODES.get(kind))) if kind in FAILING else None,
                payment_type=_payment_type(table.get("payment_type")), amount=_granted(table.get("amount")),
                recording=recording),
        delay=table.get("delay"), fragments=table.get("fragments"), pause=table.get("pause"),
    )  # fmt: skip
    if recording and recording.timed:
        if outcome.fragments > 1:
            raise OutcomeError('replay with timing = "recorded" is cut as recorded: no fragments')
        if outcome.delay is None:  # the first piece leaves when the terminal's did
            outcome = with_modifiers(outcome, delay=recording.first_at)
    return outcome


def with_modifiers(outcome: Outcome, *, delay: object = None, fragments: object = None, pause: object = None):
    """``outcome`` with these modifiers (None keeps its own), checked as in a scenario file."""
    return dataclasses.replace(
        outcome,
        delay=outcome.delay if delay is None else _delay(delay),
        fragments=outcome.fragments if fragments is None else _positive_int("fragments", fragments),
        pause=outcome.pause if pause is None else _seconds("pause", pause),
    )


def _modifier_argument(kind: str, table: dict[str, object]) -> dict[str, object]:
    """delay:S and fragments[:N] give their modifier as the argument: the table with it moved in place."""
    if kind not in MODIFIER_KINDS:
        return table
    table = dict(table)
    if "argument" in table and kind in table:
        raise OutcomeError(f"{kind} given twice")
    if kind not in table:  # delay:2 as text, or {outcome = "delay", delay = 2} as a table
        table[kind] = table.pop("argument", DEFAULT_FRAGMENTS if kind == "fragments" else None)
    if table[kind] is None:
        raise OutcomeError("delay needs its seconds: delay:2 or delay:1-3")
    return table


def _recording(kind: str, table: dict[str, object]) -> Recording | None:
    if kind != "replay":
        given = [key for key in replay.KEYS if key in table]
        if given:
            raise OutcomeError(f"outcome {kind!r} takes no {given[0]} (only replay does)")
        return None
    try:
        return replay.from_table(table)
    except replay.RecordingError as error:
        raise OutcomeError(str(error)) from None


def _failure_code(value: object) -> str:
    try:
        return codes.failure_code(str(value if value is not None else codes.DEFAULT_FAILURE))
    except codes.CodeError as error:
        raise OutcomeError(str(error)) from None


def _granted(value: object) -> str | None:
    """The amount of a partial authorisation: a positive decimal (10.00) or a share strictly between 0 and 100%."""
    if value is None:
        return None
    text = str(value).strip()
    number = text[:-1] if text.endswith("%") else text
    try:
        granted = Decimal(number)
    except InvalidOperation:
        granted = None
    if (
        granted is None
        or not granted.is_finite()
        or granted <= 0
        or granted.adjusted() >= 12  # CB holds 12 digits
        or (text.endswith("%") and granted >= 100)
    ):
        raise OutcomeError(f"partial {text!r} is neither an amount such as 10.00 nor a share such as 50%")
    return text


def _payment_type(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).lower()
    if text not in PAYMENT_TYPES:
        raise OutcomeError(f"unknown payment type {text!r} (known: {', '.join(PAYMENT_TYPES)})")
    return text


def _delay(value: object) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        low = high = _seconds("delay", value)
    else:
        match = _DELAY.fullmatch(str(value).strip())
        if not match:
            raise OutcomeError(f"delay {value!r} is not seconds (2.5) or a range of seconds (1-3)")
        low = float(match["low"])
        high = float(match["high"]) if match["high"] else low
    if high < low:
        raise OutcomeError(f"delay range {value!r} ends before it starts")
    return low, high


_DELAY = re.compile(r"(?P<low>\d+(?:\.\d*)?)(?:-(?P<high>\d+(?:\.\d*)?))?")


def _seconds(name: str, value: object) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise OutcomeError(f"{name} {value!r} is not a number of seconds") from None
    if not 0 <= seconds < float("inf"):
        raise OutcomeError(f"{name} {value!r} must be a finite number of seconds >= 0")
    return seconds


def _positive_int(name: str, value: object) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise OutcomeError(f"{name} {value!r} is not a whole number") from None
    if number < 1:
        raise OutcomeError(f"{name} must be at least 1")
    return number


def _format_range(delay: tuple[float, float]) -> str:
    low, high = delay
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def split(data: bytes, pieces: int) -> list[bytes]:
    """``data`` cut into ``pieces`` parts of nearly equal size (fewer if it is shorter)."""
    pieces = max(1, min(pieces, len(data)))
    size, extra = divmod(len(data), pieces)
    parts, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        parts.append(data[start:end])
        start = end
    return parts


def pieces(outcome: Outcome, data: bytes) -> list[tuple[bytes, float]]:
    """How an answer leaves, in order: each piece and the pause after it (as recorded for a replay with
    timing = "recorded", else ``fragments`` pieces ``pause`` apart)."""
    if outcome.recording and outcome.recording.timed:
        return outcome.recording.pieces(data)
    return [(piece, outcome.pause) for piece in split(data, outcome.fragments)]


def truncate(data: bytes) -> bytes:
    """The answer cut inside a record: everything up to the middle of its last record's value."""
    cut = max(len(data) - 3, 1)
    return data[:cut]
