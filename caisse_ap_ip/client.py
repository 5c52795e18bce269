"""The POS side: build a request, send it, read the whole answer however TCP cuts it."""

from __future__ import annotations

import base64
import logging
import socket
import time
from collections.abc import Callable
from decimal import Decimal
from typing import NamedTuple

from iso4217 import Currency

from . import codes
from .amounts import currency_number, encode_amount, to_minor_units
from .answers import AnswerReader, Expectation, Progress
from .protocol import FrameError, Message, decode, encode

DEFAULT_TIMEOUT = 180.0  # a customer may take minutes; the original client waited 180 s too
DEFAULT_QUIET_TIME = 0.3  # an answer ending on a record boundary is complete after this much silence
log = logging.getLogger("caisse_ap_ip.client")
POS_SOFTWARE_ID = "012345678901"  # CJ: allocated by the AP to POS vendors; terminals do not check it


class ClientError(Exception):
    """No usable answer: the message says why, in words for the person at the POS."""


class Exchange(NamedTuple):
    request: Message | bytes
    request_bytes: bytes
    answer: Message  # the final answer (after an interim AE=11, the one that followed it)
    answer_bytes: bytes
    elapsed: float  # seconds from sending the request to the answer's last byte
    closed_by_terminal: bool
    interim: Message | None = None  # an AE=11 that came before the final answer
    trailing: bytes = b""  # bytes after the answer: CR LF, NUL, garbage, or further messages
    final_missing: bool = False  # an interim AE=11 came, and no final answer before the time-out or the close


DEFAULT_PRINT_TEXT = "IMPRESSION DE TEST\n"


def build_request(
    action: str = "debit",
    amount: Decimal = Decimal("112.45"),
    currency: Currency = Currency.EUR,
    *,
    check: bool = False,
    pos_number: str = "01",
    immediate: bool = False,
    ticket: str | None = None,
    ticket_format: str = "text",
    private_data: str | None = None,
    reference: str | None = None,
    version: str = codes.DEFAULT_VERSION,
    print_text: str | None = None,
) -> Message:
    """A request as a cash register builds it; payments in the original client's tag order.

    A negative amount makes a debit a refund (CD=1), as in the original client.
    """
    records = [("CZ", version), ("CJ", POS_SOFTWARE_ID), ("CA", pos_number)]
    chosen = codes.REFUND if action == codes.DEBIT.name and amount < 0 else codes.ACTION_BY_NAME[action]
    if chosen.payment:
        records += [
            ("CE", currency_number(currency)),
            ("BA", codes.IMMEDIATELY if immediate else codes.AT_THE_END),
            ("CD", chosen.code),
            ("CB", encode_amount(to_minor_units(amount, currency))),
        ]
        if check:
            records.append(("CC", codes.CHECK_APPLICATION))
    else:
        records.append(("CD", chosen.code))
    if chosen is codes.DUPLICATE and ticket is None:
        ticket = "customer"
    fmt = codes.TICKET_FORMATS[ticket_format]
    if ticket is not None:
        records.append(("CK", f"{codes.TICKETS_RETURNED}{codes.TICKET_COPIES[ticket]}{fmt}"))
    if chosen is codes.PRINT:
        text = (print_text or DEFAULT_PRINT_TEXT).encode("latin-1")
        ck = f"{codes.TICKETS_RETURNED}{codes.TICKET_COPIES['customer']}{fmt}"
        buffer = encode([("CK", ck), ("AK", base64.b64encode(text).decode())])
        records.append(("ZT", buffer.decode("ascii")))
    if private_data is not None:
        records.append(("CF", private_data))
    if reference is not None:
        records.append(("CH", reference))
    return records


def payment_request(amount: Decimal, currency: Currency, *, check: bool = False) -> Message:
    """The request the original client sends; a negative amount is a refund (CD=1)."""
    return build_request("debit", amount, currency, check=check)


def with_records(request: Message, extra: Message) -> Message:
    """``request`` with each extra record replacing the one of the same tag, or appended."""
    replaced = dict(extra)
    result = [(tag, replaced.pop(tag, value)) for tag, value in request]
    return result + [(tag, value) for tag, value in extra if tag in replaced]


def transact(
    host: str,
    port: int,
    request: Message | bytes,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    quiet_time: float = DEFAULT_QUIET_TIME,
    expectation: Expectation | None = None,
    progress: Callable[[float], None] | None = None,
) -> Exchange:
    """Send one request (records, or raw bytes sent as they are) on a new connection; return the whole answer.

    ``expectation`` says what a whole answer carries (by default, what this request's answer does from the
    original profile); ``progress`` is called about once a second with the seconds waited so far.
    """
    request_bytes = request if isinstance(request, bytes) else encode(request)
    if expectation is None:
        expectation = Expectation.of(records_of(request))
    where = f"{host}:{port}"
    try:
        connection = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise ClientError(f"connection refused by {where}: is the terminal listening?") from None
    except TimeoutError:
        raise ClientError(f"no connection to {where} within {timeout:g} s") from None
    except OSError as error:
        raise ClientError(f"cannot connect to {where}: {error.strerror or error}") from None
    reader = AnswerReader(expectation)
    with connection:
        started = time.monotonic()
        try:
            connection.sendall(request_bytes)
            log.debug("sent %d bytes to %s: %s", len(request_bytes), where, request_bytes)
            wait = _Wait(started, timeout, quiet_time, progress)
            closed = _read_answer(connection, reader, wait)
        except OSError as error:
            raise ClientError(f"connection to {where} failed: {error.strerror or error}") from None
    return _exchange(request, request_bytes, reader, wait, closed, where)


class _Wait:
    """How long to wait for the next bytes: the time-out, or the quiet time once on a record boundary."""

    def __init__(self, started: float, timeout: float, quiet_time: float, progress: Callable[[float], None] | None):
        self.started, self.timeout, self.quiet_time, self.progress = started, timeout, quiet_time, progress
        self.last_byte_at = started
        self.timed_out = False

    def next_timeout(self, state: Progress) -> float | None:
        """Seconds to wait for the next bytes, or None when the wait is over."""
        now = time.monotonic()
        end = self.started + self.timeout
        if state is Progress.QUIET:
            end = min(end, self.last_byte_at + self.quiet_time)
        if now >= end:
            self.timed_out = state is not Progress.QUIET
            return None
        if self.progress is not None:
            self.progress(now - self.started)
            return min(end - now, 1.0)
        return end - now


def _read_answer(connection: socket.socket, reader: AnswerReader, wait: _Wait) -> bool:
    """Read until the answer is whole, malformed, the wait is over, or the terminal closes (returns True)."""
    state = reader.progress
    while state in (Progress.WAITING, Progress.QUIET):
        seconds = wait.next_timeout(state)
        if seconds is None:
            return False
        connection.settimeout(seconds)
        try:
            data = connection.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
        if not data:
            return True
        wait.last_byte_at = time.monotonic()
        log.debug("received %d bytes: %s", len(data), data)
        state = reader.receive(data)
    return _already_closed(connection)


def _already_closed(connection: socket.socket) -> bool:
    """Whether the terminal's close has arrived by now, without waiting for it."""
    connection.setblocking(False)  # with a time-out set, Python would wait for the byte first
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def _exchange(request, request_bytes, reader: AnswerReader, wait: _Wait, closed: bool, where: str) -> Exchange:
    if not reader.usable:
        if wait.timed_out:
            raise ClientError(f"no complete answer from {where} within {wait.timeout:g} s")
        raise ClientError(reader.problem(where))
    final = reader.final
    return Exchange(
        request=request,
        request_bytes=request_bytes,
        answer=final,
        answer_bytes=encode(final),
        elapsed=wait.last_byte_at - wait.started,
        closed_by_terminal=closed,
        interim=reader.interim,
        trailing=reader.trailing,
        final_missing=reader.awaiting_final,
    )


def records_of(request: Message | bytes) -> Message | None:
    """The records of a request, given as records or as raw bytes (None if those are no valid frame)."""
    if not isinstance(request, bytes):
        return request
    try:
        return decode(request)
    except FrameError:
        return None
