"""Hand-made terminals that misbehave in precise ways, to test the client's reading."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from contextlib import contextmanager

from conftest import WAIT

from caisse_ap_ip.protocol import FrameDecoder


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


def split(data: bytes, *cuts: int) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]
