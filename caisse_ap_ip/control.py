"""The control API: JSON over HTTP to read and change a running terminal, for test suites.

Every answer is JSON. Errors are {"error": "..."} with 400 (bad value), 401
(token), 404 (no such endpoint) or 405 (method).
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import TYPE_CHECKING

from twisted.web import resource, server

from . import __version__, options, outcomes, scenarios
from .options import SettingError

if TYPE_CHECKING:
    from .simulator import Simulator, TerminalHandle

log = logging.getLogger("caisse_ap_ip.control")
MAX_WAIT = 60.0


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ControlAPI(resource.Resource):
    """One API for the terminals of a process; ``?terminal=NAME`` picks one (default: the first)."""

    isLeaf = True

    def __init__(self, simulator: Simulator, token: str | None = None, ui=None):
        super().__init__()
        self.simulator = simulator
        self.token = token
        self.ui = ui  # the web virtual terminal (webui.WebUI), which serves the page's own paths
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
        return self.simulator.journal  # the terminals of a process share one journal

    def render(self, request):
        if self.ui is not None and self.ui.claims(request):
            return self.ui.render(request)
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

    def _chosen(self, request) -> list[TerminalHandle]:
        """The terminals a request is about: ?terminal=NAME, else all (for reset and the journal) or the first."""
        names = request.args.get(b"terminal")
        if not names:
            return list(self.simulator.terminals)
        name = names[0].decode()
        try:
            return [self.simulator.terminal(name)]
        except KeyError:
            known = ", ".join(handle.name for handle in self.simulator.terminals)
            raise ApiError(404, f"no terminal {name!r} (terminals: {known})") from None

    def _authorise(self, request) -> None:
        if self.token is None:
            return
        given = (request.getHeader(b"authorization") or b"").decode("latin-1")
        if not hmac.compare_digest(given, f"Bearer {self.token}"):
            raise ApiError(401, "missing or wrong token: send 'Authorization: Bearer TOKEN'")

    # -- endpoints: each takes the request and the terminals it is about (the first when it needs one)

    def health(self, request, chosen):
        terminals = self.simulator.terminals
        return {"status": "ok", "version": __version__, "terminals": len(terminals),
                "connections": sum(handle.active for handle in terminals)}  # fmt: skip

    def terminals(self, request, chosen):
        return {"terminals": [{"name": handle.name, "port": handle.port} for handle in self.simulator.terminals]}

    def get_settings(self, request, chosen):
        path = self.simulator.scenario_path
        return {**chosen[0].settings(), "scenario": path and str(path)}

    def change_settings(self, request, chosen):
        changes = _body(request)
        try:
            chosen[0].change(changes)
        except SettingError as error:
            raise ApiError(400, str(error)) from None
        described = ", ".join(f"{name}={json.dumps(value)}" for name, value in changes.items())
        log.info("terminal %s settings changed: %s", chosen[0].name, described)
        return self.get_settings(request, chosen)

    def get_outcomes(self, request, chosen):
        return {"queued": chosen[0].queued()}

    def queue_outcomes(self, request, chosen):
        body = _body(request)
        given = body.get("outcomes") if isinstance(body, dict) else body
        if isinstance(given, str | dict):
            given = [given]
        if not isinstance(given, list) or not given:
            raise ApiError(400, 'send {"outcomes": ["failure:refused", ...]} (or one outcome)')
        count = body.get("count", 1) if isinstance(body, dict) else 1
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ApiError(400, "count must be a whole number >= 1")
        try:
            chosen[0].queue(given * count)
        except outcomes.OutcomeError as error:
            raise ApiError(400, str(error)) from None
        return self.get_outcomes(request, chosen)

    def clear_outcomes(self, request, chosen):
        chosen[0].clear_queue()
        return self.get_outcomes(request, chosen)

    def reload_scenario(self, request, chosen):
        def refused(failure):
            failure.trap(scenarios.ScenarioError)
            raise ApiError(400, str(failure.value))

        reloading = self.simulator.reload_scenario(chosen)
        reloading.addCallback(lambda first: {"rules": [rule.name for rule in first.rules], "state": first.state})
        return reloading.addErrback(refused)

    def get_journal(self, request, chosen):
        last, after = _query_int(request, "last"), _query_int(request, "after") or 0
        several = len(self.simulator.terminals) > 1
        terminal = chosen[0].name if len(chosen) == 1 and several else None
        return self.journal.entries(last=last, after=after, terminal=terminal).addCallback(
            lambda rows: {"transactions": rows}
        )

    def clear_journal(self, request, chosen):
        return self.journal.clear().addCallback(lambda _: {"transactions": []})

    def next_transaction(self, request, chosen):
        """Long poll: the first transaction after ?after=ID, waiting up to ?timeout=S (default 10) for it."""
        after = _query_int(request, "after")
        timeout = min(_query_float(request, "timeout", 10.0), MAX_WAIT)
        waited = chosen[0].next_transaction(self.journal.last_id if after is None else after, timeout)
        return waited.addCallback(lambda entry: {"transaction": entry})

    def reset(self, request, chosen):
        return self.simulator.reset(chosen).addCallback(lambda names: {"reset": names})


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
        return options.non_negative_float(values[0].decode())
    except SettingError as error:
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
