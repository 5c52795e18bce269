"""The web virtual terminal, served by the control API on its port: the page's files and its live event stream.

    GET /                   the page (caisse_ap_ip/web/index.html)
    GET /ui/NAME            its style sheet, script and icon (the other files of caisse_ap_ip/web)
    GET /ui/page.json       what the page is built from: the runtime settings as its form shows them (from the
                            table of settings.py), the keys of the server's own prompt (prompt.KEYS), what
                            each of its buttons decides (BUTTONS) and what its screen says of an answer (SCREEN)
    GET /events             Server-Sent Events: ``hello`` and the pending list at once, then every event of
                            ``simulator.events`` (see events.py), a comment line every KEEPALIVE seconds; closed
                            when MAX_UNSENT bytes wait for a browser that stopped reading (its page reconnects)

Everything else is the control API's, which the page calls with fetch. The page
loads without the token; the API and the stream ask for it (the stream as
``?token=``, since a browser's EventSource sends no header).
"""

from __future__ import annotations

import hmac
import json
import logging
from importlib import resources
from typing import TYPE_CHECKING, NamedTuple

from twisted.internet import task
from twisted.internet.interfaces import IPushProducer
from twisted.web import server
from zope.interface import implementer

from . import __version__, codes, control, decisions, display, options, outcomes, prompt, settings
from .cards import PAYMENT_TYPES

if TYPE_CHECKING:
    from .simulator import Simulator

log = logging.getLogger("caisse_ap_ip.webui")

KEEPALIVE = 15.0  # seconds between comment lines, so that proxies and browsers keep an idle stream open
RETRY_MS = 1000  # how soon a browser reconnects a stream that broke
MAX_STREAMS = 32  # open event streams at once; a page holds one
MAX_UNSENT = 1 << 20  # bytes a stream writes once the transport's buffer is full, before it is closed
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
PAGE_HEADERS = {
    "cache-control": "no-cache",  # a new version of the package shows at the next load
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'",
}
FIRST_SETTINGS = ("outcome", "failure", "failure_type", "duration", "payment_type", "profile")
NUMBERS = frozenset({options.non_negative_float, options.positive_float})

# What the terminal's screen says of an answer. Its status (AE) gives the tone, the message and the word of the
# transaction list ("card": the card's name follows); any other status is a failure, said as FAILURE unless its
# complement (AF) says it otherwise: abandoned rather than refused, and why, on the line below.
SCREEN = {
    "statuses": {
        codes.SUCCESS: {"tone": "ok", "title": "PAIEMENT ACCEPTE", "summary": "success", "card": True},
        codes.ACKNOWLEDGED: {"tone": "other", "title": "OPERATION EN COURS", "summary": "acknowledged"},
    },
    "failure": {"tone": "fail", "title": "PAIEMENT REFUSE", "detail": ""},
    "complements": {
        codes.INPUT_TIMEOUT: {"title": "ABANDON", "detail": "TEMPS DEPASSE"},
        codes.OPERATOR_ABANDON: {"title": "ABANDON"},
        codes.FAILURE_TYPES["cardholder-abandon"]: {"title": "ABANDON"},
        codes.FAILURE_TYPES["forbidden"]: {"detail": "OPERATION INTERDITE"},
        codes.NOT_COMPLETED: {"detail": "TERMINAL OCCUPE"},
    },
}


class Button(NamedTuple):
    """A button of the page that decides a waiting payment: ``data-button`` in index.html."""

    name: str
    hint: str  # what its title says before what the POS gets
    key: str | None = None  # the key of the server's prompt that decides the same: its outcome is the button's
    outcome: str | None = None  # for a button that no key matches, in the outcome vocabulary

    def decides(self) -> str:
        return prompt.BY_KEY[self.key].outcome if self.key else self.outcome


BUTTONS = (
    Button("insert-cb", "Chip card: then Validate (green) as the PIN is typed", outcome="success:cbcontact"),
    Button("contactless", "Tap a CB card: paid at once", key="c"),
    Button("amex", "Amex chip card: then Validate (green)", key="a"),
    Button("check", "For a check payment: the check is read", key="\r"),
    Button("refused", "The bank refuses", key="r"),
    Button("forbidden", "The bank forbids the card", key="f"),
    Button("timeout", "As if nobody presented a card", key="t"),
    Button("cancel", "Abandon", key="x"),
    Button("validate", "Pay with the card in the reader, or else the payment type setting", key="\r"),
)


class WebUI:
    """The page's resources; ``ControlAPI`` hands it the requests it ``claims``."""

    def __init__(self, simulator: Simulator, token: str | None = None):
        self.simulator = simulator
        self.token = token
        self.files = _files()
        built = {"settings": settings_form(), "keys": keys(), "buttons": buttons(), "screen": screen()}
        self.files["/ui/page.json"] = ("application/json", json.dumps(built).encode())
        self.streams: set[EventStream] = set()

    def claims(self, method: str, path: str) -> bool:
        return method == "GET" and (path in ("/", "/events") or path.startswith("/ui/"))

    def render(self, request):
        path = request.path.decode()
        if path == "/events":
            return self._stream(request)
        found = self.files.get("/ui/index.html" if path == "/" else path)
        if found is None:
            return _error(request, 404, f"no file {path}")
        content_type, body = found
        for name, value in PAGE_HEADERS.items():
            request.setHeader(name, value)
        request.setHeader("content-type", content_type)
        return body

    def _stream(self, request):
        allowed = self._allowed(request)
        request.uri = request.path  # the access log of -l debug writes the uri: never a token, right or wrong
        if not allowed:
            return _error(request, 401, "missing or wrong token: open /events?token=TOKEN")
        if len(self.streams) >= MAX_STREAMS:
            return _error(request, 503, f"{MAX_STREAMS} event streams are open already")
        stream = EventStream(request, self.simulator)
        self.streams.add(stream)
        request.notifyFinish().addBoth(lambda _: self.streams.discard(stream))
        return server.NOT_DONE_YET

    def _allowed(self, request) -> bool:
        if self.token is None:
            return True
        given = (request.args.get(b"token") or [b""])[0]  # compared as bytes: any token is refused, never an error
        return hmac.compare_digest(given, self.token.encode()) or control.bearer_ok(request, self.token)


@implementer(IPushProducer)
class EventStream:
    """One open ``GET /events``: every event written as it happens, until the browser goes.

    A browser that stops reading (a tab in the background, a phone out of reach) would have every event kept
    for it in the transport's buffer, without end. The stream is the request's producer: the transport pauses
    it when its buffer is full and resumes it when that drained; what the stream writes in between is counted,
    and past MAX_UNSENT the connection is dropped, its buffer with it. The page's EventSource reconnects and
    reads again what it missed, as after any broken connection.
    """

    def __init__(self, request, simulator: Simulator):
        self.request = request
        self.reactor = simulator.reactor
        self.unsent: int | None = None  # bytes written since the transport's buffer is full; None: it is not
        self.dropped = False
        request.registerProducer(self, True)
        request.setHeader("content-type", "text/event-stream; charset=utf-8")
        request.setHeader("cache-control", "no-cache")
        self._write(f"retry: {RETRY_MS}\n\n".encode())
        self.send("hello", {"now": self.reactor.seconds(), "version": __version__})
        self.send("pending", {"pending": simulator.decisions.briefs()})
        self._unsubscribe = simulator.events.subscribe(self.send)
        self._beat = task.LoopingCall(self._keep_alive)
        self._beat.clock = self.reactor
        self._beat.start(KEEPALIVE, now=False)
        request.notifyFinish().addBoth(self._finished)

    def send(self, kind: str, data: dict) -> None:
        self._write(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())

    def _keep_alive(self) -> None:
        self._write(b": keep-alive\n\n")

    def _write(self, data: bytes) -> None:
        if self.dropped:
            return  # until the abort reaches the request
        self.request.write(data)
        if self.unsent is None:
            return
        self.unsent += len(data)
        if self.unsent > MAX_UNSENT:
            self.dropped = True
            peer = display.address(self.request.getClientAddress())
            log.info("event stream of %s dropped: its browser stopped reading (%d bytes more than its buffer)",
                     peer, self.unsent)  # fmt: skip
            self.request.transport.abortConnection()  # loseConnection would wait for the buffer to drain

    # IPushProducer, as the transport drives it through the request

    def pauseProducing(self) -> None:
        if self.unsent is None:
            self.unsent = 0

    def resumeProducing(self) -> None:
        self.unsent = None

    def stopProducing(self) -> None:
        """The connection goes: ``_finished`` follows, from the request."""

    def _finished(self, _) -> None:
        self._unsubscribe()
        if self._beat.running:
            self._beat.stop()


def settings_form() -> list[dict]:
    """Each runtime setting as the page's form shows it: the ones a person changes most first."""
    rows = sorted(settings.RUNTIME.values(), key=lambda row: (row.name not in FIRST_SETTINGS, _rank(row.name)))
    return [
        {
            "name": row.name,
            "flag": row.flags[-1],
            "help": row.help,
            "kind": _kind(row),
            "choices": list(row.choices or ()),
            "suggestions": _SUGGESTIONS.get(row.name, []),
            "unset": _UNSET.get(row.name),
            "first": row.name in FIRST_SETTINGS,
        }
        for row in rows
    ]


def keys() -> list[dict]:
    """The prompt's keys, which the page takes too: the same key decides the same way at both keyboards."""
    return [{"key": key.name, "outcome": key.outcome, "label": key.label} for key in prompt.KEYS]


def buttons() -> dict[str, dict]:
    """Each deciding button of the page: its outcome, its title, and for a chip card the scheme its screen names
    while the PIN is typed (the green key then pays with it)."""
    found = {}
    for button in BUTTONS:
        outcome = button.decides()
        card = PAYMENT_TYPES.get(outcomes.parse(outcome).payment_type or "")
        chip = card is not None and card.read_mode == codes.CONTACT
        title = f"{button.hint} ({answered(outcome)})"
        found[button.name] = {"outcome": outcome, "title": title, "chip": card.scheme if chip else None}
    return found


def screen() -> dict:
    """SCREEN, and what the screen says while a payment waits: what nobody's decision answers."""
    return {**SCREEN, "timeout": answered(str(decisions.TIMED_OUT))}


def answered(text: str) -> str:
    """What the POS gets for an outcome, as the page's titles say it: 'AE=01 AF=04', 'AE=10 CC=00B CI=2'."""
    outcome = outcomes.parse(text)
    if outcome.kind in outcomes.FAILING:
        return f"AE={codes.FAILURE} AF={outcome.code}"
    if outcome.kind != "success":
        return outcome.describe()
    card = PAYMENT_TYPES.get(outcome.payment_type or "")
    return f"AE={codes.SUCCESS} CC={card.application} CI={card.read_mode}" if card else f"AE={codes.SUCCESS}"


def _rank(name: str) -> int:
    return FIRST_SETTINGS.index(name) if name in FIRST_SETTINGS else 0


def _kind(row: settings.Setting) -> str:
    if row.parse is None:
        return "flag"
    if row.choices:
        return "choice"
    return "number" if row.parse in NUMBERS else "text"


def _complete(kind: str) -> bool:
    """Whether a kind is an outcome without its argument (delay and partial need one)."""
    try:
        outcomes.parse(kind)
    except outcomes.OutcomeError:
        return False
    return True


_SUGGESTIONS = {  # what a text setting is often given, for the page to propose (any valid value is taken)
    "outcome": [
        *(kind for kind in outcomes.KINDS if _complete(kind)),
        *(f"success:{name}" for name in PAYMENT_TYPES),
        *(f"failure:{name}" for name in codes.FAILURE_TYPES),
        "partial:50%",
        "delay:2",
    ],
    "failure_type": list(codes.FAILURE_TYPES),
    "after_answer": ["keep", "close", "2"],
    "currencies": ["all", "EUR", "EUR,XPF,USD"],
}


_UNSET = {"after_answer": "keep"}  # what a null value means, where the field shows it as text


def _files() -> dict[str, tuple[str, bytes]]:
    """The page's files, read once at start-up (the reactor never waits on the disk): path -> (type, bytes)."""
    folder = resources.files(__package__) / "web"
    found = {}
    for entry in folder.iterdir():
        content_type = CONTENT_TYPES.get("." + entry.name.rpartition(".")[2])
        if entry.is_file() and content_type:
            found[f"/ui/{entry.name}"] = (content_type, entry.read_bytes())
    return found


def _error(request, status: int, message: str) -> bytes:
    request.setResponseCode(status)
    request.setHeader("content-type", "application/json")
    return control.json_body({"error": message})
