"""Caisse-AP over IP records <-> bytes, without any I/O.

A message is a sequence of records ``TAG`` (2 chars) + ``LENGTH`` (3 digits)
+ ``VALUE`` (LENGTH chars), all ASCII, with no delimiter and no overall
length.  A message always starts with a CZ record, so over a TCP stream the
only structural boundary between two messages is the CZ that opens the next
one; when the last message of a stream is complete is a policy decision left
to the caller (see ``FrameDecoder.flush``).
"""

from __future__ import annotations

from collections.abc import Iterable

Record = tuple[str, str]
Message = list[Record]

HEADER_SIZE = 5
MAX_VALUE_SIZE = 999
DEFAULT_MAX_MESSAGE_SIZE = 16384
_TAG_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_TAG_BYTES = frozenset(_TAG_CHARS.encode())
_DIGITS = frozenset(b"0123456789")
_VALID_TAGS = frozenset(a + b for a in _TAG_CHARS for b in _TAG_CHARS)
_LENGTH_FIELDS = [f"{n:03d}" for n in range(MAX_VALUE_SIZE + 1)]  # 0 -> "000": cheaper than formatting
_LENGTH_VALUES = {field: n for n, field in enumerate(_LENGTH_FIELDS) if n}  # "001" -> 1; "000" is no length


class FrameError(ValueError):
    """Bytes that are not a valid Caisse-AP message; ``offset`` counts from the stream start."""

    def __init__(self, reason: str, offset: int):
        super().__init__(f"{reason} at byte {offset}")
        self.reason = reason
        self.offset = offset
        self.messages: list[Message] = []  # messages the same feed closed before the error


def is_valid_tag(tag: str) -> bool:
    return tag in _VALID_TAGS


def encode_record(tag: str, value: str) -> bytes:
    if not is_valid_tag(tag):
        raise ValueError(f"tag {tag!r} is not two upper-case letters or digits")
    if not value.isascii():
        raise ValueError(f"value of {tag} is not ASCII")
    if not 1 <= len(value) <= MAX_VALUE_SIZE:
        raise ValueError(f"value of {tag} has {len(value)} characters, allowed 1 to {MAX_VALUE_SIZE}")
    return f"{tag}{len(value):03d}{value}".encode("ascii")


def encode(records: Iterable[Record]) -> bytes:
    if not isinstance(records, list):
        records = list(records)
    parts = []
    for tag, value in records:
        if tag not in _VALID_TAGS or not 0 < len(value) <= MAX_VALUE_SIZE:
            encode_record(tag, value)  # raises with the reason
        parts.append(tag + _LENGTH_FIELDS[len(value)] + value)
    text = "".join(parts)
    if not text.isascii():
        for tag, value in records:
            encode_record(tag, value)
    return text.encode("ascii")


def decode(data: bytes, max_size: int | None = None) -> Message:
    """Decode bytes that hold exactly one whole message (a CZ record inside it starts no new one)."""
    decoder = FrameDecoder(max_size or max(len(data), 1), split_on_cz=False)
    decoder.feed(data)
    if not decoder.at_boundary:
        raise FrameError("truncated record", decoder.offset)
    return decoder.flush() or []


def walk(data: bytes) -> tuple[list[Message], int]:
    """The messages made of the whole, valid records at the start of ``data`` (each CZ opens a new one),
    and the offset where they end; what follows is a record not yet whole, or bytes that are no record."""
    messages: list[Message] = []
    pos = 0
    while pos + HEADER_SIZE <= len(data):
        header = data[pos : pos + HEADER_SIZE]
        length = _LENGTH_VALUES.get(header[2:].decode("latin-1"))
        tag = header[:2].decode("latin-1")
        end = pos + HEADER_SIZE + (length or 0)
        if length is None or tag not in _VALID_TAGS or end > len(data) or not data[pos + HEADER_SIZE : end].isascii():
            break
        if tag == "CZ" or not messages:
            messages.append([])
        messages[-1].append((tag, data[pos + HEADER_SIZE : end].decode("ascii")))
        pos = end
    return messages, pos


def is_record_start(data: bytes) -> bool:
    """Whether ``data`` may be the beginning of a record (tag, length, then ASCII), not yet whole."""
    for i, byte in enumerate(data[:HEADER_SIZE]):
        if byte not in (_TAG_BYTES if i < 2 else _DIGITS):
            return False
    if len(data) >= HEADER_SIZE and data[2:HEADER_SIZE] == b"000":
        return False
    return data[HEADER_SIZE:].isascii()


class FrameDecoder:
    """Cuts a byte stream, received in any pieces, into messages.

    ``feed`` yields every message that a following CZ record has closed; the
    last message stays open (``open_message``) until the caller decides it is
    complete and calls ``flush``.  Bytes are checked as soon as they arrive, so
    the first error raised is the first bad byte of the stream whatever way
    the stream was cut; after an error the decoder is unusable.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_MESSAGE_SIZE, *, split_on_cz: bool = True):
        self.max_size = max_size
        self.split_on_cz = split_on_cz
        self.partial = bytearray()  # the bytes of a record not yet whole
        self.offset = 0  # stream offset just past the last byte received
        self._open: Message = []
        self._open_start = 0  # stream offset of the open message's first byte

    @property
    def at_boundary(self) -> bool:
        return not self.partial

    @property
    def open_message(self) -> Message:
        return self._open

    def flush(self) -> Message | None:
        """Take the open message if it ends on a record boundary (None if empty or mid-record)."""
        if self.partial or not self._open:
            return None
        message, self._open = self._open, []
        self._open_start = self.offset
        return message

    def feed(self, data: bytes) -> list[Message]:
        """The messages that ``data`` closed; a FrameError carries in ``messages`` those closed before it."""
        closed: list[Message] = []
        try:
            self._consume(data, closed)
        except FrameError as error:
            error.messages = closed
            raise
        return closed

    def _consume(self, data: bytes, closed: list[Message]) -> None:
        pos = 0 if self.partial or not data.isascii() else self._consume_whole_records(data, closed)
        partial = self.partial
        while pos < len(data):
            record_start = self.offset - len(partial)
            if len(partial) < HEADER_SIZE:
                take = data[pos : pos + HEADER_SIZE - len(partial)]
            else:
                take = data[pos : pos + HEADER_SIZE + int(partial[2:HEADER_SIZE]) - len(partial)]
            limit = self._message_start(record_start, partial + take[:2]) + self.max_size
            allowed = take[: max(0, limit - self.offset)]
            if len(partial) < HEADER_SIZE:
                self._check_header(allowed, len(partial), self.offset)
            else:
                self._check_value(allowed, self.offset)
            if len(allowed) < len(take):
                raise FrameError(f"message longer than {self.max_size} bytes", limit)
            partial += take
            pos += len(take)
            self.offset += len(take)
            if len(partial) < HEADER_SIZE:
                continue
            length = int(partial[2:HEADER_SIZE])
            if length == 0:
                raise FrameError("record length is zero", record_start + 2)
            if len(partial) < HEADER_SIZE + length:
                continue
            tag = partial[:2].decode("ascii")
            if self._starts_message(tag):
                closed.append(self._open)
                self._open = []
            if not self._open:
                self._open_start = record_start
            self._open.append((tag, partial[HEADER_SIZE:].decode("ascii")))
            partial.clear()

    def _consume_whole_records(self, data: bytes, closed: list[Message]) -> int:
        """Fast path for the usual case: whole, valid ASCII records; stops where the careful path must take over."""
        text = data.decode("ascii")  # the caller checked data.isascii()
        pos, base, size = 0, self.offset, len(text)
        while True:
            length = _LENGTH_VALUES.get(text[pos + 2 : pos + HEADER_SIZE])
            if length is None or text[pos : pos + 2] not in _VALID_TAGS:
                break  # end of data, or a header the careful path must judge
            end = pos + HEADER_SIZE + length
            if end > size:
                break
            tag = text[pos : pos + 2]
            new_message = not self._open or (tag == "CZ" and self.split_on_cz)
            if base + end - (base + pos if new_message else self._open_start) > self.max_size:
                break
            if self._open and new_message:
                closed.append(self._open)
                self._open = []
            if new_message:
                self._open_start = base + pos
            self._open.append((tag, text[pos + HEADER_SIZE : end]))
            pos = end
        self.offset = base + pos
        return pos

    def _starts_message(self, tag: bytes | str) -> bool:
        return self.split_on_cz and bool(self._open) and tag in ("CZ", b"CZ")

    def _message_start(self, record_start: int, record_head: bytes) -> int:
        head = bytes(record_head[:2])
        if len(head) < 2 and self.split_on_cz and b"CZ".startswith(head):
            return record_start  # perhaps the CZ of the next message: judged when its second byte comes
        if self._open and not self._starts_message(head):
            return self._open_start
        return record_start

    def _check_header(self, chunk: bytes, start: int, offset: int) -> None:
        for i, byte in enumerate(chunk):
            where = start + i
            if byte >= 0x80:
                raise FrameError("non-ASCII byte", offset + i)
            if where < 2 and byte not in _TAG_BYTES:
                raise FrameError("tag is not two upper-case letters or digits", offset + i)
            if where >= 2 and byte not in _DIGITS:
                raise FrameError("length is not three digits", offset + i)

    def _check_value(self, chunk: bytes, offset: int) -> None:
        if not chunk.isascii():
            first = next(i for i, byte in enumerate(chunk) if byte >= 0x80)
            raise FrameError("non-ASCII byte", offset + first)
