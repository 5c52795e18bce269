"""Transactions waiting for a person's decision (the outcome ``ask``), shared by every terminal of a process.

A connection whose request meets ``ask`` registers it here and waits on its
``decided`` Deferred. The decision comes from whoever is first: the prompt on
the server's own terminal, the web page, the control API, or the time-out
(``--ask-timeout``: AF=08, as a real terminal whose customer never presents a
card). A later decision for the same transaction is refused with
``AlreadyDecided``; a POS that leaves withdraws its entry.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass, field

from twisted.internet import defer

from . import codes, display, outcomes
from .amounts import currency_from_number, format_minor_units
from .events import Events
from .outcomes import Outcome
from .protocol import Message

TIMED_OUT = outcomes.parse("failure:timeout")  # what nobody's decision becomes: the input time-out, AF=08
BY_TIMEOUT = "time-out"
OLDEST = "oldest"  # POST /pending/oldest: whichever waits longest
REMEMBERED = 200  # decided transactions kept to tell a late decision "already decided" rather than "unknown"


class NotPending(LookupError):
    """No transaction of that id waits for a decision, and none was decided recently."""


class AlreadyDecided(Exception):
    """Someone else decided first (or the POS left)."""


@dataclass(eq=False)
class Pending:
    id: int
    terminal: str
    peer: str
    request: Message
    received: float
    deadline: float
    decided: defer.Deferred = field(default_factory=defer.Deferred)  # fires with (Outcome, by)
    timer: object = None

    def describe(self) -> dict:
        """What a person needs to decide, as JSON: who pays, what, how much, and the request tag by tag."""
        return {**self.brief, "request_records": display.describe(self.request)}

    @functools.cached_property
    def brief(self) -> dict:
        """``describe()`` without the request's records: what every change of the list carries to the page,
        computed once (a list of many waiting transactions is sent again at each change)."""
        fields = dict(self.request)
        action = codes.ACTION_BY_CODE.get(fields.get("CD", ""))
        currency = currency_from_number(fields.get("CE", ""))
        amount = fields.get("CB", "")
        units = int(amount) if amount.isdigit() else None
        return {
            "id": self.id,
            "terminal": self.terminal,
            "peer": self.peer,
            "pos": fields.get("CA"),
            "action": action.name if action else None,
            "description": display.summary(self.request),
            "amount": format_minor_units(units, currency) if units is not None else None,
            "minor_units": units,
            "currency": currency.code if currency else None,
            "check": codes.is_check(fields),
            "received": self.received,
            "deadline": self.deadline,
        }


class Decisions:
    """The transactions waiting for a decision, oldest first."""

    def __init__(self, reactor):
        self.reactor = reactor
        self.events = Events()
        self._waiting: OrderedDict[int, Pending] = OrderedDict()
        self._over: OrderedDict[int, str] = OrderedDict()  # id -> how it ended, for late decisions
        self._next_id = 1

    def ask(self, terminal: str, peer: str, request: Message, timeout: float) -> Pending:
        """Register a request waiting for a decision; nobody's decision after ``timeout`` s is the time-out."""
        now = self.reactor.seconds()
        pending = Pending(self._next_id, terminal, peer, request, now, now + timeout)
        self._next_id += 1
        pending.timer = self.reactor.callLater(timeout, self._time_out, pending)
        self._waiting[pending.id] = pending
        self._changed()
        return pending

    def waiting(self, terminal: str | None = None) -> list[Pending]:
        return [p for p in self._waiting.values() if terminal is None or p.terminal == terminal]

    def when_waiting(self, terminal: str | None, timeout: float) -> defer.Deferred:
        """Fires with the waiting transactions as soon as there is one (at once if there is), or with [] after
        ``timeout`` seconds: a test waits for the POS's request to arrive without polling. Cancelling it (the
        HTTP client left) lets go of its timer and its subscription."""

        def let_go(_=None) -> None:
            stop()
            if timer.active():
                timer.cancel()

        result = defer.Deferred(canceller=let_go)

        def look(kind: str = "pending", data: dict | None = None) -> None:
            waiting = self.waiting(terminal)
            if kind == "pending" and (waiting or not timer.active()) and not result.called:
                let_go()
                result.callback(waiting)

        timer = self.reactor.callLater(timeout, look)
        stop = self.events.subscribe(look)
        look()
        return result

    def decide(self, which: int | str, outcome: Outcome, by: str, terminal: str | None = None) -> Pending:
        """Give a waiting transaction (an id, or ``oldest``; of ``terminal`` if given) its outcome; raises
        NotPending, AlreadyDecided, or OutcomeError for an outcome that decides nothing (``ask`` again)."""
        if outcome.kind == "ask":
            raise outcomes.OutcomeError("a decision is what the terminal does, not ask again")
        pending = self._find(which, terminal)
        self._end(pending, f"decided: {outcome} by {by}")
        self.events.publish("decided", **pending.describe(), outcome=str(outcome), by=by)
        pending.decided.callback((outcome, by))
        return pending

    def withdraw(self, pending: Pending, why: str) -> None:
        """The transaction is over without a decision (the POS left): its entry goes."""
        if pending.id in self._waiting:
            self._end(pending, why)

    def _find(self, which: int | str, terminal: str | None) -> Pending:
        of = f" on terminal {terminal}" if terminal is not None else ""
        if which == OLDEST:
            waiting = self.waiting(terminal)
            if not waiting:
                raise NotPending(f"no transaction waits for a decision{of}")
            return waiting[0]
        if which in self._waiting:
            if terminal is not None and self._waiting[which].terminal != terminal:
                raise NotPending(
                    f"transaction {which} waits on terminal {self._waiting[which].terminal}, not {terminal}"
                )
            return self._waiting[which]
        if which in self._over:
            raise AlreadyDecided(f"transaction {which} no longer waits: {self._over[which]}")
        raise NotPending(f"no transaction {which} waits for a decision")

    def _time_out(self, pending: Pending) -> None:
        pending.timer = None
        if pending.id in self._waiting:
            self.decide(pending.id, TIMED_OUT, BY_TIMEOUT)

    def _end(self, pending: Pending, how: str) -> None:
        del self._waiting[pending.id]
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        self._over[pending.id] = how
        while len(self._over) > REMEMBERED:
            self._over.popitem(last=False)
        self._changed()

    def _changed(self) -> None:
        self.events.publish("pending", pending=self.briefs())

    def briefs(self) -> list[dict]:
        """The waiting transactions as the event ``pending`` lists them (without their records)."""
        return [pending.brief for pending in self._waiting.values()]
