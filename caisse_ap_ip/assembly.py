"""Request assembly: bytes from one POS in, whole requests out, without I/O or clock.

The shape is that of h11's ``Connection``: the caller hands over whatever the
network gave with ``receive_data`` (``b""`` when the POS has shut its sending
side down) and, whenever it is ready to handle a request, asks ``next_event``,
which answers one of:

``Request(records)``
    a whole request;
``Wait.NEED_DATA``
    nothing whole yet: wait for more bytes;
``Wait.INCOMPLETE``
    a request ends on a record boundary but lacks a mandatory tag: wait the
    assembly time for more records, then call ``assembly_expired`` and ask
    again (it is then whole, and answered AF=09 by the terminal);
``Malformed(error, records)``
    a byte that cannot belong to a valid frame; ``records`` is the request as
    far as it was read, for the echo.  Nothing more is read after it;
``Wait.END``
    the POS has closed its side and every request has been taken.

Caisse-AP has no delimiter: a CZ record starts the next request and closes
the one before; the last one is whole when the predicate given (the
terminal's "holds every mandatory tag") says so, when the assembly time is
up, or at EOF if it ends on a record boundary.  Records without a CZ of their
own that arrive while the caller is busy with a request belong to that
request: the caller collects them with ``late_records`` before answering.
``pending`` counts the whole requests waiting, for back-pressure.

Requests closed before a malformed byte come out first, in order, then the
``Malformed`` event.  See docs/protocol.md §2.4 for the framing rules.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .protocol import DEFAULT_MAX_MESSAGE_SIZE, FrameDecoder, FrameError, Message


class Wait(enum.Enum):
    """Answers of ``next_event`` that carry no request."""

    NEED_DATA = "need data"
    INCOMPLETE = "incomplete: arm the assembly timer"
    END = "end of input"


@dataclass(frozen=True, slots=True)
class Request:
    records: Message


@dataclass(frozen=True, slots=True)
class Malformed:
    error: FrameError
    records: Message  # the request as far as it was read


Event = Request | Malformed | Wait


def _opens_request(message: Message) -> bool:
    return message[0][0] == "CZ"


class RequestAssembly:
    """Cuts one POS's byte stream into whole requests; see the module docstring."""

    def __init__(self, is_complete: Callable[[Message], bool], max_size: int = DEFAULT_MAX_MESSAGE_SIZE):
        self._decoder = FrameDecoder(max_size)
        self._is_complete = is_complete
        self._whole: deque[Message] = deque()  # closed by the CZ of the next request
        self._malformed: Malformed | None = None
        self._eof = False
        self._expired = False  # the assembly time of the open request is up

    def receive_data(self, data: bytes) -> None:
        """Bytes as received, in any pieces; ``b""`` means the POS will send nothing more."""
        if self._malformed is not None or self._eof:
            return  # nothing after a bad byte or EOF can be part of a request
        if not data:
            self._eof = True
            return
        self._expired = False  # new bytes: an incomplete request's wait starts again
        try:
            self._whole.extend(self._decoder.feed(data))
        except FrameError as error:
            self._whole.extend(error.messages)
            self._malformed = Malformed(error, self._decoder.open_message)

    def next_event(self) -> Event:
        if self._whole:
            return Request(self._whole.popleft())
        if self._malformed is not None:
            return self._malformed
        decoder = self._decoder
        open_message = decoder.open_message
        if open_message and decoder.at_boundary:
            if self._eof or self._expired or self._is_complete(open_message):
                self._expired = False
                return Request(decoder.flush())
            return Wait.INCOMPLETE
        return Wait.END if self._eof else Wait.NEED_DATA

    def assembly_expired(self) -> None:
        """The assembly time is up: the open request, if it ends on a record boundary, is whole."""
        self._expired = True

    def late_records(self) -> Message:
        """Records without a CZ of their own, received since the last request was taken: they belong to it."""
        if self._whole and not _opens_request(self._whole[0]):
            return self._whole.popleft()
        decoder = self._decoder
        open_message = decoder.open_message
        if open_message and decoder.at_boundary and not _opens_request(open_message):
            return decoder.flush()
        return []

    @property
    def pending(self) -> int:
        """Whole requests waiting to be taken (the caller stops reading at its limit)."""
        return len(self._whole)

    @property
    def receiving(self) -> bool:
        """Whether a request has started arriving and is not whole yet (mid-record, or lacking a tag)."""
        decoder = self._decoder
        if self._malformed is not None or self._eof:
            return False
        if decoder.partial:
            return True
        open_message = decoder.open_message
        return bool(open_message) and _opens_request(open_message) and not self._is_complete(open_message)

    @property
    def unfinished(self) -> Message:
        """The records of the request being received, as far as they are whole."""
        return self._decoder.open_message

    @property
    def holds_bytes(self) -> bool:
        """Whether anything received is not taken yet (a request, records or part of one)."""
        decoder = self._decoder
        return bool(self._whole or decoder.open_message or decoder.partial)
