"""The outcome ``replay``: the answer a real terminal gave, recorded by the proxy, given to a new request.

A recording keeps the request the terminal answered, what the terminal sent back (as it sent it: several
messages, stray bytes and all) and how it cut that answer (``segments``: seconds after the request's first
byte, bytes). Given to a new request (docs/protocol.md §17.1):

- a record the terminal echoed from the recorded request (same tag, same value) is taken from the new
  request: the POS's own CJ, CA, CF, CH ... come back as this POS sent them, or not at all if it did not;
- every other record comes from the recording: AE, AF, card data, tickets, and what the terminal put in
  place of an echo (its own CZ or CJ, a zero-padded CB, a CF of its own);
- a record the new request has and the recorded one had not is echoed as the simulator echoes (``echo``).

With ``timing = "recorded"`` the answer leaves as the terminal sent it: first piece after the recorded time,
then each piece at its own pause; otherwise it leaves like any simulated answer (after ``-d``, in one write).
``closes = true``: the terminal closed the connection after its answer, and so does the replay.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from .protocol import FrameError, Message, decode, encode, walk

TIMINGS = {
    "simulated": "the simulator's timing: after -d (or delay=), in one write (or fragments=)",
    "recorded": "the terminal's own: each segment of the recording at its time after the request",
}
KEYS = ("timing", "request", "answer", "segments", "closes")  # what a replay outcome's table adds to the others'


class RecordingError(ValueError):
    pass


@dataclass(frozen=True)
class Recording:
    request: bytes  # the request the terminal answered, as the POS sent it
    answer: bytes  # what the terminal sent for it, as received
    segments: tuple[tuple[float, int], ...] = ()  # the answer as cut: (seconds after the request, bytes)
    timed: bool = False  # timing = "recorded"
    closes: bool = False  # the terminal closed the connection after its answer

    @property
    def first_at(self) -> float:
        """Seconds from the request to the first byte of the answer."""
        return self.segments[0][0] if self.segments else 0.0

    def answer_to(self, request: Message, echo: Callable[[Message], dict[str, str]]) -> tuple[Message, bytes]:
        """(the last message, every byte to send) of the recorded answer given to ``request``."""
        recorded, new = dict(decode(self.request)), dict(request)
        echoed = echo(request)
        messages, end = walk(self.answer)
        answered = [_echoing(message, recorded, new, echoed) for message in messages]
        wire = b"".join(encode(message) for message in answered) + self.answer[end:]
        return (answered[-1] if answered else []), wire

    def pieces(self, data: bytes) -> list[tuple[bytes, float]]:
        """``data`` cut where the terminal cut its answer, each piece with the pause after it; when ``data`` is
        longer or shorter than the recording (another CF, say), the last piece takes up the difference."""
        cuts = [cut for cut in itertools.accumulate(size for _, size in self.segments[:-1]) if cut < len(data)]
        bounds = [0, *cuts, len(data)]
        times = [at for at, _ in self.segments]
        return [
            (data[start:end], max(0.0, times[i + 1] - times[i]) if i + 1 < len(times) else 0.0)
            for i, (start, end) in enumerate(itertools.pairwise(bounds))
        ]

    def table(self) -> dict[str, object]:
        """The keys a scenario file or the control API gives this recording with."""
        return {
            "timing": "recorded" if self.timed else "simulated",
            "request": self.request.decode("latin-1"),
            "answer": self.answer.decode("latin-1"),
            "segments": [{"at": at, "size": size} for at, size in self.segments],
            "closes": self.closes,
        }


def _echoing(message: Message, recorded: dict[str, str], new: dict[str, str], echoed: dict[str, str]) -> Message:
    """``message`` of the recording given to the request ``new``; ``echoed``: what the simulator echoes of it."""
    answered = []
    for tag, value in message:
        if recorded.get(tag) != value:
            answered.append((tag, value))  # the terminal's own record
        elif tag in new:
            answered.append((tag, new[tag]))  # an echo: this request's value
    present = {tag for tag, _ in message}
    return answered + [(tag, value) for tag, value in echoed.items() if tag not in recorded.keys() | present]


def from_table(table: dict[str, object]) -> Recording:
    """A recording from the keys of a replay outcome's table; raises RecordingError saying what is wrong."""
    for key in ("request", "answer"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise RecordingError(
                f"replay needs the recorded {key} as text (scenario files written by "
                "'caisse-ap-ip-server journal PATH --export-scenario FILE' have it)"
            )
    timing = table.get("timing", "simulated")
    if timing not in TIMINGS:
        raise RecordingError(f"timing {timing!r} is not {' or '.join(TIMINGS)}")
    request, answer = _latin1("request", table["request"]), _latin1("answer", table["answer"])
    try:
        decode(request)
    except FrameError as error:
        raise RecordingError(f"the recorded request is no Caisse-AP message: {error}") from None
    segments = _segments(table.get("segments", []))
    if timing == "recorded" and not segments:
        raise RecordingError('timing = "recorded" needs the segments of the recording')
    closes = table.get("closes", False)
    if not isinstance(closes, bool):
        raise RecordingError("closes is true or false")
    return Recording(request, answer, segments, timing == "recorded", closes)


def _latin1(key: str, text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise RecordingError(f"the recorded {key} holds characters that are no bytes (Latin-1)") from None


def _segments(given: object) -> tuple[tuple[float, int], ...]:
    if not isinstance(given, list):
        raise RecordingError("segments is a list of { at = SECONDS, size = BYTES }")
    segments = []
    for segment in given:
        at, size = (segment.get("at"), segment.get("size")) if isinstance(segment, dict) else (None, None)
        if not isinstance(at, int | float) or isinstance(at, bool) or not 0 <= at < math.inf:
            raise RecordingError(f"segment {segment!r}: at is seconds after the request, a number >= 0")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise RecordingError(f"segment {segment!r}: size is a number of bytes >= 1")
        segments.append((float(at), size))
    return tuple(segments)
