"""The server's own terminal as the payment terminal's keypad: one key decides the oldest waiting transaction.

Active when stdin is a terminal and the server runs in its foreground (a
background job reading it would be stopped by SIGTTIN), unless --no-prompt.
Keys are read one at a time (cbreak mode, restored at exit) through Twisted's
``stdio``, so that the reactor never blocks on the keyboard.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from typing import NamedTuple

from twisted.internet import protocol, stdio

from . import outcomes
from .decisions import Decisions, Pending

BY_KEYBOARD = "keyboard"
ESC = "\x1b"


class Key(NamedTuple):
    key: str
    outcome: str  # in the outcome vocabulary
    words: str

    @property
    def name(self) -> str:
        """The key as a person calls it."""
        return "Enter" if self.key == "\r" else self.key

    @property
    def label(self) -> str:
        """'refused (AF=04)': the words, and the AF a failure answers, read from the outcome."""
        code = outcomes.parse(self.outcome).code
        return f"{self.words} (AF={code})" if code else self.words


KEYS = (
    Key("\r", "success", "approve"),
    Key("c", "success:cbcontactless", "contactless"),
    Key("a", "success:amexcontact", "Amex"),
    Key("r", "failure:refused", "refused"),
    Key("f", "failure:forbidden", "forbidden"),
    Key("x", "failure:abandon", "abandon"),
    Key("t", "failure:timeout", "time-out"),
    Key("s", "silent", "silent"),
)
BY_KEY = {key.key: key for key in KEYS} | {"\n": KEYS[0]}  # Enter is CR or LF, as the terminal sends it
HELP = " · ".join(f"{key.name} {key.label}" for key in KEYS) + " · ? list"


def waiting_line(pending: Pending) -> str:
    """'terminal 1 127.0.0.1:50312 POS 01: debit 12.00 EUR'"""
    brief = pending.brief  # computed once per transaction
    who = pending.peer if brief["pos"] is None else f"{pending.peer} POS {brief['pos']}"
    return f"terminal {pending.terminal} {who}: {brief['description']}"


class Keypad(protocol.Protocol):
    """Shows the oldest transaction waiting for a decision and decides it with the key pressed."""

    def __init__(self, desk: Decisions, write):
        self.desk = desk
        self.write = write  # where the log lines go too, so that both come in the order they happened
        self.shown: int | None = None  # id of the transaction the last prompt was about
        self.escape = ""  # an escape sequence being read (arrow and function keys): never a decision
        self.stop_watching = desk.events.subscribe(self._event)

    def connectionLost(self, reason=None) -> None:
        self.stop_watching()

    def dataReceived(self, data: bytes) -> None:
        for key in data.decode("latin-1"):
            if self.escape or key == ESC:
                self._escape(key)
            else:
                self.press(key)

    def _escape(self, key: str) -> None:
        """ESC [ A (an arrow) must not press 'a': skip a sequence to its final byte (ECMA-48: @ to ~)."""
        self.escape += key
        introduced = len(self.escape) >= 2 and self.escape[1] in "[O"
        if len(self.escape) >= 2 and (not introduced or (len(self.escape) > 2 and "@" <= key <= "~")):
            self.escape = ""

    def press(self, key: str) -> None:
        if key == "?":
            self._list()
            return
        chosen = BY_KEY.get(key.lower())
        if chosen is None:
            return
        waiting = self.desk.waiting()
        if not waiting:
            self._say("no transaction waits for a decision")
            return
        oldest = waiting[0]
        self._say(f"{chosen.label}: {waiting_line(oldest)}")
        self.desk.decide(oldest.id, outcomes.parse(chosen.outcome), BY_KEYBOARD)

    def _event(self, kind: str, data: dict) -> None:
        if kind != "pending":
            return
        waiting = self.desk.waiting()
        oldest = waiting[0] if waiting else None
        if oldest is not None and oldest.id != self.shown:
            more = f" ({len(waiting) - 1} more waiting)" if len(waiting) > 1 else ""
            self._say(f">>> {waiting_line(oldest)} waits for the customer{more}\n    {HELP}")
        self.shown = oldest.id if oldest else None

    def show_again(self) -> None:
        """The prompt of the oldest waiting transaction once more (the server was resumed after Ctrl-Z)."""
        self.shown = None
        self._event("pending", {})

    def _list(self) -> None:
        waiting = self.desk.waiting()
        lines = [f"  {n}. {waiting_line(p)}" for n, p in enumerate(waiting, 1)] or ["  none waiting"]
        self._say("\n".join(["transactions waiting for a decision, oldest first:", *lines, f"    {HELP}"]))

    def _say(self, text: str) -> None:
        self.write(text + "\n")


def interactive(fd: int) -> bool:
    """Whether ``fd`` is a terminal this process may read: in its foreground process group."""
    try:
        return os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False


def attach(desk: Decisions, reactor, stdin: int = 0, out=sys.stderr) -> Keypad | None:
    """Read single keys from ``stdin`` when it is an interactive terminal; write prompts to ``out``."""
    if not interactive(stdin):
        return None
    import termios
    import tty

    saved = termios.tcgetattr(stdin)
    tty.setcbreak(stdin)  # keys one at a time, not echoed; Ctrl-C still interrupts

    def restore() -> None:
        termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        os.set_blocking(stdin, True)  # stdio made the terminal non-blocking, for the shell too

    atexit.register(restore)

    def resumed(*_) -> None:  # after Ctrl-Z and fg the shell gives the terminal back as it keeps it
        tty.setcbreak(stdin)
        reactor.callFromThread(keypad.show_again)

    signal.signal(signal.SIGCONT, resumed)

    def write(text: str) -> None:
        out.write(text)
        out.flush()

    keypad = Keypad(desk, write)
    # stdio also wants somewhere to write: a copy of stdout that it may close; the prompts go to ``out``
    stdio.StandardIO(keypad, stdin=stdin, stdout=os.dup(1), reactor=reactor)
    return keypad
