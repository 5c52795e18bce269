"""The control API: JSON over HTTP to read and change a running terminal, for test suites.

Every answer is JSON. Errors are {"error": "..."} with 400 (bad value), 401
(token), 404 (no such endpoint) or 405 (method).
"""

from __future__ import annotations

import argparse
import copy
import hmac
import json
import logging

from twisted.internet import threads
from twisted.web import resource, server

from . import __version__, cli, options, outcomes, scenarios
from .cards import PAYMENT_TYPES
from .profiles import PROFILES
from .server import BUSY_MODES, TerminalFactory
from .terminal import IMMEDIATE_MODES

log = logging.getLogger("caisse_ap_ip.control")
MAX_WAIT = 60.0

# settings a test may change at run time: name -> parser of the JSON value (given as text)
TERMINAL_SETTINGS = {
    "failure": cli.boolean,
    "failure_type": options.failure_type,
    "duration": cli.non_negative_float,
    "payment_type": cli.choice(PAYMENT_TYPES),
    "seller_contract": options.seller_contract,
    "profile": cli.choice(PROFILES),
    "currencies": options.currencies,
    "strict": cli.boolean,
    "immediate": cli.choice(IMMEDIATE_MODES),
    "terminal_id": options.terminal_id,
    "merchant_name": options.ticket_line,
    "merchant_town": options.ticket_line,
    "outcome": options.outcome,
}
CONNECTION_SETTINGS = {"busy": cli.choice(BUSY_MODES), "after_answer": options.after_answer}


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ControlAPI(resource.Resource):
    """One API for the terminals of a process; ``?terminal=NAME`` picks one (default: the first)."""

    isLeaf = True

    def __init__(self, factories, token: str | None = None, scenario_path=None, seed=None, magic_amounts=False):
        super().__init__()
        factories = factories if isinstance(factories, list) else [factories]
        self.factories = {factory.name: factory for factory in factories}
        self.token = token
        self.scenario_path = scenario_path
        self.seed = seed
        self.magic_amounts = magic_amounts
        self.initial = {f.name: (copy.deepcopy(f.terminal.settings), copy.deepcopy(f.limits)) for f in factories}
        self.routes = {
            ("GET", "/health"): self.health,
            ("GET", "/terminals"): self.terminals,
            ("GET", "/settings"): self.get_settings,
            ("PATCH", "/settings"): self.change_settings,
            ("GET", "/outcomes"): self.get_outcomes,
            ("POST", "/outcomes"): self.queue_outcomes,
            ("DELETE", "/outcomes"): self.clear_outcomes,
            ("POST", "/scenario/reload"): self.reload_scenario,
            ("GET", "/journal"): self.get_journal,
            ("DELETE", "/journal"): self.clear_journal,
            ("GET", "/transactions/next"): self.next_transaction,
            ("POST", "/reset"): self.reset,
        }

    @property
    def journal(self):
        return next(iter(self.factories.values())).journal  # the terminals of a process share one journal

    def render(self, request):
        request.setHeader(b"content-type", b"application/json")
        try:
            self._authorise(request)
            method, path = request.method.decode(), request.path.decode().rstrip("/") or "/"
            handler = self.routes.get((method, path))
            if handler is None:
                known = [m for m, p in self.routes if p == path]
                if known:
                    raise ApiError(405, f"{path} takes {', '.join(known)}")
                raise ApiError(404, f"no endpoint {path}")
            result = handler(request, self._chosen(request))
        except ApiError as error:
            request.setResponseCode(error.status)
            return _json({"error": str(error)})
        if hasattr(result, "addCallback"):  # a Deferred: the journal is being read, a file loaded, or a wait
            result.addCallbacks(lambda value: _finish(request, value), lambda failure: _fail(request, failure))
            return server.NOT_DONE_YET
        return _json(result)

    def _chosen(self, request) -> list[TerminalFactory]:
        """The terminals a request is about: ?terminal=NAME, else all (for reset and the journal) or the first."""
        names = request.args.get(b"terminal") if request is not None else None
        if not names:
            return list(self.factories.values())
        name = names[0].decode()
        if name not in self.factories:
            raise ApiError(404, f"no terminal {name!r} (terminals: {', '.join(self.factories)})")
        return [self.factories[name]]

    def _authorise(self, request) -> None:
        if self.token is None:
            return
        given = (request.getHeader(b"authorization") or b"").decode("latin-1")
        if not hmac.compare_digest(given, f"Bearer {self.token}"):
            raise ApiError(401, "missing or wrong token: send 'Authorization: Bearer TOKEN'")

    # -- endpoints: each takes the request and the terminals it is about (the first when it needs one)

    def health(self, request, chosen):
        return {"status": "ok", "version": __version__, "terminals": len(self.factories),
                "connections": sum(f.active for f in self.factories.values())}  # fmt: skip

    def terminals(self, request, chosen):
        return {"terminals": [{"name": f.name, "port": f.port_number} for f in self.factories.values()]}

    def get_settings(self, request, chosen):
        factory = chosen[0]
        settings = factory.terminal.settings
        values = {"terminal": factory.name}
        values.update({name: _jsonable(name, getattr(settings, name)) for name in TERMINAL_SETTINGS})
        values.update({name: getattr(factory.limits, name) for name in CONNECTION_SETTINGS})
        values["scenario"] = self.scenario_path and str(self.scenario_path)
        return values

    def change_settings(self, request, chosen):
        changes = _body(request)
        apply_settings(chosen[0], changes)
        log.info("terminal %s settings changed: %s", chosen[0].name, ", ".join(f"{k}={v}" for k, v in changes.items()))
        return self.get_settings(request, chosen)

    def get_outcomes(self, request, chosen):
        return {"queued": [str(outcome) for outcome in chosen[0].terminal.queued]}

    def queue_outcomes(self, request, chosen):
        body = _body(request)
        given = body.get("outcomes") if isinstance(body, dict) else body
        if isinstance(given, str | dict):
            given = [given]
        if not isinstance(given, list) or not given:
            raise ApiError(400, 'send {"outcomes": ["failure:refused", ...]} (or one outcome)')
        count = body.get("count", 1) if isinstance(body, dict) else 1
        if not isinstance(count, int) or count < 1:
            raise ApiError(400, "count must be a whole number >= 1")
        try:
            parsed = [outcomes.coerce(o) for o in given]
        except outcomes.OutcomeError as error:
            raise ApiError(400, str(error)) from None
        chosen[0].terminal.queued.extend(parsed * count)
        return self.get_outcomes(request, chosen)

    def clear_outcomes(self, request, chosen):
        chosen[0].terminal.queued.clear()
        return self.get_outcomes(request, chosen)

    def reload_scenario(self, request, chosen):
        if self.scenario_path is None:
            raise ApiError(400, "the server was started without --scenario")

        def load_all():  # in a thread: reading a file must not block the reactor
            try:  # all terminals or none: each gets its own rules, with their own state
                return [scenarios.build(self.scenario_path, self.seed, self.magic_amounts) for _ in chosen]
            except scenarios.ScenarioError as error:
                raise ApiError(400, str(error)) from None

        def apply(reloaded):
            for factory, scenario in zip(chosen, reloaded, strict=True):
                factory.terminal.scenario = scenario
            return {"rules": [rule.name for rule in reloaded[0].rules], "state": reloaded[0].state}

        reactor = chosen[0].reactor
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), load_all).addCallback(apply)

    def get_journal(self, request, chosen):
        last, after = _query_int(request, "last"), _query_int(request, "after") or 0
        terminal = chosen[0].name if len(chosen) == 1 and len(self.factories) > 1 else None
        return self.journal.entries(last=last, after=after, terminal=terminal).addCallback(
            lambda rows: {"transactions": rows}
        )

    def clear_journal(self, request, chosen):
        return self.journal.clear().addCallback(lambda _: {"transactions": []})

    def next_transaction(self, request, chosen):
        """Long poll: the first transaction after ?after=ID, waiting up to ?timeout=S (default 10) for it."""
        after = _query_int(request, "after")
        timeout = min(_query_float(request, "timeout", 10.0), MAX_WAIT)
        factory = chosen[0]
        waited = factory.next_transaction(self.journal.last_id if after is None else after, timeout)
        return waited.addCallback(lambda entry: {"transaction": entry})

    def reset(self, request, chosen):
        for factory in chosen:
            settings, limits = self.initial[factory.name]
            factory.terminal.settings = copy.deepcopy(settings)
            factory.limits.busy, factory.limits.after_answer = limits.busy, limits.after_answer
            factory.terminal.queued.clear()
            factory.terminal.history.clear()
            if factory.terminal.scenario:
                factory.terminal.scenario.reset()
        return self.journal.clear().addCallback(lambda _: {"reset": [f.name for f in chosen]})


def apply_settings(factory: TerminalFactory, changes) -> None:
    """Change settings of a running terminal, all or nothing; raises ApiError (400) saying what is wrong."""
    if not isinstance(changes, dict):
        raise ApiError(400, "send a JSON object of settings to change")
    parsed = {}
    for name, value in changes.items():
        parser = TERMINAL_SETTINGS.get(name) or CONNECTION_SETTINGS.get(name)
        if parser is None:
            known = ", ".join([*TERMINAL_SETTINGS, *CONNECTION_SETTINGS])
            raise ApiError(400, f"unknown setting {name!r} (settable: {known})")
        parsed[name] = _parse(parser, name, value)
    for name, value in parsed.items():
        setattr(factory.terminal.settings if name in TERMINAL_SETTINGS else factory.limits, name, value)


def _parse(parser, name: str, value):
    """A JSON value through the option parser that the command line uses."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = {"after_answer": "keep", "currencies": "all"}.get(name, "")
    elif isinstance(value, list):
        text = ",".join(str(v) for v in value)
    else:
        text = str(value)
    try:
        return parser(text)
    except argparse.ArgumentTypeError as error:
        raise ApiError(400, f"{name}: {error}") from None


def _jsonable(name: str, value):
    if name == "currencies":
        return "all" if value is None else sorted(value)
    if isinstance(value, outcomes.Outcome):
        return str(value)
    return value


def _body(request):
    try:
        return json.loads(request.content.read() or b"null")
    except ValueError as error:
        raise ApiError(400, f"the body is not JSON: {error}") from None


def _query_int(request, name: str) -> int | None:
    values = request.args.get(name.encode())
    if not values:
        return None
    try:
        return int(values[0])
    except ValueError:
        raise ApiError(400, f"{name} must be a whole number") from None


def _query_float(request, name: str, default: float) -> float:
    values = request.args.get(name.encode())
    if not values:
        return default
    try:
        return cli.non_negative_float(values[0].decode())
    except argparse.ArgumentTypeError as error:
        raise ApiError(400, f"{name}: {error}") from None


def _json(value) -> bytes:
    return json.dumps(value).encode() + b"\n"


def _fail(request, failure) -> None:
    error = failure.value
    if not isinstance(error, ApiError):
        log.error("control API: %s", failure.getTraceback())
        error = ApiError(500, f"internal error: {error}")
    request.setResponseCode(error.status)
    _finish(request, {"error": str(error)})


def _finish(request, value) -> None:
    if not request.finished and not getattr(request, "_disconnected", False):
        request.write(_json(value))
        request.finish()


def listen(api: ControlAPI, port: int, host: str, reactor):
    site = server.Site(api)
    site.noisy = False
    return reactor.listenTCP(port, site, interface=host)
