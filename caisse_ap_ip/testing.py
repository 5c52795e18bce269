"""A simulated terminal for a POS project's tests, in the test process or as a subprocess.

    from caisse_ap_ip.testing import SimulatedTerminal

    with SimulatedTerminal("--profile", "ingenico") as terminal:   # any option of caisse-ap-ip-server
        terminal.next("failure:refused", delay=2)  # the next transaction is refused, after 2 s
        my_pos.pay("127.0.0.1", terminal.port, 12.50)
        sent = terminal.wait_for_transaction()   # what the POS sent, and what it got

In a thread (the default), one Twisted reactor runs in a background thread for
the whole process and the simulator is the one the command line builds
(``simulator.Simulator``); as a subprocess (``subprocess=True``), the terminal
is controlled through its control API. Both offer the same methods.

``ServerProcess`` starts ``caisse-ap-ip-server`` as a process and reads the
ports it prints; the subprocess backend, the project's tests and its
benchmarks share it.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from . import decisions, display, outcomes, settings
from .outcomes import Outcome

BY_PYTHON = "python"  # who decided, in the journal, for decisions made through SimulatedTerminal.decide
DEFAULT_OPTIONS = ("-p", "0", "-d", "0")  # an ephemeral port; tests want answers at once unless they say otherwise
SERVER_COMMAND = (sys.executable, "-m", "caisse_ap_ip.server_cli")
START_TIMEOUT = 10.0
_ANNOUNCED = re.compile(r"(?P<what>listening|control) on (?P<host>.+):(?P<port>\d+)|virtual terminal on (?P<url>.+)")
_reactor_lock = threading.Lock()
_reactor_thread: threading.Thread | None = None


class TerminalError(RuntimeError):
    pass


class ServerProcess:
    """caisse-ap-ip-server started with ``-p 0`` before ``args``, once it has printed where it listens.

    ``ports`` (``port``, the first) come from its 'listening on' lines, ``control_port`` from 'control on',
    ``ui_url`` from 'virtual terminal on' (with ``--ui``); if it exits or says nothing in time, TerminalError gives
    its exit status and what it wrote on stderr."""

    def __init__(self, *args: str, command=SERVER_COMMAND, timeout: float = START_TIMEOUT, keep_stderr: bool = True):
        self.timeout = timeout
        # stderr goes to a file (never a pipe nobody reads, which would block the server once full)
        self.log = tempfile.TemporaryFile(mode="w+") if keep_stderr else None  # noqa: SIM115 - as long as the server
        stderr = self.log or subprocess.DEVNULL
        self.process = subprocess.Popen([*command, "-p", "0", *args], stdout=subprocess.PIPE, stderr=stderr)
        self._pending = b""
        self.ports: list[int] = []
        self.host = self.control_host = self.control_port = self.ui_url = None
        count, control, ui = _announcements(args)
        deadline = time.monotonic() + timeout
        while len(self.ports) < count or (control and self.control_port is None) or (ui and self.ui_url is None):
            self._announced(self._line(deadline))
        self.port = self.ports[0]

    def _announced(self, line: str) -> None:
        match = _ANNOUNCED.fullmatch(line)
        if not match:
            self._failed(f"unexpected output {line!r}")
        if match["url"]:
            self.ui_url = match["url"]
            return
        host = match["host"].strip("[]")
        if match["what"] == "listening":
            self.host = host
            self.ports.append(int(match["port"]))
        else:
            self.control_host, self.control_port = host, int(match["port"])

    def _line(self, deadline: float) -> str:
        """The next line of stdout, without blocking past ``deadline``."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while b"\n" not in self._pending:
                if not selector.select(max(0.0, deadline - time.monotonic())):
                    self._failed(f"nothing printed within {self.timeout:g} s")
                data = os.read(self.process.stdout.fileno(), 4096)
                if not data:
                    self.process.wait(timeout=self.timeout)
                    self._failed(f"exited with status {self.process.returncode}")
                self._pending += data
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode(errors="replace").rstrip("\r")

    def _failed(self, why: str):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        raise TerminalError(f"caisse-ap-ip-server did not start: {why}; stderr: {self.stderr().strip()!r}")

    def stderr(self) -> str:
        """What the server wrote on stderr so far ('' if not kept)."""
        if self.log is None:
            return ""
        self.log.seek(0)
        return self.log.read()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=self.timeout)

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=self.timeout)


def _announcements(args: tuple[str, ...]) -> tuple[int, bool, bool]:
    """How many 'listening on' lines the options ask for, whether a 'control on' line follows, and whether a
    'virtual terminal on' line follows it."""
    count, control, ui = 1, False, "--ui" in args
    for index, arg in enumerate(args):
        name, _, value = arg.partition("=")
        if name == "--terminals":
            given = value or (args[index + 1] if index + 1 < len(args) else "1")
            count = len([port for port in given.split(",") if port.strip()]) if "," in given else _whole(given)
        control = control or name == "--control-port"
    return count, control or ui, ui


def _whole(text: str) -> int:
    return int(text) if text.isdigit() else 1  # a bad value: the server says so and exits


def _running_reactor():
    """The reactor, running in a daemon thread (started on first use, never stopped: Twisted cannot restart it)."""
    global _reactor_thread
    from twisted.internet import reactor

    with _reactor_lock:
        if _reactor_thread is None:
            _reactor_thread = threading.Thread(
                target=reactor.run, kwargs={"installSignalHandlers": False}, name="caisse-ap-ip reactor", daemon=True
            )
            _reactor_thread.start()
    return reactor


class SimulatedTerminal:
    """A terminal on an ephemeral loopback port; a context manager that stops it on exit."""

    def __init__(self, *options: str, subprocess: bool = False, timeout: float = 10.0):
        self.options = [*DEFAULT_OPTIONS, *options]
        self.timeout = timeout
        self._last_seen = 0
        self._backend = _ProcessBackend(self.options, timeout) if subprocess else _ThreadBackend(self.options)
        self.ports: list[int] = self._backend.ports  # one per terminal of --terminals
        self.port = self.ports[0]
        self.host = self._backend.host
        self.control_host, self.control_port = self._backend.control_host, self._backend.control_port

    def __enter__(self) -> SimulatedTerminal:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        self._backend.stop()

    def next(self, *outcome: str | dict | Outcome, count: int = 1, delay=None, fragments=None, pause=None) -> None:
        """Queue outcomes for the next transactions, in order: next("silent"), next("failure:refused", "success");
        delay (S or "LO-HI"), fragments and pause modify each: next("failure:refused", delay=2, fragments=3)."""
        parsed = [outcomes.of(item) for item in outcome]
        modified = [outcomes.with_modifiers(o, delay=delay, fragments=fragments, pause=pause) for o in parsed]
        self._backend.queue(modified * count)

    def configure(self, **changes) -> None:
        """Change settings at run time, as PATCH /settings does: configure(failure=True, failure_type="refused");
        raises ValueError (nothing changed) for an unknown setting or a bad value."""
        self._backend.configure(changes)

    @property
    def transactions(self) -> list[dict]:
        """Every transaction in the journal so far, oldest first (see README: Journal)."""
        entries = self._backend.entries()
        if entries:
            self._last_seen = max(self._last_seen, entries[-1]["id"])
        return entries

    def wait_for_transaction(self, timeout: float | None = None) -> dict:
        """The next transaction after the last one this object returned; raises TerminalError if none comes."""
        entry = self._backend.next_transaction(self._last_seen, timeout or self.timeout)
        if entry is None:
            raise TerminalError(f"no transaction within {timeout or self.timeout:g} s")
        self._last_seen = entry["id"]
        return entry

    def reset(self) -> None:
        """Start-up settings, nothing queued, empty journal and history."""
        self._backend.reset()
        self._last_seen = 0

    def pending(self, wait: float = 0) -> list[dict]:
        """Transactions waiting for a decision (outcome ask), oldest first, as GET /pending describes them;
        with ``wait``, waits up to that many seconds for one to arrive."""
        return self._backend.pending(wait)

    def decide(self, outcome: str | dict | Outcome = "success", transaction: int | str = "oldest") -> dict:
        """Decide a waiting transaction (its id, or the oldest) as a person would: decide("failure:refused");
        raises TerminalError if none waits or it was already decided."""
        return self._backend.decide(outcomes.of(outcome), transaction)


class _ThreadBackend:
    """The simulator of the command line, in this process's reactor thread."""

    def __init__(self, options: list[str]):
        from twisted.internet.threads import blockingCallFromThread

        from .simulator import Simulator

        self.reactor = _running_reactor()
        self._call = lambda function, *args: blockingCallFromThread(self.reactor, function, *args)
        try:
            self.simulator = Simulator(settings.parse_args(options, exit_on_error=False), self.reactor)
        except settings.SettingError as error:
            raise ValueError(f"caisse-ap-ip-server options: {error}") from None
        self._call(self.simulator.start)
        self.terminal = self.simulator.terminals[0]
        self.ports = [handle.port for handle in self.simulator.terminals]
        self.host = self.simulator.args.host
        self.control_host = self.simulator.args.control_host if self.simulator.control_port is not None else None
        self.control_port = self.simulator.control_port

    def stop(self) -> None:
        self._call(self.simulator.stop)

    def queue(self, parsed: list[Outcome]) -> None:
        self._call(self.terminal.queue, parsed)

    def configure(self, changes: dict) -> None:
        self._call(self.terminal.change, changes)  # SettingError is a ValueError

    def entries(self) -> list[dict]:
        return self._call(self.simulator.journal.entries)

    def next_transaction(self, after: int, timeout: float) -> dict | None:
        return self._call(self.terminal.next_transaction, after, timeout)

    def reset(self) -> None:
        self._call(self.simulator.reset)

    def pending(self, wait: float) -> list[dict]:
        waiting = self._call(self.simulator.decisions.when_waiting, None, wait)
        return [pending.describe() for pending in waiting]

    def decide(self, outcome: Outcome, transaction: int | str) -> dict:
        desk = self.simulator.decisions
        try:
            return self._call(desk.decide, transaction, outcome, BY_PYTHON).describe()
        except (decisions.NotPending, decisions.AlreadyDecided) as error:
            raise TerminalError(str(error)) from None


class _ProcessBackend:
    """caisse-ap-ip-server as a subprocess, driven through its control API."""

    def __init__(self, options: list[str], timeout: float):
        control = (
            [] if any(option.partition("=")[0] == "--control-port" for option in options) else ["--control-port", "0"]
        )
        self.server = ServerProcess(*options, *control, timeout=timeout)
        self.ports, self.host = self.server.ports, self.server.host
        self.control_host, self.control_port = self.server.control_host, self.server.control_port
        self.control = f"http://{display.address((self.control_host, self.control_port))}"
        self.timeout = timeout

    def _request(self, method: str, path: str, body=None, timeout: float | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.control + path, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=(timeout or self.timeout) + 5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise ValueError(json.loads(error.read())["error"]) from None

    def stop(self) -> None:
        self.server.stop()

    def queue(self, parsed: list[Outcome]) -> None:
        self._request("POST", "/outcomes", {"outcomes": [outcome.table() for outcome in parsed]})  # replay has no text

    def configure(self, changes: dict) -> None:
        self._request("PATCH", "/settings", changes)

    def entries(self) -> list[dict]:
        return self._request("GET", "/journal")["transactions"]

    def next_transaction(self, after: int, timeout: float) -> dict | None:
        path = f"/transactions/next?after={after}&timeout={timeout}"
        return self._request("GET", path, timeout=timeout)["transaction"]

    def reset(self) -> None:
        self._request("POST", "/reset")

    def pending(self, wait: float) -> list[dict]:
        return self._request("GET", f"/pending?wait={wait}", timeout=wait)["pending"]

    def decide(self, outcome: Outcome, transaction: int | str) -> dict:
        body = {"outcome": outcome.table(), "by": BY_PYTHON}  # a table: a replay has no text form
        try:
            return self._request("POST", f"/pending/{transaction}", body)["decided"]
        except ValueError as error:
            raise TerminalError(str(error)) from None
