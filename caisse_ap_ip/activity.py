"""What a person watching the server sees: one line per transaction, and floods of warnings summarised.

    12:04:31,201 INFO 127.0.0.1:53012 POS 01 debit 112.45 EUR: success CB/Visa/Mastercard contact, auth 435613 in 3.00 s
    12:04:33,912 INFO 127.0.0.1:53018 POS 01 debit 112.45 EUR: success ... in 2.91 s, proxied to 192.0.2.50:8888 \
        (answer in 2 segments, closed by the terminal)
    12:04:40,876 WARNING 127.0.0.1:53020 malformed: non-ASCII byte at byte 0: answered AF=09 and closed
    12:04:41,002 WARNING ... 4180 more malformed requests in the last 10 s

Pure formatting and counting: the server calls it, the clock is given.
"""

from __future__ import annotations

from collections.abc import Callable

from . import codes, display
from .protocol import Message, walk

SUCCESS, FAILURE, OTHER = "success", "failure", "other"  # the tone of a result, for colours
SHOWN_PER_WINDOW = 5  # warnings of one kind shown in a window before they are only counted
WINDOW = 10.0  # seconds


def transaction_line(
    peer: str, request: Message, answer: bytes | None, note: object, took: float, relayed=None
) -> tuple[str, str]:
    """(the line, its tone) for one transaction: who, what, the result in words with its codes, how long, and
    for a transaction relayed to a real terminal (``journal.Relayed``), which one and how it answered."""
    fields = dict(request)
    who = f"{peer} POS {fields['CA']}" if "CA" in fields else peer
    words, tone = result_words(answer, note)
    what = f" {display.summary(request)}" if "CD" in fields else ""  # no action to name: the peer alone
    line = f"{who}{what}: {words} in {took:.2f} s"
    if relayed is not None and relayed.reached:  # an unreachable terminal is named by the note already
        line += f", proxied to {relayed.terminal} ({relay_words(relayed)})"
    return line, tone


def relay_words(relayed) -> str:
    """'answer in 2 segments, closed by the terminal', 'no answer', ..."""
    count = len(relayed.answer_segments)
    words = f"answer in {count} segment{'s' if count > 1 else ''}" if count else "no answer from the terminal"
    if relayed.terminal_closed is None:
        return words
    after = relayed.pos_half_closed is not None and relayed.pos_half_closed <= relayed.terminal_closed
    return words + (", closed by the terminal after the POS's half-close" if after else ", closed by the terminal")


def result_words(answer: bytes | None, note: object) -> tuple[str, str]:
    """'success CB/Visa/Mastercard contact, auth 435613', 'refused (AF=04)', 'silent', 'malformed: ...'."""
    final = _final_answer(answer)
    status = dict(final).get("AE") if final else None
    tone = SUCCESS if status == codes.SUCCESS else FAILURE if status == codes.FAILURE else OTHER
    if isinstance(note, str):  # said by the server: busy, malformed, left before the answer, ...
        code = dict(final).get("AF", "")[:2] if final else ""
        return (f"{note} (AF={code})" if code and "AF=" not in note else note), tone
    if final is None or status is None:
        kind = getattr(note, "kind", None)
        return (kind if kind in ("silent", "close", "reset", "garbage", "truncated") else "no answer"), OTHER
    return _status_words(dict(final)), tone


def _status_words(fields: dict[str, str]) -> str:
    status = fields["AE"]
    if status == codes.SUCCESS:
        words = "success"
        if fields.get("CC") in codes.APPLICATIONS:
            words += f" {codes.APPLICATIONS[fields['CC']]}"
        return words + (f", auth {fields['AC']}" if "AC" in fields else "")
    if status == codes.FAILURE:
        af = fields.get("AF", "")
        return f"{codes.complement_meaning(af) or 'failure'} (AF={af[:2]})" if af else "failure (no AF)"
    if status == codes.ACKNOWLEDGED:
        return "acknowledged (AE=11)"
    return f"status AE={status}"


def _final_answer(answer: bytes | None) -> Message | None:
    """The last message of what was sent (after an interim AE=11, the final one), or None."""
    if not answer:
        return None
    messages, _ = walk(answer)
    return messages[-1] if messages else None


class WarningLimiter:
    """Lets the first few warnings of each kind through per window, counts the rest, and says how many."""

    def __init__(self, clock: Callable[[], float], shown: int = SHOWN_PER_WINDOW, window: float = WINDOW):
        self.clock, self.shown, self.window = clock, shown, window
        self._windows: dict[str, tuple[float, int, int]] = {}  # kind -> (window start, shown, held back)

    def allow(self, kind: str) -> bool:
        now = self.clock()
        start, shown, held = self._windows.get(kind, (now, 0, 0))
        if now - start >= self.window and not held:
            start, shown = now, 0
        if shown < self.shown:
            self._windows[kind] = (start, shown + 1, held)
            return True
        self._windows[kind] = (start, shown, held + 1)
        return False

    def summaries(self) -> list[str]:
        """'... 4180 more malformed requests in the last 10 s' for each kind whose window is over with warnings
        held back; that kind's next warnings are shown again."""
        now, lines = self.clock(), []
        for kind, (start, _, held) in list(self._windows.items()):
            if now - start >= self.window:
                if held:
                    lines.append(f"... {held} more {kind} in the last {now - start:.0f} s")
                del self._windows[kind]
        return lines
