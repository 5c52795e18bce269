"""The POS reading a terminal's answer, without I/O: when the bytes received are a whole answer, and what it says.

An answer has no terminator and no length (docs/protocol.md §4.3), so the reader
judges completeness by the protocol's own evidence: the records walked so far end
on a record boundary, AE is there, and what that AE implies is there too (AF with
a failure; the card records a profile promises with a card payment's success; ZT
when tickets were asked for; the final answer after an interim AE=11). When the
evidence is missing the caller waits for a quiet period instead. Bytes that cannot
start a record after a whole answer (CR LF, NUL) are kept as ``trailing``.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from . import codes
from .amounts import currency_from_number, format_minor_units
from .profiles import PROFILES
from .protocol import FrameDecoder, FrameError, Message, encode, is_record_start, walk

MAX_ANSWER_SIZE = 65536
REQUEST_ERRORS = frozenset({codes.FORMAT_ERROR, codes.SELECTION_ERROR, codes.UNKNOWN_ACTION,
                            codes.UNSUPPORTED_CURRENCY})  # fmt: skip


class Progress(enum.Enum):
    COMPLETE = "complete"  # a whole answer, by the protocol's evidence: done at once
    QUIET = "quiet"  # on a record boundary but something expected is missing: done after a quiet period
    WAITING = "waiting"  # nothing yet, or a record not yet whole: wait up to the time-out
    MALFORMED = "malformed"  # bytes that are no answer


class Expectation(NamedTuple):
    """What a whole answer to this request carries; ``None`` fields mean 'nothing known'."""

    payment: bool = False
    check: bool = False
    tickets: bool = False
    final_after_interim: bool = True  # after AE=11, wait for the final answer on the same connection
    card_tags: frozenset[str] = frozenset()
    failure_tags: frozenset[str] = frozenset()
    known: bool = True  # False for a request that could not be decoded: completeness is left to the quiet time

    @classmethod
    def of(cls, request: Message | None, profile: str = "original", wait_final: bool = False) -> Expectation:
        if request is None:
            return cls(known=False)
        fields, shape = dict(request), PROFILES[profile]
        payment = codes.is_payment(fields.get("CD"))
        return cls(
            payment=payment,
            check=codes.is_check(fields),
            tickets=fields.get("CK", "0")[:1] == codes.TICKETS_RETURNED,
            final_after_interim=wait_final or fields.get("BA") != codes.IMMEDIATELY,
            card_tags=frozenset(shape.card_tags) if payment else frozenset(),
            failure_tags=frozenset(shape.failure_tags) if payment else frozenset(),
        )

    def satisfied_by(self, answer: Message) -> bool:
        fields = dict(answer)
        status = fields.get("AE")
        if not self.known or status is None:
            return False
        if status == codes.FAILURE:
            if "AF" not in fields:
                return False
            if fields["AF"][:2] in REQUEST_ERRORS:
                return True  # refused at once: no card records, no ticket
            return self.failure_tags <= set(fields) and (not self.tickets or "ZT" in fields)
        if status == codes.SUCCESS:
            card_tags = self.card_tags if not self.check else frozenset()
            return card_tags <= set(fields) and (not self.tickets or "ZT" in fields)
        return status == codes.ACKNOWLEDGED and not self.final_after_interim


STRAY = b"\r\n\x00"  # bytes some terminals put after a message: skipped between an interim AE=11 and the final one


class AnswerReader:
    """Bytes in, as they come; ``progress`` says whether they are a whole answer yet."""

    def __init__(self, expectation: Expectation | None = None):
        self.expectation = expectation or Expectation()
        self.received = bytearray()
        self.messages: list[Message] = []
        self.spans: list[tuple[int, int]] = []  # where each message starts and ends in ``received``
        self.end = 0  # offset just past the last whole record

    def receive(self, data: bytes) -> Progress:
        self.received += data
        data = bytes(self.received)
        self.messages, self.end = walk(data)
        self.spans = _spans(self.messages, 0)
        if self.awaiting_final:  # CR LF after the interim answer must not hide the final one
            gap = len(data) - len(data[self.end :].lstrip(STRAY))
            more, more_end = walk(data[gap:])
            if more:
                self.messages, self.spans, self.end = (
                    self.messages + more,
                    self.spans + _spans(more, gap),
                    gap + more_end,
                )
        return self.progress

    @property
    def progress(self) -> Progress:
        rest = bytes(self.received[self.end :])
        final = self.final
        if len(self.received) > MAX_ANSWER_SIZE:
            return Progress.MALFORMED
        if final is None or "AE" not in dict(final):
            if rest and not is_record_start(rest):
                return Progress.MALFORMED
            return Progress.QUIET if final and not rest else Progress.WAITING
        if self.awaiting_final:
            junk = rest.lstrip(STRAY)
            return Progress.WAITING if not junk or is_record_start(junk) else Progress.COMPLETE
        if len(self.messages) > self._final_index + 1:
            return Progress.COMPLETE  # a new message after a whole answer
        satisfied = self.expectation.satisfied_by(final)
        if rest and not is_record_start(rest):
            return Progress.QUIET if rest == b"\r" else Progress.COMPLETE  # stray bytes (a CR: its LF may follow)
        if rest:  # a record not yet whole: the answer's own, or stray bytes after a whole answer
            return Progress.QUIET if satisfied else Progress.WAITING
        return Progress.COMPLETE if satisfied else Progress.QUIET

    @property
    def _final_index(self) -> int:
        return 1 if self._waits_for_final() and len(self.messages) > 1 else 0

    def _waits_for_final(self) -> bool:
        first = dict(self.messages[0]) if self.messages else {}
        return first.get("AE") == codes.ACKNOWLEDGED and self.expectation.final_after_interim

    @property
    def final(self) -> Message | None:
        """The answer: the message after an interim AE=11 once it came, else the first one."""
        return self.messages[self._final_index] if self.messages else None

    @property
    def interim(self) -> Message | None:
        return self.messages[0] if self._final_index == 1 else None

    @property
    def awaiting_final(self) -> bool:
        """An interim AE=11 came and its final answer has not."""
        return self._waits_for_final() and len(self.messages) == 1

    @property
    def trailing(self) -> bytes:
        """What came after the answer: stray bytes, or further messages."""
        return bytes(self.received[self.spans[self._final_index][1] :]) if self.spans else bytes(self.received)

    @property
    def usable(self) -> bool:
        """Whether what came can be reported as an answer: whole records, not cut inside one, no garbage
        unless after a status."""
        rest = bytes(self.received[self.end :])
        if self.final is None:
            return False
        if self.awaiting_final:
            rest = rest.lstrip(STRAY)
        if rest and is_record_start(rest):  # cut inside a record: only stray bytes after a whole answer
            return not self.awaiting_final and self.expectation.satisfied_by(self.final)
        return not rest or "AE" in dict(self.final)

    def problem(self, where: str) -> str:
        """Why the bytes received from ``where`` are no usable answer (their first error, with its offset)."""
        if not self.received:
            return f"{where} closed the connection without answering"
        decoder = FrameDecoder(MAX_ANSWER_SIZE)
        try:
            decoder.feed(bytes(self.received))
        except FrameError as error:
            return f"malformed answer from {where}: {error}"
        if not decoder.at_boundary:
            return f"malformed answer from {where}: truncated record at byte {decoder.offset}"
        return f"malformed answer from {where}: longer than {MAX_ANSWER_SIZE} bytes"


# -- what an answer says, as a POS checks it


def partial_authorisation(request: Message, answer: Message) -> dict[str, str] | None:
    """A payment's success whose CB is lower than requested: {"authorised", "requested", "currency"}; else None."""
    sent, got = dict(request), dict(answer)
    if got.get("AE") != codes.SUCCESS or not codes.is_payment(sent.get("CD")):
        return None
    asked, given = sent.get("CB", ""), got.get("CB", "")
    if not (asked.isdigit() and given.isdigit()) or not 0 < int(given) < int(asked):
        return None
    currency = currency_from_number(sent.get("CE", ""))
    authorised, requested = (format_minor_units(int(value), currency).split()[0] for value in (given, asked))
    return {"authorised": authorised, "requested": requested, "currency": currency.code if currency else "?"}


ECHO_MODES = {
    "numeric": "CA, CD and CE byte for byte, CB as a number (zero-padding is no mismatch)",
    "exact": "CA, CD, CE and CB byte for byte, as strict POS software compares them",
    "off": "no comparison",
}
ECHOED_TAGS = ("CA", "CD", "CE")


def echo_mismatches(request: Message, answer: Message, mode: str = "numeric") -> list[str]:
    """Echoed records of a payment's answer that differ from the request, as a POS checks them on success.

    A CB lower than requested is a partial authorisation, reported as such, not a mismatch.
    """
    sent, got = dict(request), dict(answer)
    if mode == "off" or not codes.is_payment(sent.get("CD")):
        return []
    problems = [f"{tag} answered {got.get(tag)!r}, sent {sent[tag]!r}" for tag in ECHOED_TAGS
                if tag in sent and got.get(tag) != sent[tag]]  # fmt: skip
    if (
        "CB" in sent
        and _amount_differs(sent["CB"], got.get("CB", ""), mode)
        and not partial_authorisation(request, answer)
    ):
        problems.append(f"CB answered {got.get('CB')!r}, sent {sent['CB']!r}")
    return problems


def _amount_differs(sent: str, got: str, mode: str) -> bool:
    if mode == "exact" or not (sent.isdigit() and got.isdigit()):
        return sent != got
    return int(sent) != int(got)


def complement(af: str) -> dict[str, object]:
    """An AF value read as a POS should: the code is its first two characters, the rest the CB2A extension."""
    extension = af[2:]
    fields = None
    if extension and len(extension) <= codes.AF_EXTENSION_SIZE:
        fields, start = {}, 0
        for key, _, width in codes.AF_EXTENSION:
            fields[key] = extension[start : start + width].strip() or None
            start += width
    return {"code": af[:2], "meaning": codes.complement_meaning(af), "extension": extension or None, "fields": fields}


def _spans(messages: list[Message], start: int) -> list[tuple[int, int]]:
    spans = []
    for message in messages:
        end = start + len(encode(message))
        spans.append((start, end))
        start = end
    return spans
