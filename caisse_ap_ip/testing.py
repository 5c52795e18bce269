"""A simulated terminal for a POS project's tests, in the test process or as a subprocess.

    from caisse_ap_ip.testing import SimulatedTerminal

    with SimulatedTerminal("--profile", "ingenico") as terminal:   # any option of caisse-ap-ip-server
        terminal.next("failure:refused")         # the next transaction is refused
        my_pos.pay("127.0.0.1", terminal.port, 12.50)
        sent = terminal.wait_for_transaction()   # what the POS sent, and what it got

In a thread (the default), one Twisted reactor runs in a background thread for
the whole process; as a subprocess (``subprocess=True``), the terminal is
controlled through its control API. Both offer the same methods.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request

from . import control, journal, outcomes, server, server_cli

DEFAULT_OPTIONS = ("-d", "0")  # tests want answers at once unless they say otherwise
_reactor_lock = threading.Lock()
_reactor_thread: threading.Thread | None = None


class TerminalError(RuntimeError):
    pass


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
        self.host = "127.0.0.1"
        self._last_seen = 0
        self._backend = _ProcessBackend(self.options, timeout) if subprocess else _ThreadBackend(self.options)
        self.port = self._backend.port

    def __enter__(self) -> SimulatedTerminal:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        self._backend.stop()

    def next(self, *outcome: str | dict, count: int = 1) -> None:
        """Queue outcomes for the next transactions, in order: next("silent"), next("failure:refused", "success")."""
        self._backend.queue([outcomes.coerce(o) for o in outcome] * count)

    def configure(self, **settings) -> None:
        """Change settings at run time, as PATCH /settings does: configure(failure=True, failure_type="refused")."""
        self._backend.configure(settings)

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


class _ThreadBackend:
    def __init__(self, options: list[str]):
        from twisted.internet.threads import blockingCallFromThread

        self._call = blockingCallFromThread
        self.reactor = _running_reactor()
        args = server_cli.build_parser().parse_args([*options, "-p", "0", "--host", "127.0.0.1"])
        terminal = server_cli.build_terminal(args)
        recorded = journal.Journal(args.journal, args.journal_cap, self.reactor)
        self.factory = server.TerminalFactory(terminal, server_cli.build_limits(args), self.reactor, recorded)
        self.api = control.ControlAPI(self.factory)
        self.listening = self._call(self.reactor, server.listen, self.factory, 0, "127.0.0.1")
        self.port = self.listening.getHost().port

    def stop(self) -> None:
        self._call(self.reactor, self.listening.stopListening)

    def queue(self, parsed) -> None:
        self.reactor.callFromThread(self.factory.terminal.queued.extend, parsed)

    def configure(self, settings) -> None:
        try:
            self._call(self.reactor, control.apply_settings, self.factory, settings)
        except control.ApiError as error:
            raise ValueError(str(error)) from None

    def entries(self) -> list[dict]:
        return self._call(self.reactor, self.factory.journal.entries)

    def next_transaction(self, after: int, timeout: float) -> dict | None:
        return self._call(self.reactor, self.factory.next_transaction, after, timeout)

    def reset(self) -> None:
        self._call(self.reactor, self.api.reset, None, [self.factory])


class _ProcessBackend:
    def __init__(self, options: list[str], timeout: float):
        command = [sys.executable, "-m", "caisse_ap_ip.server_cli", *options, "-p", "0", "--control-port", "0"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        lines = [self.process.stdout.readline(), self.process.stdout.readline()]
        if not all(line.startswith(("listening on", "control on")) for line in lines):
            self.process.kill()
            raise TerminalError(f"the terminal did not start: {lines}")
        self.port = int(lines[0].rsplit(":", 1)[1])
        self.control = f"http://127.0.0.1:{int(lines[1].rsplit(':', 1)[1])}"
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
        self.process.terminate()
        self.process.wait(timeout=self.timeout)

    def queue(self, parsed) -> None:
        self._request("POST", "/outcomes", {"outcomes": [str(outcome) for outcome in parsed]})

    def configure(self, settings) -> None:
        self._request("PATCH", "/settings", settings)

    def entries(self) -> list[dict]:
        return self._request("GET", "/journal")["transactions"]

    def next_transaction(self, after: int, timeout: float) -> dict | None:
        return self._request("GET", f"/transactions/next?after={after}&timeout={timeout}", timeout=timeout)[
            "transaction"
        ]

    def reset(self) -> None:
        self._request("POST", "/reset")
