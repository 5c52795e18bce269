"""What the tests share: the request literal, a server process, reading answers, hand-made terminals, the client,
and what the browser tests need (Chromium, a POS paying in a thread, the page's errors).

Test modules import from here, never from one another.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from iso4217 import Currency
from twisted.internet import error, task
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python import failure

from caisse_ap_ip import client as pos_client
from caisse_ap_ip import testing
from caisse_ap_ip.journal import Journal
from caisse_ap_ip.protocol import FrameDecoder, Message
from caisse_ap_ip.proxy import ProxyFactory
from caisse_ap_ip.server import Limits, TerminalFactory
from caisse_ap_ip.terminal import Terminal, TerminalSettings

ROOT = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = ROOT / "caisse-ap-ip-server.py"
CLIENT_SCRIPT = ROOT / "caisse-ap-ip-client.py"
REQUEST = b"CZ0040300CJ012012345678901CA00201CE003978BA0010CD0010CB00511245"
ANSWER_END_TAGS = {"AE", "AF", "CG", "ZT"}  # the last tag of every answer shape the simulator sends
WAIT = 10.0  # upper bound for anything expected to happen; never a synchronisation sleep


class ServerProcess(testing.ServerProcess):
    """caisse-ap-ip-server.py, the script a user runs, started by the package's starter (-p 0, ports read)."""

    def __init__(self, *args: str):
        super().__init__(*args, command=(sys.executable, str(SERVER_SCRIPT)), timeout=WAIT)


@contextmanager
def server_running(*args: str):
    """A ServerProcess, stopped at the end of the block even when the test fails in it."""
    server = ServerProcess(*args)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


def read_answers(sock: socket.socket, count: int = 1) -> list[Message]:
    """Read ``count`` answers from a connection the terminal keeps open."""
    decoder = FrameDecoder()
    answers: list[Message] = []
    while True:
        last = decoder.open_message
        if len(answers) + 1 == count and decoder.at_boundary and last and last[-1][0] in ANSWER_END_TAGS:
            answers.append(decoder.flush())
        if len(answers) >= count:
            return answers
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed after {len(answers)} answers; pending {decoder.open_message}")
        answers.extend(decoder.feed(data))


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while data := sock.recv(65536):
        received += data
    return received


def call(server, method: str, path: str, body=None, token: str | None = None, timeout: float = WAIT, headers=()):
    """The control API of ``server`` (its ``control_port``), as a script calls it: (status, JSON answer)."""
    data = json.dumps(body).encode() if body is not None else None
    url = f"http://127.0.0.1:{server.control_port}{path}"
    request = urllib.request.Request(url, data=data, headers=dict(headers), method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def client(*args: str) -> subprocess.CompletedProcess:
    """caisse-ap-ip-client.py run as a user runs it."""
    command = [sys.executable, str(CLIENT_SCRIPT), "--quiet-time", "0.05", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=WAIT * 3)


# -- hand-made terminals that misbehave in precise ways, to test the client's reading


def read_request(conn: socket.socket) -> bytes:
    decoder, received = FrameDecoder(), b""
    while not (decoder.at_boundary and any(tag == "CB" for tag, _ in decoder.open_message)):
        data = conn.recv(4096)
        if not data:
            break
        received += data
        list(decoder.feed(data))
    return received


@contextmanager
def fake_terminal(behaviour):
    """Accept one connection and hand it to ``behaviour(conn)``; yields the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT)

    def serve():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            behaviour(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(WAIT)


def answering(pieces: list[bytes], pause: float = 0.0, then_close: bool = True, linger: float = 0.0):
    """A terminal that reads the request and writes ``pieces`` one by one, ``pause`` s apart (its own pace)."""

    def behaviour(conn: socket.socket):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        read_request(conn)
        for i, piece in enumerate(pieces):
            if i and pause:
                time.sleep(pause)
            conn.sendall(piece)
        if not then_close:
            conn.settimeout(linger or WAIT)
            with contextlib.suppress(OSError):
                conn.recv(1)  # keep the line open until the client leaves

    return behaviour


def scripted_terminal(pieces, sent_by_pos: threading.Event, got: list, close: bool):
    """A terminal that reads the request, then sends each piece once the POS has had the one before
    (``sent_by_pos`` is set by the POS each time), then closes or waits for the proxy to leave: each piece
    reaches the proxy in a read of its own, whatever the machine's load."""

    def behaviour(conn: socket.socket):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        got.append(read_request(conn))
        for piece in pieces:
            conn.sendall(piece)
            assert sent_by_pos.wait(WAIT)
            sent_by_pos.clear()
        if not close:
            conn.settimeout(WAIT)
            conn.recv(1)  # until the proxy hangs up

    return behaviour


def receive_pieces(sock: socket.socket, pieces: list[bytes], received: threading.Event) -> list[bytes]:
    """The POS's side of ``scripted_terminal``: each piece read whole, then ``received`` set; what came."""
    came = []
    for piece in pieces:
        data = b""
        while len(data) < len(piece):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {[*came, data]}")
            data += chunk
        came.append(data)
        received.set()
    return came


def split(data: bytes, *cuts: int) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# -- in process: the server's protocol and factory on fake transports and a task.Clock
#
# No socket, no thread, no wall clock: time moves only with ``clock.advance``. Closing a transport reaches the
# protocol at the next reactor turn, as with Twisted's TCP, so a test advances the clock (by 0) to see it.


class PosTransport(StringTransport):
    """The terminal's side of one TCP connection, in memory; ``writes`` keeps each write apart."""

    def __init__(self, clock: task.Clock, port: int):
        super().__init__(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        self.clock = clock
        self.protocol = None
        self.writes: list[bytes] = []
        self.aborted = False  # the terminal reset the connection (RST) rather than closing it
        self.write_closed = False  # shut down for writing (half-closed)

    def write(self, data: bytes) -> None:
        assert not self.disconnected, "written after the connection was lost"
        super().write(data)
        self.writes.append(data)

    def loseConnection(self) -> None:
        if not self.disconnecting:
            super().loseConnection()
            self.clock.callLater(0, self.lost, error.ConnectionDone("closed by the terminal"))

    def loseWriteConnection(self) -> None:
        self.write_closed = True

    def abortConnection(self) -> None:
        self.aborted = True
        if not self.disconnecting:
            super().loseConnection()
            self.clock.callLater(0, self.lost, error.ConnectionAborted("reset by the terminal"))

    def lost(self, reason: Exception) -> None:
        if not self.disconnected:
            self.disconnected = True
            self.connected = False
            self.protocol.connectionLost(failure.Failure(reason))


class Pos:
    """One POS connected to an in-process terminal: send bytes, read what the terminal wrote."""

    def __init__(self, connection, transport: PosTransport):
        self.connection = connection
        self.transport = transport

    def send(self, data: bytes) -> None:
        self.connection.dataReceived(data)

    def shutdown_write(self) -> None:
        """The POS shuts its sending side down (FIN): a half-close if the protocol takes one, else the end."""
        half_closeable = IHalfCloseableProtocol(self.connection, None)
        if half_closeable is None:
            self.transport.lost(error.ConnectionDone("closed by the POS"))
        else:
            half_closeable.readConnectionLost()

    def reset(self) -> None:
        """The POS resets the connection (RST)."""
        self.transport.lost(error.ConnectionLost("reset by the POS"))

    @property
    def received(self) -> bytes:
        return self.transport.value()

    @property
    def closed(self) -> bool:
        """Whether the terminal closed (or reset) the connection."""
        return self.transport.disconnecting

    def answers(self) -> list[Message]:
        """Every whole message the terminal wrote, in order."""
        decoder = FrameDecoder()
        messages = decoder.feed(self.received)
        last = decoder.flush()
        return [*messages, last] if last else messages

    def fields(self) -> dict[str, str]:
        """The tags of the one answer written so far."""
        (answer,) = self.answers()
        return dict(answer)


class InProcessTerminal:
    """A TerminalFactory with a Terminal(TerminalSettings(duration=0, ...)), an in-memory journal and a Clock."""

    clock_class = task.Clock

    def __init__(self, limits: Limits | None = None, **settings):
        self.clock = self.clock_class()
        self.journal = Journal(None, reactor=self.clock)
        settings.setdefault("duration", 0)
        terminal = Terminal(TerminalSettings(**settings), rng=random.Random(7), clock=lambda: datetime(2025, 3, 14, 9))
        self.factory = self.build_factory(terminal, limits or Limits())
        self.factory.doStart()
        self._ports = itertools.count(40000)

    def build_factory(self, terminal: Terminal, limits: Limits) -> TerminalFactory:
        return TerminalFactory(terminal, limits, reactor=self.clock, journal=self.journal)

    def connect(self) -> Pos:
        port = next(self._ports)
        connection = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", port))
        transport = PosTransport(self.clock, port)
        transport.protocol = connection
        connection.makeConnection(transport)
        return Pos(connection, transport)

    def advance(self, seconds: float = 0) -> None:
        """Let ``seconds`` pass, each timer running at its own time (one Clock.advance would run a timer that a
        timer started at the time of the first)."""
        clock = self.clock
        target = clock.seconds() + seconds
        while due := [call.getTime() for call in clock.getDelayedCalls() if call.getTime() <= target]:
            clock.rightNow = max(clock.rightNow, min(due))
            clock.advance(0)
        clock.rightNow = target

    def exchange(self, data: bytes = REQUEST, seconds: float = 60) -> Pos:
        """A new POS sends ``data``, then ``seconds`` pass."""
        pos = self.connect()
        pos.send(data)
        self.advance(seconds)
        return pos

    def entries(self) -> list[dict]:
        """The journal's transactions, oldest first."""
        rows: list[dict] = []
        self.journal.entries().addCallback(rows.extend)
        return rows


# -- in process: the proxy between a POS and a scripted real terminal, on fake transports and a MemoryReactorClock

REAL_TERMINAL = ("127.0.0.1", 9100)


class RealTerminal(Pos):
    """The real terminal's end of a connection the proxy made: it sends, and ``received`` is what the proxy
    forwarded to it."""

    def close(self) -> None:
        self.transport.lost(error.ConnectionDone("closed by the real terminal"))


class InProcessProxy(InProcessTerminal):
    """A ProxyFactory relaying to REAL_TERMINAL; ``accept`` plays the real terminal taking the proxy's connection."""

    clock_class = MemoryReactorClock

    def build_factory(self, terminal: Terminal, limits: Limits) -> ProxyFactory:
        return ProxyFactory(terminal, limits, self.clock, self.journal, real_terminal=REAL_TERMINAL, connect_timeout=5)

    def dialled(self):
        """(host, port, dialer, timeout) of the proxy's last connection attempt."""
        host, port, dialer, timeout, _ = self.clock.tcpClients[-1]
        return host, port, dialer, timeout

    def accept(self) -> RealTerminal:
        host, port, dialer, _ = self.dialled()
        side = dialer.buildProtocol(IPv4Address("TCP", host, port))
        transport = PosTransport(self.clock, port)  # the same in-memory connection, from the proxy's side
        transport.protocol = side
        side.makeConnection(transport)
        return RealTerminal(side, transport)

    def refuse(self, reason: Exception) -> None:
        """The proxy's last connection attempt fails with ``reason``."""
        self.dialled()[2].clientConnectionFailed(self.clock.connectors[-1], failure.Failure(reason))

    def relay(self, request: bytes = REQUEST) -> tuple[Pos, RealTerminal]:
        """A new POS connected through the proxy to the terminal, ``request`` sent."""
        pos = self.connect()
        terminal = self.accept()
        pos.send(request)
        return pos, terminal


# -- the browser tests: Debian's Chromium driven by Playwright (a module each, with its own server and browser)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
LAPTOP, PHONE = {"width": 1366, "height": 860}, {"width": 390, "height": 844}


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (requirements-dev.txt)"
    if not shutil.which(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def skip_without_browser() -> None:
    """At a browser module's import: skip it without Chromium or Playwright, unless CAISSE_BROWSER_REQUIRED is
    set (as .ci/run does), which fails it."""
    missing = browser_missing()
    if missing and os.environ.get("CAISSE_BROWSER_REQUIRED"):
        pytest.fail(f"the browser tests must run here: {missing}", pytrace=False)
    if missing:
        pytest.skip(missing, allow_module_level=True)


@contextmanager
def chromium():
    """Chromium launched by Playwright (never downloaded: Debian's)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def fresh_page(tab, server):
    """The page loaded afresh on a reset server, its event stream live; the page's script never fails, nor any
    of its requests, while the block runs."""
    from playwright.sync_api import expect

    assert call(server, "POST", "/reset")[0] == 200
    with page_errors(tab):
        with history_read(tab):
            tab.goto(server.ui_url)
        expect(tab.locator("#link")).to_have_text("live")
        yield


def screen(page):
    return page.get_by_role("status", name="Terminal screen")


@contextmanager
def page_errors(tab):
    """Fails the block if the page's script threw or one of its requests failed (a value the API refused, which
    the page shows to the person, is not a failure)."""
    errors: list[str] = []

    def failed(error):
        errors.append(str(error))

    def logged(message):
        shown = "status of 400" in message.text
        if message.type == "error" and not shown:
            errors.append(message.text)

    tab.on("pageerror", failed)
    tab.on("console", logged)
    try:
        yield
    finally:
        tab.remove_listener("pageerror", failed)
        tab.remove_listener("console", logged)
    assert not errors, errors


@contextmanager
def history_read(tab):
    """Around what loads the page: ends once the page has read the journal's history, so that a transaction
    journaled from then on is one the page announces on its screen (one journaled before is history: listed)."""
    with tab.expect_response(lambda response: urllib.parse.urlsplit(response.url).path == "/journal"):
        yield


class Payment:
    """A POS paying in a thread, as a cash register waits for its terminal."""

    def __init__(self, port: int, amount: str = "12.00", check: bool = False):
        request = pos_client.payment_request(Decimal(amount), Currency.EUR, check=check)
        self._exchange = self._error = None
        self._thread = threading.Thread(target=self._pay, args=(port, request), daemon=True)
        self._thread.start()

    def _pay(self, port, request):
        try:
            self._exchange = pos_client.transact("127.0.0.1", port, request, timeout=WAIT * 3, quiet_time=0.05)
        except Exception as error:  # handed to the test by answer()
            self._error = error

    def answer(self) -> dict[str, str]:
        """The tags of the POS's answer, once it has one."""
        self._thread.join(WAIT * 3)
        assert not self._thread.is_alive(), "the POS got no answer"
        if self._error is not None:
            raise self._error
        return dict(self._exchange.answer)
