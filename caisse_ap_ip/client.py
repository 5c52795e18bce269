"""The POS side: build a request, send it, read the whole answer however TCP cuts it."""

from __future__ import annotations

import base64
import logging
import socket
import time
from dataclasses import dataclass
from decimal import Decimal

from iso4217 import Currency

from . import codes
from .amounts import currency_number, encode_amount, to_minor_units
from .protocol import FrameDecoder, FrameError, Message, encode

DEFAULT_TIMEOUT = 180.0  # a customer may take minutes; the original client waited 180 s too
DEFAULT_QUIET_TIME = 0.3  # an answer ending on a record boundary is complete after this much silence
MAX_ANSWER_SIZE = 65536
log = logging.getLogger("caisse_ap_ip.client")
POS_SOFTWARE_ID = "012345678901"  # CJ: allocated by the AP to POS vendors; terminals do not check it


class ClientError(Exception):
    """No usable answer: the message says why, in words for the person at the POS."""


@dataclass
class Exchange:
    request: Message | bytes
    request_bytes: bytes
    answer: Message
    answer_bytes: bytes
    elapsed: float  # seconds from sending the request to the answer's last byte
    closed_by_terminal: bool


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
) -> Exchange:
    """Send one request (records, or raw bytes sent as they are) on a new connection; return the whole answer."""
    request_bytes = request if isinstance(request, bytes) else encode(request)
    where = f"{host}:{port}"
    try:
        connection = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise ClientError(f"connection refused by {where}: is the terminal listening?") from None
    except TimeoutError:
        raise ClientError(f"no connection to {where} within {timeout:g} s") from None
    except OSError as error:
        raise ClientError(f"cannot connect to {where}: {error.strerror or error}") from None
    with connection:
        started = time.monotonic()
        try:
            connection.sendall(request_bytes)
            log.debug("sent %d bytes to %s: %s", len(request_bytes), where, request_bytes)
            answer_bytes, closed, finished = _read_answer(connection, started + timeout, quiet_time)
        except TimeoutError:
            raise ClientError(f"no complete answer from {where} within {timeout:g} s") from None
        except OSError as error:
            raise ClientError(f"connection to {where} failed: {error.strerror or error}") from None
    answer = _decode_answer(answer_bytes, where)
    return Exchange(request, request_bytes, answer, answer_bytes, finished - started, closed)


def _read_answer(connection: socket.socket, deadline: float, quiet_time: float) -> tuple[bytes, bool, float]:
    """Read until the terminal closes, a second message starts, or a whole answer is followed by silence.

    Returns the bytes, whether the terminal closed the connection, and when the last byte came.
    """
    decoder = FrameDecoder(MAX_ANSWER_SIZE)
    received = bytearray()
    last_byte_at = time.monotonic()
    while True:
        remaining = deadline - time.monotonic()
        whole = bool(decoder.at_boundary and decoder.open_message)
        if remaining <= 0:
            if whole:
                return bytes(received), False, last_byte_at
            raise TimeoutError
        connection.settimeout(min(quiet_time, remaining) if whole else remaining)
        try:
            data = connection.recv(65536)
        except TimeoutError:
            if whole:
                return bytes(received), False, last_byte_at
            raise
        except ConnectionResetError:
            if whole:
                return bytes(received), True, last_byte_at
            raise
        if not data:
            return bytes(received), True, last_byte_at
        last_byte_at = time.monotonic()
        log.debug("received %d bytes: %s", len(data), data)
        received += data
        try:
            closed = decoder.feed(data)
        except FrameError as error:  # reported with its position by _decode_answer, unless an answer came first
            closed = error.messages or [None]
        if closed:  # a CZ began a second message: the first one is whole
            return (encode(closed[0]) if closed[0] else bytes(received)), False, last_byte_at


def _decode_answer(answer_bytes: bytes, where: str) -> Message:
    if not answer_bytes:
        raise ClientError(f"{where} closed the connection without answering")
    decoder = FrameDecoder(MAX_ANSWER_SIZE)
    try:
        messages = decoder.feed(answer_bytes)
    except FrameError as error:
        raise ClientError(f"malformed answer from {where}: {error}") from None
    if not decoder.at_boundary:
        raise ClientError(f"malformed answer from {where}: truncated record at byte {decoder.offset}")
    return messages[0] if messages else decoder.flush()


def echo_mismatches(request: Message, answer: Message) -> list[str]:
    """Echoed tags that differ from the request, as a POS checks them on success (amount: zeros aside)."""
    sent, got = dict(request), dict(answer)
    if not codes.is_payment(sent.get("CD")):
        return []  # only payments echo the amount
    problems = []
    for tag in ("CA", "CD", "CE"):
        if tag in sent and got.get(tag) != sent[tag]:
            problems.append(f"{tag} answered {got.get(tag)!r}, sent {sent[tag]!r}")
    if "CB" in sent and got.get("CB", "").lstrip("0") != sent["CB"].lstrip("0"):
        problems.append(f"CB answered {got.get('CB')!r}, sent {sent['CB']!r}")
    return problems
