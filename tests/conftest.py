"""Shared fixtures: the server runs as a subprocess on an ephemeral loopback port."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from caisse_ap_ip.protocol import FrameDecoder, Message

# examples are judged by what they find, not by how fast a shared machine runs them
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

ROOT = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = ROOT / "caisse-ap-ip-server.py"
CLIENT_SCRIPT = ROOT / "caisse-ap-ip-client.py"
LISTENING = re.compile(r"listening on (?P<host>.+):(?P<port>\d+)\n")
REQUEST = b"CZ0040300CJ012012345678901CA00201CE003978BA0010CD0010CB00511245"
ANSWER_END_TAGS = {"AE", "AF", "CG", "ZT"}  # the last tag of every answer shape the simulator sends
WAIT = 10.0  # upper bound for anything expected to happen; never a synchronisation sleep


class ServerProcess:
    """caisse-ap-ip-server.py started with -p 0; ``port`` is read from its 'listening on' line."""

    def __init__(self, *args: str):
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the server
        command = [sys.executable, str(SERVER_SCRIPT), "-p", "0", *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log, text=True)
        terminals = args[args.index("--terminals") + 1] if "--terminals" in args else "1"
        count = len(terminals.split(",")) if "," in terminals else int(terminals)
        self.ports = []
        for _ in range(count):
            line = self.process.stdout.readline()
            match = LISTENING.fullmatch(line)
            if not match:
                self.process.wait(timeout=WAIT)
                raise RuntimeError(f"server did not start: {line!r} {self.stderr()}")
            self.ports.append(int(match["port"]))
        self.host = match["host"].strip("[]")
        self.port = self.ports[0]
        self.control_host = self.control_port = None
        if "--control-port" in args:
            control = LISTENING.fullmatch(self.process.stdout.readline().replace("control on", "listening on"))
            self.control_host, self.control_port = control["host"], int(control["port"])

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=WAIT)

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=WAIT)


@pytest.fixture(scope="session")
def terminal_server():
    """terminal_server('-d', '0', ...) -> a running server, shared by every test asking for the same options."""
    servers: dict[tuple[str, ...], ServerProcess] = {}

    def get(*args: str) -> ServerProcess:
        if args not in servers:
            servers[args] = ServerProcess(*args)
        return servers[args]

    yield get
    for server in servers.values():
        server.stop()


@pytest.fixture
def fast_server(terminal_server) -> ServerProcess:
    return terminal_server("-d", "0")


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
