"""The control API: JSON over HTTP to read and change a running terminal, for test suites.

Every answer is JSON. Errors are {"error": "..."} with 400 (bad value), 401
(token), 403 (a browser page of another origin), 404 (no such endpoint or
transaction), 405 (method), 409 (a transaction already decided) or 415 (a
browser's body that is not JSON).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import socket
from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.web import resource, server

from . import __version__, decisions, options, outcomes, scenarios
from .options import SettingError

if TYPE_CHECKING:
    from .simulator import Simulator, TerminalHandle

log = logging.getLogger("caisse_ap_ip.control")
MAX_WAIT = 60.0
CHANGING = frozenset({"POST", "PATCH", "DELETE"})
PENDING_PREFIX = "/pending/"
MAX_WHO = 40  # characters of the "by" of a decision


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
        self.ui = ui  # the web page's resources (--ui), which claim their own paths
        self.loopback_only = is_loopback(getattr(simulator.args, "control_host", "127.0.0.1"))
        self.own_names = _own_names()
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
            ("GET", "/pending"): self.get_pending,
            ("POST", PENDING_PREFIX): self.decide,  # /pending/ID or /pending/oldest
            ("GET", "/ticket"): self.get_ticket,
        }

    @property
    def journal(self):
        return self.simulator.journal  # the terminals of a process share one journal

    def render(self, request):
        method, path = request.method.decode(), request.path.decode().rstrip("/") or "/"
        if not self._known_host(request.getHeader(b"host")):
            request.setResponseCode(403)  # a page of another site whose name now points here (DNS rebinding)
            return json_body({"error": "this API answers only to an address, localhost or this machine's name"})
        if self.ui is not None and self.ui.claims(method, path):
            return self.ui.render(request)
        request.setHeader(b"content-type", b"application/json")
        try:
            _same_origin(request, method)
            self._authorise(request)
            handler = self._handler(method, path)
            result = handler(request, self._chosen(request))
        except ApiError as error:
            request.setResponseCode(error.status)
            return json_body({"error": str(error)})
        if hasattr(result, "addCallback"):  # a Deferred: the journal is being read, a file loaded, or a wait
            result.addCallbacks(lambda value: _finish(request, value), lambda failure: _fail(request, failure))
            request.notifyFinish().addErrback(lambda _: result.cancel())  # the client left: stop waiting for it
            return server.NOT_DONE_YET
        return json_body(result)

    def _known_host(self, header: bytes | None) -> bool:
        """Whether the Host a request names is this API's: loopback only when it listens on loopback; else any
        address or this machine's own name, never a name of somebody else's (DNS rebinding)."""
        if header is None:
            return True  # HTTP/1.0 clients send none; browsers always do
        host = _host_of(header)
        if self.loopback_only:
            return is_loopback(host)
        return _is_address(host) or host in self.own_names

    def _handler(self, method: str, path: str):
        route = PENDING_PREFIX if path.startswith(PENDING_PREFIX) else path
        handler = self.routes.get((method, route))
        if handler is None:
            known = [m for m, p in self.routes if p == route]
            if known:
                raise ApiError(405, f"{path} takes {', '.join(known)}")
            raise ApiError(404, f"no endpoint {path}")
        return handler

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
        if not bearer_ok(request, self.token):
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
        return {**chosen[0].settings(), "scenario": path and str(path), "proxy": self.simulator.real_terminal}

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

    def get_pending(self, request, chosen):
        """Transactions waiting for a person's decision, oldest first: of every terminal, or of ?terminal=;
        with ?wait=S, waits up to S seconds for one to arrive."""
        terminal = _named(request, chosen)
        wait = min(_query_float(request, "wait", 0.0), MAX_WAIT)
        waited = self.simulator.decisions.when_waiting(terminal, wait)
        return waited.addCallback(lambda waiting: {"pending": [pending.describe() for pending in waiting]})

    def decide(self, request, chosen):
        """POST /pending/ID {"outcome": "success:cbcontactless", "by": "web"}: the first decision wins."""
        which = request.path.decode().rstrip("/")[len(PENDING_PREFIX) :]
        body = _body(request)
        if not isinstance(body, dict) or "outcome" not in body:
            raise ApiError(400, 'send {"outcome": "success", "by": "me"} (any outcome but ask)')
        by = _who(body.get("by"))
        terminal = _named(request, chosen)
        try:
            outcome = outcomes.coerce(body["outcome"])
            pending = self.simulator.decisions.decide(_pending_id(which), outcome, by, terminal)
        except outcomes.OutcomeError as error:
            raise ApiError(400, str(error)) from None
        except decisions.NotPending as error:
            raise ApiError(404, str(error)) from None
        except decisions.AlreadyDecided as error:
            raise ApiError(409, str(error)) from None
        log.debug("terminal %s transaction %d decided by %s: %s", pending.terminal, pending.id, by, outcome)
        return {"decided": {**pending.describe(), "outcome": str(outcome), "by": by}}

    def get_ticket(self, request, chosen):
        return {"terminal": chosen[0].name, "ticket": chosen[0].last_ticket()}


def bearer_ok(request, token: str) -> bool:
    """Whether the request carries 'Authorization: Bearer TOKEN'; compared as bytes, so that a header that is not
    ASCII is a wrong token, not an error."""
    return hmac.compare_digest(request.getHeader(b"authorization") or b"", b"Bearer " + token.encode())


def _named(request, chosen) -> str | None:
    """The terminal ?terminal= names, or None when the request is about all of them."""
    return chosen[0].name if request.args.get(b"terminal") else None


def _who(given: object) -> str:
    """Who decided, as the journal and the log lines will say it: printable, one line, short."""
    text = "".join(character for character in str(given or "") if character.isprintable())
    return text[:MAX_WHO].strip() or "api"


def _pending_id(text: str) -> int | str:
    if text == decisions.OLDEST:
        return text
    try:
        return int(text)
    except ValueError:
        raise ApiError(404, f"no transaction {text!r}: /pending/ID takes a number or 'oldest'") from None


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host_of(header: bytes) -> str:
    """The host of a Host header: host, host:port, [v6]:port."""
    host = header.decode("latin-1").lower()
    return host[1 : host.index("]")] if host.startswith("[") and "]" in host else host.rpartition(":")[0] or host


def _own_names() -> frozenset[str]:
    """localhost and the names this machine calls itself (with .local, as mDNS gives it)."""
    names = {"localhost", socket.gethostname().lower()}  # not getfqdn: it may wait for a DNS server
    return frozenset(names | {f"{name.split('.')[0]}.local" for name in names})


def _same_origin(request, method: str) -> None:
    """A browser says where a request comes from: a page of another site must not change the terminal, and
    a browser's body must be JSON, which no plain HTML form can send. Clients that send no Origin (curl,
    scripts, the tests) are not browsers."""
    origin = request.getHeader(b"origin")
    if method not in CHANGING or origin is None:
        return
    host = (request.getHeader(b"host") or b"").decode("latin-1")
    if origin.decode("latin-1") not in (f"http://{host}", f"https://{host}"):
        raise ApiError(403, f"requests from the page of {origin.decode('latin-1')} are refused (same origin only)")
    kind = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
    if method != "DELETE" and kind != b"application/json":
        raise ApiError(415, "a browser's request must send its body as application/json")


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


def json_body(value) -> bytes:
    return json.dumps(value).encode() + b"\n"


def _fail(request, failure) -> None:
    if failure.check(defer.CancelledError):
        return  # the client left before the answer
    error = failure.value
    if not isinstance(error, ApiError):
        log.error("control API: %s", failure.getTraceback())
        error = ApiError(500, f"internal error: {error}")
    request.setResponseCode(error.status)
    _finish(request, {"error": str(error)})


def _finish(request, value) -> None:
    if not request.finished and not getattr(request, "_disconnected", False):
        request.write(json_body(value))
        request.finish()


def listen(api: ControlAPI, port: int, host: str, reactor):
    site = server.Site(api)
    site.noisy = False
    return reactor.listenTCP(port, site, interface=host)
