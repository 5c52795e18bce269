"""Between a POS and a real terminal (``--proxy HOST:PORT``): each POS connection relayed byte for byte, and
journaled like a simulated transaction, with the TCP segments of both directions.

    POS <--> PosSide <--> TerminalSide <--> the real terminal

Whatever the POS sends is written to the terminal as it comes, and whatever the terminal sends is written to
the POS as it comes: how the terminal cuts its answer, and when, is what is being watched, so the forwarding
path holds nothing back. Watching needs no buffering either: ``assembly.RequestAssembly`` says where the POS's
requests end (each then gets its outcome, as a simulated one does: queue, scenario, --outcome), and
``answers.AnswerReader`` where the terminal's answer to it ends (what follows is the next one's, ``_cut``).
An outcome that changes the answer (delay, fragments, truncated, the simulator's own answer in its place ...)
holds the terminal's answer until it is whole, then acts (``_act``; README "Between a POS and a real
terminal" says what each kind does).

A transaction is journaled once its answer is whole and the terminal has had ``CLOSE_WATCH`` seconds to close,
or sooner: the terminal closes, it answers the next request, or the POS leaves.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections import deque
from dataclasses import dataclass, field

from twisted.internet import error, protocol
from twisted.internet.interfaces import IPushProducer, ITCPTransport
from zope.interface import implementer

from . import display
from .answers import MAX_ANSWER_SIZE, STRAY, AnswerReader, Expectation, Progress
from .assembly import Malformed, Request
from .client import DEFAULT_QUIET_TIME
from .journal import POS, TERMINAL, Relayed
from .outcomes import CRLF, DEFAULT, GARBAGE, pieces, truncate
from .protocol import Message, encode, serial_framing, walk
from .server import MAX_PIPELINED, Phase, TerminalConnection, TerminalFactory
from .terminal import PADDED_WIDTH, Plan

log = logging.getLogger("caisse_ap_ip.proxy")

DEFAULT_CONNECT_TIMEOUT = 5.0  # seconds for the terminal to take a connection (--proxy-timeout)
CLOSE_WATCH = 1.0  # seconds a whole answer waits for the terminal's close before it is journaled
MAX_SEGMENTS = 1000  # segments kept per transaction; the ones after are relayed all the same
AS_IS = Plan(DEFAULT, 0.0)  # what the terminal sends when no request of the POS is whole (yet): relayed as is


def _padded_amounts(answer: bytes) -> bytes:
    """The answer with each CB zero-padded to 12 digits (padded-amount), whatever follows its records kept."""
    messages, end = walk(answer)
    padded = [[(tag, value.zfill(PADDED_WIDTH) if tag == "CB" else value) for tag, value in m] for m in messages]
    return b"".join(encode(message) for message in padded) + answer[end:]


# What each outcome kind (outcomes.KINDS; delay and fragments are "answer" with a modifier) does to the real
# terminal's answer; tests/test_proxy.py checks that every kind is in exactly one of these.
# The terminal's answer reaches the POS as it is; with ask, the real terminal's customer is the one who decides.
RELAYED = frozenset({"answer", "success", "pending", "ask"})
RESHAPED = {"truncated": truncate, "crlf": lambda answer: answer + CRLF, "padded-amount": _padded_amounts}
DROPPED = frozenset({"silent", "immediate", "close", "reset"})  # the POS never gets the terminal's answer
REPLACED = frozenset({"failure", "extended-af", "partial", "garbage", "replay"})  # the simulator's answer instead


class Hold(enum.Enum):
    """Why a side is not read."""

    DIALING = "what the POS sent waits for the terminal to take the connection"
    PIPELINED = "MAX_PIPELINED requests wait for the terminal, as the simulated terminal stops reading ahead"
    FULL = "the other side's transport has too much to send (Twisted pauses the producer registered with it)"


class Watch(enum.Enum):
    QUIET = "the terminal's silence after an answer that ends on a record boundary but lacks something expected"
    CLOSE = "CLOSE_WATCH after a whole answer, for the terminal's close"
    OUTBOX = "the delay or pause before what the POS gets next"


@dataclass(frozen=True, slots=True)
class Step:
    """What the POS gets next: after ``wait`` seconds, ``data``, then perhaps the end of the line."""

    wait: float = 0.0
    data: bytes = b""
    then: str | None = None  # "close" or "reset"


@dataclass(eq=False)
class Relay:
    """One transaction through the proxy: the POS's request, the terminal's answer, and how both came."""

    started: float  # reactor time of the request's first byte
    request: Message | None = None  # once whole
    received: bytearray = field(default_factory=bytearray)  # the POS's bytes while this request was arriving
    unreadable: str | None = None  # why the request cannot be read; it is kept as received
    plan: Plan | None = None
    reader: AnswerReader | None = None  # the terminal's answer to it
    through: bool = True  # the terminal's bytes go to the POS as they come
    answered_at: float | None = None  # reactor time of the answer's last byte so far
    whole_at: float | None = None  # ... once the answer is whole
    kept: int = 0  # once it is whole, the terminal's bytes that stay with it; what comes after is the next one's
    closed_at: float | None = None  # seconds after ``started`` when the terminal closed
    sent: bytearray = field(default_factory=bytearray)  # what the POS got for this request
    segments: list[tuple[str, float, int]] = field(default_factory=list)

    def segment(self, who: str, now: float, size: int) -> None:
        if len(self.segments) < MAX_SEGMENTS:
            self.segments.append((who, now - self.started, size))

    @property
    def request_frame(self) -> bytes:
        return encode(self.request) if self.request is not None else bytes(self.received)

    @property
    def answer(self) -> bytes:
        """What the terminal sent for this request."""
        return bytes(self.reader.received) if self.reader else b""


class PosSide(TerminalConnection):
    """One POS connection, relayed to the real terminal; the TerminalConnection it is keeps its bookkeeping
    (limits, journal, peer, timers, closing) and its reading of requests."""

    factory: ProxyFactory

    def connectionMade(self) -> None:
        super().connectionMade()
        if self.phase is Phase.REFUSED:
            return
        self.opened_at = self.received_at
        self.relays: deque[Relay] = deque()  # requests taken, in order: the terminal answers the first
        self.arriving: Relay | None = None  # the request whose bytes are coming
        self.unreadable_stream = False  # a byte no request can hold came: what follows is kept as received
        self.outbox: deque[Step] = deque()
        self.silenced = False  # outcome silent: nothing more reaches the POS
        self.terminal: TerminalSide | None = None
        self.held: list[bytes] = []  # what the POS sent before the terminal took the connection
        self.held_size = 0
        self.reading = _Reading(self.transport)
        self.coupled: _Reading | None = None  # the terminal's reading, while each side's waits for the other
        self.pos_done_at: float | None = None  # when the POS shut its sending side down
        self.dialing = True
        self.connector = self.factory.dial(self)
        _no_delay(self.transport)

    def _now(self) -> float:
        return self.factory.reactor.seconds()

    # -- from the POS

    def dataReceived(self, data: bytes) -> None:
        if self.phase is not Phase.READING:
            return
        now = self.last_activity = self._now()
        relay = self.arriving = self.arriving or Relay(now)
        relay.segment(POS, now, len(data))
        self._to_terminal(data)
        if len(relay.received) < self.factory.limits.max_message_size:
            relay.received += data
        _log_segment(self, "POS ->", data, now - relay.started)
        if not self.unreadable_stream:
            self.assembly.receive_data(data)
            self._take_requests()

    def _to_terminal(self, data: bytes) -> None:
        if self.terminal is not None:
            self.terminal.transport.write(data)
            return
        self.held.append(data)
        self.held_size += len(data)  # counted as it comes: summing the list each time grew with its square
        if self.held_size > self.factory.limits.max_message_size:
            self.reading.hold(Hold.DIALING)

    def readConnectionLost(self) -> None:
        """The POS has sent all it will: what ends on a record boundary is whole; the terminal is told."""
        self.pos_done_at = self._now()
        self.assembly.receive_data(b"")
        self._take_requests()
        if self.terminal is not None:
            self.terminal.transport.loseWriteConnection()

    def _take_requests(self, plan: bool = True) -> None:
        while not self.unreadable_stream:
            event = self.assembly.next_event()
            if type(event) is Request:
                relay, self.arriving = self.arriving or Relay(self._now()), None
                relay.request = event.records
                if plan:
                    self._plan(relay)
                self.relays.append(relay)
            elif type(event) is Malformed:
                self._unreadable(event)
            else:
                break
        if self.arriving is None and self.assembly.holds_bytes and not self.unreadable_stream:
            self.arriving = Relay(self._now())  # the next request began in the same segment
        self._watch_backlog()

    def _watch_backlog(self) -> None:
        """The POS is not read while MAX_PIPELINED of its requests wait for the terminal: a POS pipelining to a slow
        terminal would otherwise fill the proxy's memory."""
        if self.phase is not Phase.READING:
            return
        if len(self.relays) >= MAX_PIPELINED:
            self.reading.hold(Hold.PIPELINED)
        else:
            self.reading.release(Hold.PIPELINED)

    def _unreadable(self, event: Malformed) -> None:
        """A byte no request can hold: the terminal gets it all the same, and everything after it; the journal
        keeps it as received, as for a simulated terminal."""
        relay = self.arriving = self.arriving or Relay(self._now())
        serial = event.error.offset == 0 and serial_framing(bytes(relay.received[:8]))
        relay.unreadable = serial or f"malformed: {event.error}"
        self.relays.append(_as_is(relay))
        self.unreadable_stream = True

    def _plan(self, relay: Relay) -> None:
        """The request's outcome, chosen as for a simulated one; what it does waits for the terminal's answer,
        but for the AE=11 that immediate and pending send at once."""
        terminal = self.factory.terminal
        outcome, rule = terminal.choose_outcome(relay.request)
        relay.plan = Plan(outcome, outcome.delay_seconds(terminal.rng, 0.0), rule)
        relay.through = outcome.kind in RELAYED and outcome.delay is None and outcome.fragments == 1
        relay.reader = AnswerReader(Expectation.of(relay.request, terminal.settings.profile))
        if outcome.kind in ("immediate", "pending"):
            interim = terminal.interim(relay.request)
            if interim is not None:
                self._give(relay, Step(data=encode(interim)))

    # -- from the terminal

    def terminal_connected(self, side: TerminalSide) -> None:
        self.dialing = False
        if self.phase is not Phase.READING:  # the POS left, or we are closing it
            side.transport.loseConnection()
            return
        self.terminal = side
        _no_delay(side.transport)
        self.reading.release(Hold.DIALING)
        self.coupled = _Reading(side.transport)
        side.transport.registerProducer(self.reading, True)  # the POS waits while the terminal is full
        self.transport.registerProducer(self.coupled, True)  # and the other way round
        for data in self.held:
            side.transport.write(data)
        self.held, self.held_size = [], 0
        if self.pos_done_at is not None:
            side.transport.loseWriteConnection()

    def from_terminal(self, data: bytes) -> None:
        if self.phase is not Phase.READING:
            return
        now = self.last_activity = self._now()
        relay = self._answered()
        relay.segment(TERMINAL, now, len(data))
        _log_segment(self, "terminal ->", data, now - relay.started)
        self._read_on(relay, data, len(data), now)

    def _answered(self) -> Relay:
        """The transaction the terminal's bytes go to first: the first not journaled yet (what comes after its
        whole answer goes on to the next one, ``_cut``)."""
        if not self.relays and self._next_relay() is None:  # the terminal speaks before any request
            self.relays.append(_as_is(Relay(self._now())))
        return self.relays[0]

    def _followed(self) -> bool:
        """Whether a request follows the first: taken already, or arriving (the terminal may answer it first)."""
        return len(self.relays) > 1 or (self.arriving is not None and self.arriving not in self.relays)

    def _next_relay(self) -> Relay | None:
        """The transaction after the first (or the first, when there is none) for the terminal's next answer: a
        request taken already, or the one arriving, judged whole (to the terminal it was) or, not even on a record
        boundary, kept as received; None when the POS has sent nothing more."""
        index = min(len(self.relays), 1)
        if len(self.relays) == index and self.arriving is not None and self.arriving not in self.relays:
            self.assembly.assembly_expired()
            self._take_requests()
            if len(self.relays) == index:
                relay, self.arriving = self.arriving, None
                self.relays.append(_as_is(relay))
        return self.relays[index] if len(self.relays) > index else None

    def _read_on(self, relay: Relay | None, data: bytes, unsent: int, now: float) -> None:
        """``relay`` reads the terminal's ``data``, the last ``unsent`` bytes of which the POS has not had; what
        comes after its whole answer, the next transaction reads in turn, and so on."""
        while relay is not None:
            relay, data, unsent = self._read(relay, data, unsent, now)

    def _read(self, relay: Relay, data: bytes, unsent: int, now: float) -> tuple[Relay | None, bytes, int]:
        """One step of ``_read_on``: (the next transaction, what it reads, how much of that the POS has not had)."""
        reader = relay.reader
        if len(reader.received) >= MAX_ANSWER_SIZE:  # relayed, no longer kept
            self._relay_as_is(relay, data[len(data) - unsent :])
            return None, b"", 0
        progress = reader.receive(data)
        judged = relay.whole_at is None
        if judged:
            relay.answered_at = now
        following = self._cut(relay) if not judged or progress in (Progress.COMPLETE, Progress.MALFORMED) else b""
        self._relay_as_is(relay, data[len(data) - unsent : max(0, len(data) - len(following))])
        if judged:
            self._judge(progress)
        return self._hand_on(relay, following, unsent) if following else (None, b"", 0)

    def _relay_as_is(self, relay: Relay, data: bytes) -> None:
        if relay.through and data:
            self._give(relay, Step(data=data))

    def _cut(self, relay: Relay) -> bytes:
        """What the terminal sent after ``relay``'s answer, now whole, taken out of it for the next transaction:
        from the end of its last message, or of what it had when whole (for an answer without AE, or bytes
        that come later), past stray CR, LF and NUL. Nothing when no request follows: what the terminal adds
        then stays with its answer."""
        reader = relay.reader
        if relay.whole_at is not None:
            end = relay.kept
        elif reader.final is not None and "AE" in dict(reader.final):
            end = len(reader.received) - len(reader.trailing)
        else:
            end = len(reader.received)
        following = bytes(reader.received[end:]).lstrip(STRAY)
        if following and self.phase is Phase.READING and self._followed():
            del reader.received[len(reader.received) - len(following) :]
            reader.receive(b"")
        else:
            following = b""
        relay.kept = len(reader.received)
        return following

    def _hand_on(self, relay: Relay, following: bytes, unsent: int) -> tuple[Relay | None, bytes, int]:
        """``relay`` is journaled, and the next transaction gets ``following`` with its segments; the POS has had
        those of its bytes that came before the last ``unsent`` if ``relay`` relays its answer as it comes."""
        if self.phase is not Phase.READING:  # the outcome closed the line: what followed stays with this answer
            relay.reader.receive(following)
            relay.kept = len(relay.reader.received)
            return None, b"", 0
        after = self._next_relay()
        _move_segments(relay, after, len(following))
        unsent = min(unsent, len(following)) if relay.through else len(following)
        if given := len(following) - unsent:  # the POS has them, counted as this answer's: they are the next one's
            after.sent += relay.sent[-given:]
            del relay.sent[-given:]
        self._journal_first()
        return after, following, unsent

    def _judge(self, progress: Progress) -> None:
        self.timers.cancel(Watch.QUIET)
        if progress in (Progress.COMPLETE, Progress.MALFORMED):
            self._whole()
        elif progress is Progress.QUIET:
            self.timers.start(Watch.QUIET, DEFAULT_QUIET_TIME, self._whole)

    def _whole(self) -> None:
        """The first transaction's answer is whole: act on it if its outcome says so, then watch for a close; what
        the terminal sent after it goes on to the next transaction."""
        relay = self.relays[0]
        following = self._cut(relay)
        relay.whole_at = self._now() if relay.answered_at is None else relay.answered_at
        self.timers.cancel(Watch.QUIET)
        waits = 0.0 if relay.through else self._act(relay)
        self.timers.start(Watch.CLOSE, CLOSE_WATCH + waits, self._journal_first)
        if following:
            self._read_on(*self._hand_on(relay, following, 0), self._now())

    def _act(self, relay: Relay) -> float:
        """Do what the outcome says with the terminal's whole answer; the seconds it takes."""
        outcome, delay = relay.plan.outcome, relay.plan.delay
        if outcome.kind == "silent":
            self.silenced = True
        elif outcome.kind in ("close", "reset"):
            self._queue([Step(wait=delay, then=outcome.kind)])
        if outcome.kind in DROPPED:
            return delay
        cut = pieces(outcome, self._answer_for(relay))
        waits = [delay, *(pause for _, pause in cut[:-1])]
        steps = [Step(wait, piece) for wait, (piece, _) in zip(waits, cut, strict=True)]
        if outcome.kind == "truncated":
            steps[-1] = dataclasses.replace(steps[-1], then="close")
        self._give(relay, *steps)
        return sum(waits)

    def _answer_for(self, relay: Relay) -> bytes:
        kind, answer = relay.plan.outcome.kind, relay.answer
        if kind in RELAYED:
            return answer
        if kind in RESHAPED:
            return RESHAPED[kind](answer)
        if kind == "garbage":
            return GARBAGE
        if kind in REPLACED:
            return self.factory.terminal.respond(relay.request, relay.plan.outcome).data
        raise ValueError(f"outcome {kind!r}: proxy.py does not say what it does to a real terminal's answer")

    def terminal_lost(self) -> None:
        """The terminal closed: what it sent is its answer; the POS's line is closed after what it still gets."""
        self._uncouple()
        self.terminal = None
        now = self._now()
        if self.phase is Phase.CLOSED and self.relays:  # the POS left after its answer, the terminal has closed
            self.relays[0].closed_at = now - self.relays[0].started
            self._journal_first()
        if self.phase is not Phase.READING:  # we hung up: the POS is gone or going
            return
        for relay in self.relays:
            relay.closed_at = now - relay.started
        if self.relays and self.relays[0].whole_at is None and self.relays[0].answer:
            self._whole()
        while self.relays:
            answered = self.relays[0].whole_at is not None
            self._journal_first(None if answered else "the terminal closed before answering")
        self._queue([Step(then="close")])

    def terminal_unreachable(self, reason) -> None:
        self.dialing = False
        if self.phase is not Phase.READING:
            return
        why = f"terminal {self.factory.real_terminal_text} unreachable: {_why(reason, self.factory.connect_timeout)}"
        if not self.relays and self.arriving is None:
            self.relays.append(Relay(self.opened_at))  # one row says it, even if the POS sent nothing yet
        self._end(why, reached=False)
        self._close()

    # -- to the POS

    def _give(self, relay: Relay, *steps: Step) -> None:
        if self._queue(steps):
            relay.sent += b"".join(step.data for step in steps)

    def _queue(self, steps) -> bool:
        if self.silenced or self.phase is not Phase.READING:
            return False
        self.outbox.extend(steps)
        if not self.timers.running(Watch.OUTBOX):
            self._flush()
        return True

    def _flush(self) -> None:
        while self.outbox and self.phase is Phase.READING:
            step = self.outbox.popleft()
            if step.wait > 0:
                self.outbox.appendleft(dataclasses.replace(step, wait=0.0))
                self.timers.start(Watch.OUTBOX, step.wait, self._flush)
                return
            if step.data:
                self.transport.write(step.data)
            if step.then == "close":
                self._close()
            elif step.then == "reset":
                self._reset()

    # -- the journal and the end

    def _journal_first(self, note: str | None = None, reached: bool = True) -> None:
        self.timers.cancel(Watch.CLOSE)
        self.timers.cancel(Watch.QUIET)
        relay = self.relays.popleft()
        if relay is self.arriving:  # an unreadable request: nothing more belongs to it
            self.arriving = None
        factory = self.factory
        half_closed = None if self.pos_done_at is None else max(0.0, self.pos_done_at - relay.started)
        relayed = Relayed(factory.real_terminal_text, tuple(relay.segments), relay.closed_at, relay.answer or None,
                          reached, half_closed)  # fmt: skip
        self.received_at = relay.started
        factory.record(
            self, request=relay.request_frame, answer=bytes(relay.sent) or None, plan=relay.plan,
            note="; ".join(filter(None, (relay.unreadable, note))) or None, unreadable=relay.unreadable is not None,
            relayed=relayed, acted=self._now() if relay.whole_at is None else relay.whole_at,
        )  # fmt: skip
        self._watch_backlog()

    def _end(self, why: str, reached: bool = True) -> None:
        """Journal every transaction still open: the POS or the terminal is gone."""
        self.assembly.receive_data(b"")
        self._take_requests(plan=False)
        if self.arriving is not None and self.arriving not in self.relays and self.arriving.received:
            self.relays.append(self.arriving)  # bytes of a request that never came whole
        self.arriving = None
        while self.relays:
            relay = self.relays[0]
            planned = relay.plan.outcome if relay.plan else "not planned yet"
            self._journal_first(None if relay.whole_at is not None else f"{why} ({planned})" if reached else why,
                                reached)  # fmt: skip

    def connectionLost(self, reason=None) -> None:
        """The POS has gone. A POS that leaves as soon as its answer is whole may leave before the terminal's close
        reaches us: that answer's row waits for the close (or CLOSE_WATCH) before the terminal is hung up on."""
        if self.phase is Phase.REFUSED:
            return
        self._uncouple()
        why = "closed before the answer" if self.phase is Phase.CLOSING else "left before the answer"
        self.phase = Phase.CLOSING  # nothing more reaches the POS
        self.timers.cancel_all()
        self.assembly.receive_data(b"")
        self._take_requests(plan=False)
        answered = len(self.relays) == 1 and self.relays[0].whole_at is not None and self.arriving is None
        lingering = answered and self.terminal is not None
        if not lingering:
            self._end(why)
            self._hang_up()
        super().connectionLost(reason)
        if lingering:  # started after the base class has cancelled every timer
            self.timers.start(Watch.CLOSE, CLOSE_WATCH, self._journal_then_hang_up)

    def _journal_then_hang_up(self) -> None:
        self._journal_first()
        self._hang_up()

    def _hang_up(self) -> None:
        self._uncouple()
        if self.terminal is not None:
            self.terminal.transport.loseConnection()
        elif self.dialing:
            self.connector.stopConnecting()

    def _close(self) -> None:
        self._uncouple()
        super()._close()

    def _uncouple(self) -> None:
        """The sides' readings stop waiting for each other, before a side is closed: Twisted closes a transport only
        once no producer it paused is registered with it. The terminal is read again, for its close to be seen."""
        terminal_reading, self.coupled = self.coupled, None
        if terminal_reading is not None:
            self.transport.unregisterProducer()
            terminal_reading.transport.unregisterProducer()
            terminal_reading.release(Hold.FULL)

    def is_idle(self, now: float) -> bool:
        quiet_for = now - self.last_activity
        waiting = self.relays or self.outbox
        return self.phase is Phase.READING and not waiting and quiet_for > self.factory.limits.idle_timeout


class TerminalSide(protocol.Protocol):
    """The proxy's connection to the real terminal, on behalf of one POS connection."""

    def __init__(self, pos: PosSide):
        self.pos = pos

    def connectionMade(self) -> None:
        self.pos.terminal_connected(self)

    def dataReceived(self, data: bytes) -> None:
        self.pos.from_terminal(data)

    def connectionLost(self, reason=None) -> None:
        self.pos.terminal_lost()


class TerminalDialer(protocol.ClientFactory):
    noisy = False

    def __init__(self, pos: PosSide):
        self.pos = pos

    def buildProtocol(self, addr) -> TerminalSide:
        return TerminalSide(self.pos)

    def clientConnectionFailed(self, connector, reason) -> None:
        self.pos.terminal_unreachable(reason)


class ProxyFactory(TerminalFactory):
    """A TerminalFactory whose POS connections are relayed to the real terminal at ``real_terminal``. The
    --busy policies and --after-answer do not apply: the real terminal decides those."""

    protocol = PosSide

    def __init__(
        self, terminal, limits=None, reactor=None, journal=None, name: str = "1", decisions=None, *,
        real_terminal: tuple[str, int], connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ):  # fmt: skip
        super().__init__(terminal, limits, reactor, journal, name, decisions)
        self.real_terminal = real_terminal
        self.real_terminal_text = display.address(real_terminal)
        self.connect_timeout = connect_timeout

    def dial(self, pos: PosSide):
        """Connect to the real terminal for ``pos``; the connector."""
        host, port = self.real_terminal
        return self.reactor.connectTCP(host, port, TerminalDialer(pos), timeout=self.connect_timeout)


@implementer(IPushProducer)
class _Reading:
    """The reading of one side, paused while anything holds it: the other side's transport has too much to send
    (Twisted's flow control between two connections: this producer is registered with it), or the proxy has a
    reason of its own. Stopping is left to the proxy: it may still owe the POS an answer when the terminal's
    connection is lost."""

    def __init__(self, transport):
        self.transport = transport
        self.holds: set[Hold] = set()

    def hold(self, why: Hold) -> None:
        if not self.holds:
            self.transport.pauseProducing()
        self.holds.add(why)

    def release(self, why: Hold) -> None:
        if why in self.holds:
            self.holds.remove(why)
            if not self.holds:
                self.transport.resumeProducing()

    def pauseProducing(self) -> None:
        self.hold(Hold.FULL)

    def resumeProducing(self) -> None:
        self.release(Hold.FULL)

    def stopProducing(self) -> None:
        pass


def _as_is(relay: Relay) -> Relay:
    """``relay`` with the terminal's answer relayed as is, read without knowing what it answers."""
    relay.plan, relay.reader = AS_IS, AnswerReader(Expectation.of(None))
    return relay


def _move_segments(source: Relay, target: Relay, size: int) -> None:
    """The segments that carried the last ``size`` bytes of ``source``'s answer, cut where they part, as
    ``target``'s, in seconds after its own first byte."""
    moved = []
    index = len(source.segments)
    while size and index:
        index -= 1
        who, at, length = source.segments[index]
        if who == TERMINAL:
            taken = min(length, size)
            size -= taken
            moved.append((who, at + source.started - target.started, taken))
            if taken == length:
                del source.segments[index]
            else:
                source.segments[index] = (who, at, length - taken)
    target.segments = sorted([*target.segments, *reversed(moved)], key=lambda segment: segment[1])[:MAX_SEGMENTS]


def _no_delay(transport) -> None:
    """Each write leaves at once in its own segment: Nagle's algorithm would join a piece of the answer to the
    next one while the first waits for its acknowledgement, and change the cutting that is being watched."""
    if ITCPTransport.providedBy(transport):
        transport.setTcpNoDelay(True)


def _why(reason, timeout: float) -> str:
    if reason.check(error.ConnectionRefusedError):
        return "connection refused"
    if reason.check(error.TimeoutError):
        return f"no connection within {timeout:g} s (--proxy-timeout)"
    if reason.check(error.DNSLookupError):
        return "no such host"
    return reason.getErrorMessage()


def _log_segment(connection: PosSide, direction: str, data: bytes, at: float) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s %s %d bytes at +%.3f s: %r", connection, direction, len(data), at, data)
