"""A running simulator, assembled once from parsed options: the command line and ``testing`` both use it.

    simulator = Simulator(settings.parse_args(argv), reactor)   # terminals, journal, factories
    lines = simulator.start()                                   # listening ports, control API
    ...
    simulator.stop()

``Simulator.terminals`` holds one ``TerminalHandle`` per port of ``--terminals``:
the verbs that the control API and the Python API use (queue outcomes, change
settings, reset, replace the scenario, wait for the next transaction), over the
terminal's and the factory's public methods only.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import random

from twisted.internet import defer, threads
from twisted.internet.error import CannotListenError

from . import control, decisions, display, journal, outcomes, scenarios, settings, webui
from .outcomes import Outcome
from .proxy import ProxyFactory
from .server import Limits, TerminalFactory, listen
from .terminal import Terminal, TerminalSettings


class CannotListen(Exception):
    """An address that cannot be bound: ``host``, ``port`` and the system's reason."""

    def __init__(self, host: str, port: int, reason: str):
        super().__init__(f"cannot listen on {host}:{port}: {reason}")
        self.host, self.port, self.reason = host, port, reason


class TerminalHandle:
    """One terminal of a simulator and its factory, seen through their public verbs."""

    def __init__(self, factory: TerminalFactory):
        self._factory = factory
        self.name = factory.name
        self._initial_terminal = dataclasses.replace(factory.terminal.settings)
        self._initial_connection = self._connection_values()

    def listen(self, port: int, host: str):
        """Start listening (twisted's CannotListenError if the address cannot be bound); the listening port."""
        return listen(self._factory, port, host)

    @property
    def port(self) -> int | None:
        return self._factory.port_number

    @property
    def active(self) -> int:
        return self._factory.active

    @property
    def terminal_settings(self) -> TerminalSettings:
        return self._factory.terminal.settings

    def _connection_values(self) -> dict[str, object]:
        values = self._factory.connection_settings()
        return {name: values[name] for name, row in settings.RUNTIME.items() if row.scope == settings.CONNECTION}

    def settings(self) -> dict[str, object]:
        """The settings in force that may change at run time, as JSON values."""
        current = self.terminal_settings
        terminal = {field.name: getattr(current, field.name) for field in dataclasses.fields(current)}
        return {
            "terminal": self.name,
            **settings.as_json(settings.TERMINAL, terminal),
            **settings.as_json(settings.CONNECTION, self._factory.connection_settings()),
        }

    def change(self, changes: object) -> dict[str, dict[str, object]]:
        """Change settings from text or JSON values, all or nothing; raises SettingError saying what is wrong."""
        parsed = settings.validate(changes)
        self._factory.terminal.configure(**parsed[settings.TERMINAL])
        self._factory.configure(**parsed[settings.CONNECTION])
        self._factory.events.publish("settings", terminal=self.name)
        return parsed

    def queue(self, given: list[Outcome | str | dict]) -> None:
        """Outcomes for the next transactions (text, tables or Outcome); raises OutcomeError before queuing any."""
        self._factory.terminal.queue([outcomes.of(item) for item in given])
        self._factory.events.publish("queue", terminal=self.name)

    def queued(self) -> list[str]:
        return [str(outcome) for outcome in self._factory.terminal.queued_outcomes()]

    def clear_queue(self) -> None:
        self._factory.terminal.clear_queue()
        self._factory.events.publish("queue", terminal=self.name)

    def replace_scenario(self, scenario: scenarios.Scenario | None) -> None:
        self._factory.terminal.replace_scenario(scenario)

    def reset(self) -> None:
        """Every runtime setting back to its start-up value; nothing queued, no history, the scenario at start."""
        self._factory.terminal.reset(self._initial_terminal)
        self._factory.configure(**self._initial_connection)
        self._factory.events.publish("settings", terminal=self.name)
        self._factory.events.publish("queue", terminal=self.name)

    def next_transaction(self, after: int, timeout: float) -> defer.Deferred:
        return self._factory.next_transaction(after, timeout)

    def shutting_down(self) -> None:
        self._factory.stopping = True

    def last_ticket(self) -> str | None:
        """The customer ticket of the terminal's last payment, as it would print it; None before any."""
        return self._factory.terminal.last_ticket()


class Simulator:
    """Terminals (one per port), their shared journal, factories, listening ports and the control API."""

    def __init__(self, args: argparse.Namespace, reactor=None):
        if reactor is None:
            from twisted.internet import reactor
        self.args = args
        self.reactor = reactor
        self.ports = args.terminals if isinstance(args.terminals, list) else _consecutive(args.port, args.terminals)
        terminals = [self._terminal(index) for index in range(len(self.ports))]  # a bad scenario raises here
        self.journal = journal.Journal(args.journal, args.journal_cap, reactor)
        self.decisions = decisions.Decisions(reactor)  # the transactions of every terminal waiting for a person
        self.events = self.decisions.events
        factory_class = TerminalFactory
        if args.proxy is not None:  # every port relays to the one real terminal
            factory_class = functools.partial(
                ProxyFactory, real_terminal=args.proxy, connect_timeout=args.proxy_timeout
            )
        factories = [
            factory_class(terminal, self._limits(), reactor, self.journal, str(number), self.decisions)
            for number, terminal in enumerate(terminals, 1)
        ]
        for factory in factories:
            factory.show_name = len(factories) > 1  # log lines then say which terminal
        self.terminals = [TerminalHandle(factory) for factory in factories]
        self.listening: list = []
        self.control_listening = None

    @classmethod
    def from_argv(cls, argv: list[str], reactor=None) -> Simulator:
        """Options as on the command line; a bad one raises SystemExit (status 2) after argparse's usage line."""
        return cls(settings.parse_args(argv), reactor)

    def _terminal(self, index: int) -> Terminal:
        args = self.args
        terminal = Terminal(
            TerminalSettings(**settings.of(settings.TERMINAL, args)),
            random.Random(None if args.seed is None else args.seed + index),
        )
        if args.clock is not None:
            terminal.clock = lambda: args.clock
        terminal.replace_scenario(self.load_scenario())
        return terminal

    def _limits(self) -> Limits:
        return Limits(**settings.of(settings.CONNECTION, self.args))

    def load_scenario(self) -> scenarios.Scenario | None:
        """The rules of --scenario and --magic-amounts, fresh; raises ScenarioError (reads a file: blocking)."""
        return scenarios.build(self.args.scenario, self.args.seed, self.args.magic_amounts)

    @property
    def scenario_path(self):
        return self.args.scenario

    @property
    def real_terminal(self) -> str | None:
        """The address every POS connection is relayed to (--proxy), as host:port; None when simulating."""
        return None if self.args.proxy is None else display.address(self.args.proxy)

    def terminal(self, name: str) -> TerminalHandle:
        """The terminal of this name; KeyError if none."""
        for handle in self.terminals:
            if handle.name == name:
                return handle
        raise KeyError(name)

    # -- in the reactor thread

    def start(self) -> list[str]:
        """Listen on every port (and the control API's); the lines to announce; raises CannotListen."""
        host = self.args.host
        for handle, port in zip(self.terminals, self.ports, strict=True):
            self.listening.append(self._listen(host, port, lambda p, h=handle: h.listen(p, host)))
        lines = [f"listening on {_address(port)}" for port in self.listening]
        return lines + self._start_control()

    def _start_control(self) -> list[str]:
        """The control API, and the virtual terminal on its port (which then needs no --control-port)."""
        args = self.args
        port = 0 if args.control_port is None and args.ui else args.control_port
        if port is None:
            return []
        ui = webui.WebUI(self, args.control_token) if args.ui else None
        api = control.ControlAPI(self, args.control_token, ui)
        host = args.control_host
        self.control_listening = self._listen(host, port, lambda p: control.listen(api, p, host, self.reactor))
        where = _address(self.control_listening)
        return [f"control on {where}", *([f"virtual terminal on http://{where}/"] if ui else [])]

    @staticmethod
    def _listen(host: str, port: int, start):
        try:
            return start(port)
        except CannotListenError as error:
            raise CannotListen(host, port, getattr(error.socketError, "strerror", None) or error.socketError) from None

    @property
    def control_port(self) -> int | None:
        return None if self.control_listening is None else self.control_listening.getHost().port

    def reload_scenario(self, handles: list[TerminalHandle]) -> defer.Deferred:
        """Read --scenario again in a thread, all terminals or none; fires with the first one's rules."""
        if self.args.scenario is None:
            return defer.fail(scenarios.ScenarioError("the server was started without --scenario"))

        def apply(reloaded: list[scenarios.Scenario]) -> scenarios.Scenario:
            for handle, scenario in zip(handles, reloaded, strict=True):
                handle.replace_scenario(scenario)
            return reloaded[0]

        def load_all() -> list[scenarios.Scenario]:  # each terminal its own rules, with their own state
            return [self.load_scenario() for _ in handles]

        pool = self.reactor.getThreadPool()
        return threads.deferToThreadPool(self.reactor, pool, load_all).addCallback(apply)

    def reset(self, handles: list[TerminalHandle] | None = None) -> defer.Deferred:
        """Start-up settings, empty queues and histories, and an empty journal; fires with the names reset."""
        handles = self.terminals if handles is None else handles
        for handle in handles:
            handle.reset()
        return self.journal.clear().addCallback(lambda _: [handle.name for handle in handles])

    def shutting_down(self) -> None:
        """The process is stopping: the connections it drops were not left by their POS (the journal says so)."""
        for handle in self.terminals:
            handle.shutting_down()

    def stop(self) -> defer.Deferred:
        """Stop listening everywhere; connections already open go on until they close."""
        ports = [*self.listening, *([self.control_listening] if self.control_listening else [])]
        self.listening, self.control_listening = [], None
        return defer.gatherResults([defer.maybeDeferred(port.stopListening) for port in ports])


def _consecutive(first: int, count: int) -> list[int]:
    return [0] * count if first == 0 else list(range(first, first + count))


def _address(port) -> str:
    address = port.getHost()
    return display.address(address)
