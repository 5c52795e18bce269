"""The terminal on the network: Twisted protocol and factory around ``Terminal``.

A connection keeps its transport, its timers and one ``Phase``; cutting the
byte stream into requests is ``assembly.RequestAssembly``'s job, deciding what
to answer is ``Terminal``'s, and what a request meets while another POS's
transaction runs is a ``BusyPolicy`` (``--busy``).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
from collections import deque
from dataclasses import dataclass

from twisted.internet import defer, protocol, task
from twisted.internet.interfaces import IHalfCloseableProtocol

from . import activity, display
from .assembly import Request, RequestAssembly, Wait
from .decisions import Decisions, Pending
from .journal import Journal
from .outcomes import ANSWERING, CRLF, GARBAGE, pieces, truncate
from .protocol import DEFAULT_MAX_MESSAGE_SIZE, Message, encode, serial_framing, walk
from .terminal import Plan, Reply, Terminal

log = logging.getLogger("caisse_ap_ip.server")

MAX_PIPELINED = 16  # whole requests read ahead on one connection before we stop reading it


@dataclass
class Limits:
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_connections: int = 1000
    idle_timeout: float = 300.0  # seconds without a byte from the POS while no answer is due
    assembly_time: float = 0.2  # wait for more records before declaring an incomplete request whole
    after_answer: float | None = None  # None keeps the connection open; else close this many seconds after
    busy: str = "parallel"  # a BUSY_MODES name: what a request meets while another POS's transaction runs
    request_timeout: float = 30.0  # seconds from a request's first byte to its last, whatever the pace
    ask_timeout: float = 60.0  # seconds a transaction waits for a person's decision (outcome ask) before AF=08


# -- --busy: what a request meets while another POS's transaction runs


class BusyPolicy:
    name = ""
    description = ""
    exclusive = True  # one transaction at a time for all POS

    def while_busy(self, factory: TerminalFactory, connection: TerminalConnection, request: Message) -> None:
        """Deal with a request that arrives while another connection holds the terminal."""
        raise NotImplementedError


class Parallel(BusyPolicy):
    name, description, exclusive = "parallel", "each POS has its own terminal, as the original", False


class Refuse(BusyPolicy):
    name, description = "refuse", "AE=01 AF=07 at once"

    def while_busy(self, factory, connection, request):
        connection.refuse_busy(request)


class Queue(BusyPolicy):
    name, description = "queue", "wait for the terminal"

    def while_busy(self, factory, connection, request):
        factory.waiting.append(connection)
        connection.wait_turn(request)


class Ignore(BusyPolicy):
    name, description = "ignore", "never answered"

    def while_busy(self, factory, connection, request):
        connection.ignore_busy(request)


BUSY_POLICIES: dict[str, BusyPolicy] = {policy.name: policy for policy in (Parallel(), Refuse(), Queue(), Ignore())}
BUSY_MODES: dict[str, str] = {name: policy.description for name, policy in BUSY_POLICIES.items()}


def _check_busy_mode(name: object) -> None:
    """A bad name is refused where it is set, not on the next request inside the reactor."""
    if name not in BUSY_POLICIES:
        raise ValueError(f"no --busy mode {name!r} (known: {', '.join(BUSY_MODES)})")


# -- one connection


class Phase(enum.Enum):
    """Where a connection's conversation stands; exactly one at a time."""

    REFUSED = "refused: over --max-connections, never counted"
    READING = "reading: taking the next request as soon as it is whole"
    QUEUED = "queued: its request waits for another POS's transaction (--busy queue)"
    ASKING = "asking: its request waits for a person's decision (outcome ask)"
    WAITING = "waiting: its request's delay runs before the terminal acts"
    SENDING = "sending: the answer waits for the journal or goes out in pieces"
    SILENCED = "silenced: outcome silent, nothing more is read or answered"
    CLOSING = "closing: the terminal closed or reset the connection"
    CLOSED = "closed"


_DEAF = frozenset({Phase.REFUSED, Phase.SILENCED, Phase.CLOSING, Phase.CLOSED})  # input is dropped


class Timer(enum.Enum):
    ANSWER = "the request's delay before the terminal acts"
    PIECE = "the pause between two pieces of an answer"
    ASSEMBLY = "--assembly-time for a request that lacks a mandatory tag"
    REQUEST = "--request-timeout from a request's first byte"
    CLOSE = "--after-answer N seconds"


class Timers:
    """A connection's timers, one slot per purpose: starting one replaces the one running."""

    def __init__(self, reactor):
        self._reactor = reactor
        self._calls: dict[Timer, object] = {}

    def start(self, purpose: Timer, delay: float, function, *args) -> None:
        self.cancel(purpose)
        self._calls[purpose] = self._reactor.callLater(delay, self._fire, purpose, function, args)

    def _fire(self, purpose: Timer, function, args) -> None:
        del self._calls[purpose]
        function(*args)

    def running(self, purpose: Timer) -> bool:
        return purpose in self._calls

    def cancel(self, purpose: Timer) -> None:
        call = self._calls.pop(purpose, None)
        if call is not None:
            call.cancel()

    def cancel_all(self) -> None:
        calls, self._calls = self._calls, {}
        for call in calls.values():
            call.cancel()


class TerminalConnection(protocol.Protocol):
    """One POS connection: takes its requests in order and answers them one at a time.

    Reading and answering never call each other: ``_pump`` is a loop that takes
    whole requests until one must wait (for bytes, a timer, the journal or the
    terminal), and each timer or journal callback that ends a wait calls
    ``_pump`` again, so any number of pipelined requests is answered in order
    without recursion.

    ``request`` is the request taken from the assembly and not yet journaled
    (queued or waiting for its delay): if the connection is lost first, it is
    journaled without an answer.
    """

    factory: TerminalFactory
    phase = Phase.READING
    request: Message | None = None
    plan: Plan | None = None
    interim: Message | None = None  # the AE=11 already sent for a pending transaction
    asking: Pending | None = None  # the entry of a request waiting for a person's decision

    @functools.cached_property
    def peer(self) -> str:
        return display.address(self.address)

    def __str__(self) -> str:  # log calls pass the connection itself: the peer is formatted only if logged
        return self.peer

    def connectionMade(self) -> None:
        factory = self.factory
        self.address = getattr(self.transport, "client", None) or self.transport.getPeer()  # (host, port, ...)
        if factory.active >= factory.limits.max_connections:
            self.phase = Phase.REFUSED
            if factory.warnings.allow("refused connections"):
                log.warning("%s refused: already %d connections (--max-connections)", self, factory.active)
            self.transport.abortConnection()
            return
        now = factory.reactor.seconds()
        self.journal_id = factory.journal.connection_opened(factory.name, self.address, now)
        self.assembly = RequestAssembly(factory.terminal.is_complete, factory.limits.max_message_size)
        self.timers = Timers(factory.reactor)
        self.reading_paused = False  # the transport's state, not the conversation's: set at MAX_PIPELINED
        self.opening = b""  # the first bytes of the connection, to recognise the older serial protocol
        self.received_at = self.last_activity = now
        factory.connections.add(self)
        log.debug("%s connected", self)

    def connectionLost(self, reason=None) -> None:
        if self.phase is Phase.REFUSED:
            return
        closed_by_us = self.phase is Phase.CLOSING
        why = "closed before the answer" if closed_by_us else "left before the answer"
        if self.factory.stopping:
            why = "the server stopped before the answer"
        self.phase = Phase.CLOSED
        self.timers.cancel_all()
        factory = self.factory
        factory.connections.discard(self)
        if self in factory.waiting:
            factory.waiting.remove(self)
        if self.asking is not None:
            factory.decisions.withdraw(self.asking, why.replace(" before the answer", ""))
            self.asking = None
        self._journal_unanswered(why)
        factory.release(self)
        factory.journal.connection_closed(self.journal_id, factory.reactor.seconds())
        log.debug("%s disconnected", self)

    def _journal_unanswered(self, why: str) -> None:
        """Every request received whole is in the journal, whatever the POS did next."""
        if self.request is not None:
            request, self.request = self.request + self.assembly.late_records(), None
            self._journal_without_answer(request, self.plan, why)
        self.assembly.receive_data(b"")  # what ends on a record boundary is whole
        while type(event := self.assembly.next_event()) is Request:
            self._journal_without_answer(event.records, None, why)

    def _journal_without_answer(self, request: Message, plan: Plan | None, why: str) -> None:
        sent = None
        if plan is not None and plan.outcome.kind == "pending" and self.interim is not None:
            sent, self.interim = encode(self.interim), None  # the POS did get the interim AE=11
            why = why.replace("the answer", "the final answer") + ", interim AE=11 sent"
        note = f"{why} ({plan.outcome if plan else 'not planned yet'})"
        self.factory.record(self, request=request, answer=sent, plan=plan, note=note)

    # -- input

    def dataReceived(self, data: bytes) -> None:
        if self.phase in _DEAF:
            return
        self.last_activity = self.factory.reactor.seconds()
        if len(self.opening) < 8:
            self.opening += data[: 8 - len(self.opening)]
        self.timers.cancel(Timer.ASSEMBLY)  # new bytes: the incomplete request's wait starts again
        self.assembly.receive_data(data)
        if self.assembly.pending >= MAX_PIPELINED and not self.reading_paused:
            self.reading_paused = True
            self.transport.pauseProducing()
        self._watch_request_deadline()
        self._pump()

    def __conform__(self, interface):
        """Twisted asks at EOF whether we take half-closes: always, since answers may still be on their way out
        (a POS that sends many requests then shuts its side down must get them all before the close)."""
        if interface is IHalfCloseableProtocol and self.phase is not Phase.REFUSED:
            return self
        return None

    def readConnectionLost(self) -> None:
        """The POS has sent all it will send: answer what it sent, then close. While a person decides, it is
        taken as leaving: a POS that waits for its answer does not close its side (docs/protocol.md §17)."""
        if self.phase is Phase.ASKING:
            self.factory.decisions.withdraw(self.asking, "the POS left")
            self.asking = None
            self._journal_unanswered("left before the answer")
            self._close()
            return
        self.timers.cancel(Timer.ASSEMBLY)
        self.assembly.receive_data(b"")
        self._pump()

    def writeConnectionLost(self) -> None:
        self._close()

    def is_idle(self, now: float) -> bool:
        idle_for = now - self.last_activity
        return self.phase is Phase.READING and idle_for > self.factory.limits.idle_timeout

    def close_idle(self) -> None:
        log.info("%s idle for %g s (--idle-timeout): closing", self, self.factory.limits.idle_timeout)
        self._close()

    def _pump(self) -> None:
        """Take whole requests in order until one must wait."""
        assembly = self.assembly
        while self.phase is Phase.READING:
            event = assembly.next_event()
            if self.reading_paused and assembly.pending < MAX_PIPELINED:
                self.reading_paused = False
                self.transport.resumeProducing()
            if type(event) is Request:
                self._take(event.records)
            elif event is Wait.NEED_DATA:
                return
            elif event is Wait.INCOMPLETE:
                if not self.timers.running(Timer.ASSEMBLY):
                    self.timers.start(Timer.ASSEMBLY, self.factory.limits.assembly_time, self._assembly_time_up)
                return
            elif event is Wait.END:
                self._close()
            elif event.error.offset == 0 and (serial := serial_framing(self.opening)):
                self._refuse_serial(serial)
            else:
                self._give_up(event.records, f"malformed: {event.error}")

    def _assembly_time_up(self) -> None:
        """Judged at the next reactor turn, not now: bytes already received (after a stall, say) are read first,
        and cancel this judgement if they come."""
        self.timers.start(Timer.ASSEMBLY, 0, self._judge_incomplete)

    def _judge_incomplete(self) -> None:
        self.assembly.assembly_expired()
        self._pump()

    def _watch_request_deadline(self) -> None:
        receiving = self.assembly.receiving
        if receiving and not self.timers.running(Timer.REQUEST):
            self.timers.start(Timer.REQUEST, self.factory.limits.request_timeout, self._request_timed_out)
        elif not receiving:
            self.timers.cancel(Timer.REQUEST)

    def _request_timed_out(self) -> None:
        """A request still not whole ``--request-timeout`` s after its first byte gets AF=09 and the line closes,
        as for a malformed one: a terminal that reads a request has a deadline for it, and a POS dribbling
        bytes just under --idle-timeout would otherwise hold a connection for ever."""
        if self.phase is not Phase.READING:  # the bytes wait behind an answer: count again once it is sent
            self._watch_request_deadline()
            return
        timeout = self.factory.limits.request_timeout
        self._give_up(self.assembly.unfinished, f"timed out: not whole after {timeout:g} s (--request-timeout)")

    # -- a request, from taken to answered

    def _take(self, request: Message) -> None:
        self.received_at = self.factory.reactor.seconds()
        self.plan = None
        self.timers.cancel(Timer.REQUEST)  # the next request's deadline counts from now
        self._watch_request_deadline()
        if self.factory.admit(self, request):
            self._plan(request)

    def wait_turn(self, request: Message) -> None:
        """--busy queue: hold the request until the factory calls ``take_turn``."""
        self.request = request
        self.phase = Phase.QUEUED

    def take_turn(self) -> None:
        request, self.request = self.request, None
        self.phase = Phase.READING
        self._plan(request)
        self._pump()

    def refuse_busy(self, request: Message) -> None:
        log.debug("%s %s: refused, the terminal is busy", self, display.summary(request))
        answer = encode(self.factory.terminal.busy(request))
        self.factory.record(self, request=encode(request), answer=answer, note="busy: refused")
        self.transport.write(answer)

    def ignore_busy(self, request: Message) -> None:
        log.debug("%s %s: ignored, the terminal is busy", self, display.summary(request))
        self.factory.record(self, request=encode(request), answer=None, note="busy: ignored")

    def _plan(self, request: Message) -> None:
        plan = self.factory.terminal.plan(request)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s: planned %s in %.3g s", self, display.summary(request), plan.outcome.describe(), plan.delay
            )
        self.request, self.plan = request, plan
        if plan.rule == "queued":  # the queue of next outcomes is one shorter
            self.factory.events.publish("queue", terminal=self.factory.name)
        if plan.outcome.kind == "ask":
            self._ask(request)
            return
        self._carry_out()

    def _ask(self, request: Message) -> None:
        """Wait for a person's decision (or the --ask-timeout), as a real terminal waits for its customer."""
        factory = self.factory
        self.phase = Phase.ASKING
        self.asking = factory.decisions.ask(factory.name, self.peer, request, factory.limits.ask_timeout)
        self.asking.decided.addCallback(self._decided).addErrback(self._decision_failed)

    def _decided(self, decision) -> None:
        outcome, by = decision
        self.asking = None
        if self.phase is not Phase.ASKING:
            return
        self.plan = self.factory.terminal.decided(self.plan, outcome, by)
        self.phase = Phase.READING
        self._carry_out()
        self._pump()

    def _decision_failed(self, failure) -> None:
        """A decision that cannot be carried out is a defect of ours: said, and the line reset, never left hanging."""
        log.error("%s carrying out a decision failed: %s", self, failure.getTraceback())
        self._reset()

    def _carry_out(self) -> None:
        """The planned outcome of ``request``: the interim AE=11 of a pending one, then the act, after its delay."""
        request, plan = self.request, self.plan
        if plan.outcome.kind == "pending":
            self.interim = self.factory.terminal.interim(request)
            if self.interim is not None:  # taken into account at once; the result comes after the delay
                self.transport.write(encode(self.interim))
        if plan.delay > 0:
            self.phase = Phase.WAITING
            self.timers.start(Timer.ANSWER, plan.delay, self._act_when_due)
            return
        self._act()

    def _act_when_due(self) -> None:
        self._act()
        self._pump()

    def _act(self) -> None:
        """Carry out the planned outcome of the request, once the journal has it."""
        request, self.request = self.request + self.assembly.late_records(), None
        outcome = self.plan.outcome
        data = reply = None
        if outcome.kind == "garbage":
            data = GARBAGE
        elif outcome.kind in ANSWERING:
            reply = self.factory.terminal.respond(request, outcome)
            data = reply.data
            if outcome.kind == "truncated":
                data = truncate(data)
            elif outcome.kind == "crlf":
                data += CRLF
        journaled = data
        if outcome.kind == "pending" and self.interim is not None and data is not None:
            journaled = encode(self.interim) + data  # what the POS got for this request, both answers
        self.interim = None
        self.phase = Phase.SENDING
        written = self.factory.record(self, request=request, answer=journaled, plan=self.plan)
        if written is None:
            self._deliver(request, data, reply)
            return
        written.addCallbacks(self._deliver_once_written, self._journal_failed, callbackArgs=(request, data, reply))

    def _deliver_once_written(self, _, request: Message, data: bytes | None, reply: Reply | None) -> None:
        if self.phase is Phase.SENDING:
            self._deliver(request, data, reply)
            self._pump()

    def _journal_failed(self, failure) -> None:
        log.error("%s journal write failed, closing: %s", self, failure.getErrorMessage())
        self._reset()

    def _deliver(self, request: Message, data: bytes | None, reply: Reply | None) -> None:
        outcome = self.plan.outcome
        if outcome.kind == "silent":
            self.phase = Phase.SILENCED  # the terminal never answers again on this connection
            log.debug("%s %s: silent", self, display.summary(request))
            return
        if data is None:  # close or reset
            log.debug("%s %s: %s without answering", self, display.summary(request), outcome.kind)
            self._finished()
            self._close() if outcome.kind == "close" else self._reset()
            return
        if reply is None:
            log.debug("%s %s: answered garbage", self, display.summary(request))
        else:
            self._log(request, reply)
        if outcome.kind == "truncated":
            self.transport.write(data)
            self._finished()
            self._close()
            return
        self._send_pieces(pieces(outcome, data))

    def _send_pieces(self, pieces: list[tuple[bytes, float]]) -> None:
        """Each piece in one write (POS that read once get a whole answer), then the pause after it."""
        data, pause = pieces[0]
        self.transport.write(data)
        if len(pieces) > 1:
            self.timers.start(Timer.PIECE, pause, self._send_next_pieces, pieces[1:])
            return
        self._finished()
        after = self.factory.limits.after_answer
        closes = self.factory.terminal.profile.closes_after_answer or self.plan.outcome.closes_after_answer
        if after is None and closes:
            after = 0.0  # the profile's (or replayed) terminal closes once it has answered; --after-answer N overrides
        if after == 0:
            self._close()
        elif after is not None and not self.timers.running(Timer.CLOSE):
            self.timers.start(Timer.CLOSE, after, self._close)

    def _send_next_pieces(self, pieces: list[tuple[bytes, float]]) -> None:
        self._send_pieces(pieces)
        self._pump()

    def _finished(self) -> None:
        self.phase = Phase.READING
        self.last_activity = self.factory.reactor.seconds()
        self.factory.release(self)

    def _log(self, request: Message, reply: Reply) -> None:
        answer = reply.records
        if reply.note:
            log.info("%s %s: %s", self, display.summary(request), reply.note)
        if log.isEnabledFor(logging.DEBUG):  # formatting costs more than answering: only when asked for
            log.debug(
                "%s %s -> %s\nrequest:\n%s\nanswer:\n%s",
                self.peer, display.summary(request), display.outcome(answer),
                display.table(request), display.table(answer),
            )  # fmt: skip

    # -- the end of a connection

    def _give_up(self, records: Message, note: str) -> None:
        """Answer what was read of a request AF=09, journal it and close: the connection cannot go on."""
        answer = encode(self.factory.terminal.reject(records))
        self.received_at = self.factory.reactor.seconds()
        self.factory.record(self, request=encode(records), answer=answer, note=note, unreadable=True)
        self.transport.write(answer)
        self._close()

    def _refuse_serial(self, what: str) -> None:
        """The older serial protocol on the IP port: no TLV answer means anything to it, so say so and close."""
        self.received_at = self.factory.reactor.seconds()
        self.factory.record(self, request=self.opening, answer=None, note=what, unreadable=True)
        self._close()

    def _close(self) -> None:
        if self._stop():
            self.transport.loseConnection()

    def _reset(self) -> None:
        if self._stop():
            self.transport.abortConnection()

    def _stop(self) -> bool:
        """Nothing more is read, acted on or sent; False if that was already so. A request not acted on yet
        stays in ``request``, to be journaled when the connection is lost."""
        if self.phase in (Phase.CLOSING, Phase.CLOSED):
            return False
        self.phase = Phase.CLOSING
        self.timers.cancel_all()
        return True


class TerminalFactory(protocol.Factory):
    protocol = TerminalConnection
    noisy = False

    def __init__(
        self, terminal: Terminal, limits: Limits | None = None, reactor=None, journal: Journal | None = None,
        name: str = "1", decisions: Decisions | None = None,
    ):  # fmt: skip
        if reactor is None:
            from twisted.internet import reactor
        self.terminal = terminal
        self.decisions = decisions or Decisions(reactor)  # shared by the terminals of a process
        self.events = self.decisions.events
        self.journal = journal or Journal(reactor=reactor)
        self.name = name  # the terminal's name in the journal and the control API
        self.port_number: int | None = None  # once listening
        self.listeners: list = []  # called with each journal row id, for those waiting for a transaction
        self.limits = limits or Limits()
        _check_busy_mode(self.limits.busy)
        self.reactor = reactor
        self.connections: set[TerminalConnection] = set()
        self.occupant: TerminalConnection | None = None  # whose transaction runs, with an exclusive --busy policy
        self.waiting: deque[TerminalConnection] = deque()  # --busy queue: connections waiting for the terminal
        self._waking = False  # release() is handing the terminal to waiting connections
        # one sweep for idle connections: a timer per connection cost ~5 us on every transaction
        self.warnings = activity.WarningLimiter(reactor.seconds)
        self.show_name = False  # with several terminals, lines say which one
        self.stopping = False  # the server is stopping: connections lost now were not left by their POS
        self.idle_sweep = task.LoopingCall(self._close_idle_connections)
        self.idle_sweep.clock = reactor

    def record(
        self, connection: TerminalConnection, *, request, answer: bytes | None, plan=None, note=None, unreadable=False,
        relayed=None, acted: float | None = None,
    ):  # fmt: skip
        """Journal one transaction and log its line (at warning if the request could not be read); returns None
        if it is written, or a Deferred that fires once it is. A transaction relayed to a real terminal (proxy.py)
        gives what the proxy saw (``journal.Relayed``) and when its answer was whole (``acted``)."""
        acted = self.reactor.seconds() if acted is None else acted
        transaction_id, written = self.journal.record(
            self.name, connection.journal_id, connection.address, connection.received_at, acted,
            request, answer, note or plan, plan.rule if plan else None, relayed,
        )  # fmt: skip
        trouble = "malformed requests" if unreadable else relayed and relayed.warning
        self._log_transaction(connection, request, answer, note or plan, trouble, acted, relayed)
        self.events.publish("transaction", terminal=self.name, id=transaction_id)
        if self.listeners:
            listeners, self.listeners = self.listeners, []
            for listener in listeners:
                listener(transaction_id)
        return written

    def _log_transaction(self, connection, request, answer: bytes | None, note, trouble, acted, relayed) -> None:
        """One line per transaction at info; what went wrong (``trouble``: its kind) at warning, summarised when
        it floods. ``note`` is what the server said, or the plan."""
        level = logging.WARNING if trouble else logging.INFO
        if not log.isEnabledFor(level) or (trouble and not self.warnings.allow(trouble)):
            return
        records = walk(request)[0][:1] if isinstance(request, bytes) else [request]
        took = acted - connection.received_at
        outcome = note.outcome if isinstance(note, Plan) else note
        line, tone = activity.transaction_line(
            connection.peer, records[0] if records else [], answer, outcome, took, relayed
        )
        line += note.decision if isinstance(note, Plan) else ""
        log.log(level, "%s%s", f"terminal {self.name} " if self.show_name else "", line, extra={"tone": tone})

    def next_transaction(self, after: int, timeout: float) -> defer.Deferred:
        """The first journal entry with an id above ``after``: at once if there is one, else when it comes,
        or None after ``timeout`` seconds. Cancelling it lets go of its timer and its place among the listeners."""

        def let_go(_) -> None:
            if timer.active():
                timer.cancel()
            if arrived in self.listeners:
                self.listeners.remove(arrived)

        result = defer.Deferred(canceller=let_go)

        def deliver(entries: list) -> None:
            if not result.called:
                if timer.active():
                    timer.cancel()
                result.callback(entries[0] if entries else None)

        def arrived(transaction_id: int) -> None:
            self.journal.entries(after=after, terminal=self.name).addCallback(deliver)

        def first_look(entries: list) -> None:
            if entries:
                deliver(entries)
            else:
                self.listeners.append(arrived)

        timer = self.reactor.callLater(timeout, deliver, [])
        self.journal.entries(after=after, terminal=self.name).addCallback(first_look)
        return result

    def configure(self, **changes: object) -> None:
        """Change connection settings (values already validated); an unknown name changes nothing."""
        unknown = [name for name in changes if not hasattr(self.limits, name)]
        if unknown:
            raise AttributeError(f"no connection setting {', '.join(unknown)}")
        _check_busy_mode(changes.get("busy", self.limits.busy))
        for name, value in changes.items():
            setattr(self.limits, name, value)

    def connection_settings(self) -> dict[str, object]:
        return dataclasses.asdict(self.limits)

    @property
    def active(self) -> int:
        """Connections counted against --max-connections."""
        return len(self.connections)

    @property
    def busy_policy(self) -> BusyPolicy:
        """The policy of the --busy mode in force (a name in ``limits``, changed at run time by configure)."""
        return BUSY_POLICIES[self.limits.busy]

    def admit(self, connection: TerminalConnection, request: Message) -> bool:
        """Whether ``connection`` may act on ``request`` now; if not, the busy policy has dealt with it."""
        policy = self.busy_policy
        if not policy.exclusive:
            return True
        if self.occupant is None or self.occupant is connection:
            self.occupant = connection
            return True
        policy.while_busy(self, connection, request)
        return False

    def release(self, connection: TerminalConnection) -> None:
        """``connection``'s transaction is over: the terminal goes to the first connection waiting for it."""
        if self.occupant is not connection:
            return
        self.occupant = None
        if self._waking:
            return  # the loop below, further up the stack, hands the terminal on
        self._waking = True
        try:
            while self.waiting and self.occupant is None:
                self.occupant = self.waiting.popleft()
                self.occupant.take_turn()
        finally:
            self._waking = False

    def startFactory(self) -> None:
        self.idle_sweep.start(min(1.0, self.limits.idle_timeout / 4), now=False)

    def stopFactory(self) -> None:
        if self.idle_sweep.running:
            self.idle_sweep.stop()

    def _close_idle_connections(self) -> None:
        for summary in self.warnings.summaries():
            log.warning("%s", summary)
        now = self.reactor.seconds()
        for connection in [c for c in self.connections if c.is_idle(now)]:
            connection.close_idle()


def listen(factory: TerminalFactory, port: int, host: str):
    """Start listening; raises twisted's CannotListenError when the address cannot be bound."""
    backlog = max(50, min(factory.limits.max_connections, 4096))
    listening = factory.reactor.listenTCP(port, factory, backlog=backlog, interface=host)
    factory.port_number = listening.getHost().port
    return listening
