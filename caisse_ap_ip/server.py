"""The terminal on the network: Twisted protocol and factory around ``Terminal``."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections import deque
from dataclasses import dataclass

from twisted.internet import defer, protocol, task
from twisted.internet.interfaces import IHalfCloseableProtocol

from . import display
from .journal import Journal
from .outcomes import ANSWERING, GARBAGE, Outcome, split, truncate
from .protocol import DEFAULT_MAX_MESSAGE_SIZE, FrameDecoder, FrameError, Message, encode
from .terminal import Plan, Reply, Terminal

log = logging.getLogger("caisse_ap_ip.server")

BUSY_MODES = ("parallel", "refuse", "queue", "ignore")
MAX_PIPELINED = 16  # requests read ahead on one connection before we stop reading it


@dataclass
class Limits:
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_connections: int = 1000
    idle_timeout: float = 300.0  # seconds without a byte from the POS while no answer is due
    assembly_time: float = 0.2  # wait for more records before declaring an incomplete request whole
    after_answer: float | None = None  # None keeps the connection open; else close this many seconds after
    busy: str = "parallel"  # a request while another POS's transaction runs: parallel, refuse, queue, ignore
    request_timeout: float = 30.0  # seconds from a request's first byte to its last, whatever the pace


class TerminalConnection(protocol.Protocol):
    """One POS connection: reassembles requests, answers them one at a time, in order."""

    factory: TerminalFactory

    @functools.cached_property
    def peer(self) -> str:
        return display.address(self.address)

    def __str__(self) -> str:  # log calls pass the connection itself: the peer is formatted only if logged
        return self.peer

    def connectionMade(self) -> None:
        factory = self.factory
        self.address = getattr(self.transport, "client", None) or self.transport.getPeer()  # (host, port, ...)
        self.counted = factory.active < factory.limits.max_connections
        if not self.counted:
            log.warning("%s refused: already %d connections (--max-connections)", self, factory.active)
            self.transport.abortConnection()
            return
        self.journal_id = factory.journal.connection_opened(factory.name, self.address, factory.reactor.seconds())
        self.decoder = FrameDecoder(factory.limits.max_message_size)
        self.pipeline: deque[Message] = deque()
        self.current: Message | None = None  # the request whose answer is being prepared
        self.answer_call = None
        self.assembly_call = None
        self.paused = False
        self.silenced = False  # an outcome 'silent' happened: nothing more is answered here
        self.input_closed = False  # the POS shut its sending side down: answer, then close
        self.last_activity = factory.reactor.seconds()
        factory.connections.add(self)
        log.debug("%s connected", self)

    def connectionLost(self, reason=None) -> None:
        if not self.counted:
            return
        self.factory.connections.discard(self)
        self.factory.release(self)
        self.factory.journal.connection_closed(self.journal_id, self.factory.reactor.seconds())
        for call in (self.answer_call, self.assembly_call):
            if call is not None and call.active():
                call.cancel()
        if self.current is not None:
            log.info("%s left before its answer: %s", self, display.summary(self.current))
        log.debug("%s disconnected", self)

    def is_idle(self, now: float) -> bool:
        idle_for = now - self.last_activity
        return self.current is None and idle_for > self.factory.limits.idle_timeout and not self.transport.disconnecting

    def close_idle(self) -> None:
        log.info("%s idle for %g s (--idle-timeout): closing", self, self.factory.limits.idle_timeout)
        self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        self.last_activity = self.factory.reactor.seconds()
        if self.assembly_call is not None:
            self.assembly_call.cancel()
            self.assembly_call = None
        try:
            self.pipeline.extend(self.decoder.feed(data))
        except FrameError as error:
            self._reject(error)
            return
        if len(self.pipeline) >= MAX_PIPELINED and not self.paused:
            self.paused = True
            self.transport.pauseProducing()
        self._advance()

    def __conform__(self, interface):
        """Twisted asks at EOF whether we take half-closes: only while a request is in progress,
        since its plain close costs one reactor round less on every connection."""
        if interface is IHalfCloseableProtocol and self.counted and self._busy():
            return self
        return None

    def _busy(self) -> bool:
        return bool(self.current is not None or self.pipeline or self.decoder.open_message or self.decoder.partial)

    def readConnectionLost(self) -> None:
        """The POS has sent all it will send: what ends on a record boundary is a whole request."""
        self.input_closed = True
        if self.assembly_call is not None:
            self.assembly_call.cancel()
            self.assembly_call = None
        open_message = self.decoder.open_message
        if open_message and (self.current is None or open_message[0][0] == "CZ"):
            last = self.decoder.flush()
            if last is not None:
                self.pipeline.append(last)
        self._advance()

    def writeConnectionLost(self) -> None:
        self.transport.loseConnection()

    def _advance(self) -> None:
        """Take queued requests in order until one must wait."""
        factory = self.factory
        while self.current is None and not self.silenced:
            if factory.serialised and not factory.may_start(self):
                return  # queued behind another POS's transaction (--busy queue)
            request = self._next_request()
            if request is None:
                if self.input_closed:
                    self.transport.loseConnection()
                return
            if factory.serialised and factory.busy_elsewhere(self):
                self._while_busy(request)
                continue
            plan = factory.terminal.plan(request)
            self.current = request
            self.received_at = factory.reactor.seconds()
            if factory.serialised:
                factory.occupy(self)
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "%s %s: planned %s in %.3g s", self, display.summary(request), plan.outcome.describe(), plan.delay
                )
            if plan.delay > 0:
                self.answer_call = factory.reactor.callLater(plan.delay, self._act, plan)
                return
            self._act(plan)

    def _while_busy(self, request: Message) -> None:
        self.received_at = self.factory.reactor.seconds()
        if self.factory.limits.busy == "refuse":
            log.info("%s %s: refused, the terminal is busy", self, display.summary(request))
            answer = encode(self.factory.terminal.busy(request))
            self.factory.record(self, request=encode(request), answer=answer, note="busy: refused")
            self.transport.write(answer)
        else:
            log.info("%s %s: ignored, the terminal is busy", self, display.summary(request))
            self.factory.record(self, request=encode(request), answer=None, note="busy: ignored")

    def _next_request(self) -> Message | None:
        if self.paused and len(self.pipeline) < MAX_PIPELINED:
            self.paused = False
            self.transport.resumeProducing()
        if self.pipeline:
            return self.pipeline.popleft()
        decoder = self.decoder
        if decoder.at_boundary and decoder.open_message and not self.input_closed:
            if self.factory.terminal.is_complete(decoder.open_message):
                return decoder.flush()
            if self.assembly_call is None:
                self.assembly_call = self.factory.reactor.callLater(
                    self.factory.limits.assembly_time, self._assembly_expired
                )
        return None

    def _assembly_expired(self) -> None:
        self.assembly_call = None
        request = self.decoder.flush()
        if request is not None:
            self.pipeline.appendleft(request)
            self._advance()

    def _act(self, plan: Plan) -> None:
        """Carry out the planned outcome of the current request, once the journal has it."""
        self.answer_call = None
        request = self.current + self._late_records()
        outcome = plan.outcome
        data = reply = None
        if outcome.kind == "garbage":
            data = GARBAGE
        elif outcome.kind in ANSWERING:
            reply = self.factory.terminal.respond(request, outcome)
            data = encode(reply.records)
            if outcome.kind == "truncated":
                data = truncate(data)
        written = self.factory.record(self, request=request, answer=data, plan=plan)
        if written is None:
            self._deliver(request, plan.outcome, data, reply)
        else:
            written.addCallback(lambda _: self._deliver(request, plan.outcome, data, reply))

    def _deliver(self, request: Message, outcome: Outcome, data: bytes | None, reply: Reply | None) -> None:
        if outcome.kind == "silent":
            self.silenced = True  # the terminal never answers again on this connection
            log.info("%s %s: silent", self, display.summary(request))
            return
        if data is None:  # close or reset
            log.info("%s %s: %s without answering", self, display.summary(request), outcome.kind)
            self._finished()
            if outcome.kind == "close":
                self.transport.loseConnection()
            else:
                self.transport.abortConnection()
            return
        if reply is None:
            log.info("%s %s: answered garbage", self, display.summary(request))
        else:
            self._log(request, reply)
        if outcome.kind == "truncated":
            self.transport.write(data)
            self._finished()
            self.transport.loseConnection()
            return
        self._write_pieces(split(data, outcome.fragments) if outcome.fragments > 1 else [data], outcome.pause)

    def _write_pieces(self, pieces: list[bytes], pause: float) -> None:
        self.transport.write(pieces[0])  # one write: POS that read once get a whole answer
        if len(pieces) > 1:
            self.answer_call = self.factory.reactor.callLater(pause, self._write_pieces, pieces[1:], pause)
            return
        self.answer_call = None
        self._finished()
        after = self.factory.limits.after_answer
        if after == 0:
            self.transport.loseConnection()
            return
        if after is not None:
            self.factory.reactor.callLater(after, self.transport.loseConnection)
        self._advance()

    def _finished(self) -> None:
        self.current = None
        self.last_activity = self.factory.reactor.seconds()
        if self.factory.serialised:
            self.factory.release(self)

    def _late_records(self) -> Message:
        """Records that arrived, without a CZ of their own, while their request was waiting."""
        if self.pipeline and self.pipeline[0][0][0] != "CZ":
            return self.pipeline.popleft()
        if self.decoder.at_boundary and self.decoder.open_message and self.decoder.open_message[0][0] != "CZ":
            return self.decoder.flush()
        return []

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

    def _reject(self, error: FrameError) -> None:
        request = self.current or self.decoder.open_message
        if self.answer_call is not None:
            self.answer_call.cancel()
            self.answer_call = None
        self._finished()
        answer = encode(self.factory.terminal.reject(request))
        self.received_at = self.factory.reactor.seconds()
        self.factory.record(self, request=encode(request), answer=answer, note=f"malformed: {error}")
        self.transport.write(answer)
        log.warning("%s malformed request (%s): answered AF=09 and closed", self, error)
        self.transport.loseConnection()


class TerminalFactory(protocol.Factory):
    protocol = TerminalConnection
    noisy = False

    def __init__(
        self, terminal: Terminal, limits: Limits | None = None, reactor=None, journal: Journal | None = None,
        name: str = "1",
    ):  # fmt: skip
        if reactor is None:
            from twisted.internet import reactor
        self.terminal = terminal
        self.journal = journal or Journal(reactor=reactor)
        self.name = name  # the terminal's name in the journal and the control API
        self.port_number: int | None = None  # once listening
        self.listeners: list = []  # called with each journal row id, for those waiting for a transaction
        self.limits = limits or Limits()
        self.reactor = reactor
        self.connections: set[TerminalConnection] = set()
        self.occupant: TerminalConnection | None = None  # whose transaction runs, with --busy other than parallel
        self.waiting: deque[TerminalConnection] = deque()  # --busy queue: connections waiting for the terminal
        # one sweep for idle connections: a timer per connection cost ~5 us on every transaction
        self.idle_sweep = task.LoopingCall(self._close_idle_connections)
        self.idle_sweep.clock = reactor

    def record(self, connection: TerminalConnection, *, request, answer: bytes | None, plan=None, note=None):
        """Journal one transaction; returns None if it is written, or a Deferred that fires once it is."""
        transaction_id, written = self.journal.record(
            self.name, connection.journal_id, connection.address, connection.received_at, self.reactor.seconds(),
            request, answer, note or plan.outcome, plan.rule if plan else None,
        )  # fmt: skip
        if self.listeners:
            listeners, self.listeners = self.listeners, []
            for listener in listeners:
                listener(transaction_id)
        return written

    def next_transaction(self, after: int, timeout: float) -> defer.Deferred:
        """The first journal entry with an id above ``after``: at once if there is one, else when it comes,
        or None after ``timeout`` seconds."""
        result = defer.Deferred()

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
        for name, value in changes.items():
            setattr(self.limits, name, value)

    def connection_settings(self) -> dict[str, object]:
        return dataclasses.asdict(self.limits)

    @property
    def active(self) -> int:
        """Connections counted against --max-connections."""
        return len(self.connections)

    @property
    def serialised(self) -> bool:
        """One transaction at a time for all POS (a --busy mode other than parallel)."""
        return self.limits.busy != "parallel"

    def busy_elsewhere(self, connection: TerminalConnection) -> bool:
        return self.limits.busy in ("refuse", "ignore") and self.occupant not in (None, connection)

    def may_start(self, connection: TerminalConnection) -> bool:
        if self.limits.busy != "queue" or self.occupant in (None, connection):
            return True
        if connection not in self.waiting:
            self.waiting.append(connection)
        return False

    def occupy(self, connection: TerminalConnection) -> None:
        if self.limits.busy != "parallel":
            self.occupant = connection

    def release(self, connection: TerminalConnection) -> None:
        if self.occupant is not connection:
            return
        self.occupant = None
        while self.waiting and self.occupant is None:
            self.waiting.popleft()._advance()

    def startFactory(self) -> None:
        self.idle_sweep.start(min(1.0, self.limits.idle_timeout / 4), now=False)

    def stopFactory(self) -> None:
        if self.idle_sweep.running:
            self.idle_sweep.stop()

    def _close_idle_connections(self) -> None:
        now = self.reactor.seconds()
        for connection in [c for c in self.connections if c.is_idle(now)]:
            connection.close_idle()


def listen(factory: TerminalFactory, port: int, host: str):
    """Start listening; raises twisted's CannotListenError when the address cannot be bound."""
    backlog = max(50, min(factory.limits.max_connections, 4096))
    listening = factory.reactor.listenTCP(port, factory, backlog=backlog, interface=host)
    factory.port_number = listening.getHost().port
    return listening
