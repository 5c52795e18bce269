"""The journal: every connection, request and answer a terminal saw, in SQLite.

Frames are stored as bytes, as received and sent; their decoded tags are
derived when read. In memory (the default) rows wait in a deque bounded by the
cap and are written to SQLite only when the journal is read: nothing there
outlives the process anyway, and a statement per transaction would cost more
than answering it. In a file, each transaction is written by one database thread
(twisted.enterprise.adbapi) and the server sends the answer only once it is
written, so that killing the process loses nothing a POS has seen.

A transaction relayed to a real terminal (``--proxy``) also has the terminal's
address, the TCP segments of both directions, when the terminal closed and what
it sent, and when the POS shut its sending side down if it did (``Relayed``);
files of earlier versions, without those columns, get them when opened.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from twisted.internet import defer

from . import display
from .protocol import FrameError, decode, encode

DEFAULT_CAP = 10000
SCHEMA = """
CREATE TABLE IF NOT EXISTS connections (
    id INTEGER PRIMARY KEY, terminal TEXT, peer TEXT, opened REAL, closed REAL
);
CREATE TABLE IF NOT EXISTS transactions (
    id INTEGER PRIMARY KEY, terminal TEXT, connection INTEGER, peer TEXT,
    received REAL, acted REAL, request BLOB, answer BLOB, outcome TEXT, rule TEXT,
    relayed_to TEXT, segments TEXT, terminal_closed REAL, terminal_answer BLOB, pos_half_closed REAL
);
"""
RELAY_COLUMNS = {"relayed_to": "TEXT", "segments": "TEXT", "terminal_closed": "REAL", "terminal_answer": "BLOB",
                 "pos_half_closed": "REAL"}  # fmt: skip
COLUMNS = ("id", "terminal", "connection", "peer", "received", "acted", "request", "answer", "outcome", "rule",
           *RELAY_COLUMNS)  # fmt: skip
INSERT_TRANSACTION = f"INSERT INTO transactions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
INSERT_CONNECTION = "INSERT OR REPLACE INTO connections (id, terminal, peer, opened, closed) VALUES (?, ?, ?, ?, ?)"
CLOSE_CONNECTION = "UPDATE connections SET closed = ? WHERE id = ?"
POS, TERMINAL = "pos", "terminal"  # who sent a segment


@dataclass(frozen=True, slots=True)
class Relayed:
    """What the proxy saw of one transaction relayed to a real terminal."""

    terminal: str  # the real terminal's address, host:port
    segments: tuple[tuple[str, float, int], ...]  # (POS or TERMINAL, seconds after the request's first byte, bytes)
    terminal_closed: float | None = None  # seconds after the request's first byte when it closed; None: it did not
    terminal_answer: bytes | None = None  # what the terminal sent for this request, as received
    reached: bool = True  # False: the terminal could not be reached
    pos_half_closed: float | None = None  # seconds after the request's first byte when the POS shut its sending side
    # down (passed on to the terminal, whose close may then be an answer to it rather than its own choice)

    @property
    def answer_segments(self) -> list[tuple[float, int]]:
        """The terminal's segments: (seconds after the request's first byte, bytes)."""
        return [(at, size) for who, at, size in self.segments if who == TERMINAL]

    @property
    def warning(self) -> str | None:
        """The kind of warning this transaction is for the log's flood limiter, or None."""
        return None if self.reached else "connections to an unreachable terminal"

    def columns(self) -> tuple:
        segments = json.dumps([[who, round(at, 6), size] for who, at, size in self.segments])
        closed, half_closed = (
            None if at is None else round(at, 6) for at in (self.terminal_closed, self.pos_half_closed)
        )
        return self.terminal, segments, closed, self.terminal_answer, half_closed


NOT_RELAYED = (None,) * len(RELAY_COLUMNS)


class Journal:
    """Journal rows of one or more terminals; ``cap`` bounds the transactions kept (the oldest go first)."""

    def __init__(self, path: str | Path | None = None, cap: int = DEFAULT_CAP, reactor=None):
        self.path = str(path) if path else None
        self.cap = cap
        self.pool = None
        # built where the factory is built, used only by the reactor thread (which may be another one)
        self.db = sqlite3.connect(self.path or ":memory:", isolation_level=None, check_same_thread=False)
        _prepare(self.db)
        self._connection_ids = itertools.count(_next_id(self.db, "connections"))
        self._transaction_ids = itertools.count(_next_id(self.db, "transactions"))
        self.last_id = _next_id(self.db, "transactions") - 1  # the newest transaction's id (0: none yet)
        # rows not written yet; in memory, those beyond the cap are dropped before ever being written
        self._opened: deque[tuple] = deque(maxlen=cap)
        self._closed: deque[tuple] = deque(maxlen=cap)
        self._transactions: deque[tuple] = deque(maxlen=cap)
        if self.path:
            self.db.close()
            from twisted.enterprise import adbapi

            self.pool = adbapi.ConnectionPool(
                "sqlite3", self.path, cp_min=1, cp_max=1, check_same_thread=False, cp_openfun=_prepare,
                cp_reactor=reactor,
            )  # fmt: skip

    def connection_opened(self, terminal: str, peer: str, at: float) -> int:
        connection_id = next(self._connection_ids)
        self._opened.append((connection_id, terminal, peer, at, None))
        return connection_id

    def connection_closed(self, connection_id: int, at: float) -> None:
        self._closed.append((at, connection_id))

    def record(self, terminal, connection, peer, received, acted, request: bytes, answer, outcome, rule, relayed=None):
        """Add a transaction; the answer is bytes as sent (None: nothing was sent).

        ``request`` may be bytes or records, ``peer`` an address tuple, ``outcome`` an object whose str() is written:
        encoding and formatting wait for the write, which in memory most rows never see. ``relayed`` (a
        ``Relayed``) is what the proxy saw, for a transaction relayed to a real terminal.

        Returns its id, and a Deferred that fires once it is safely written (None when in memory: at once).
        """
        transaction_id = self.last_id = next(self._transaction_ids)
        self._transactions.append(
            (transaction_id, terminal, connection, peer, received, acted, request, answer, outcome, rule, relayed)
        )
        if self.pool is not None:
            pending = self._take_pending()
            return transaction_id, self.pool.runInteraction(lambda cursor: self._write(cursor.connection, pending))
        return transaction_id, None

    def entries(self, last: int | None = None, terminal: str | None = None, after: int = 0) -> defer.Deferred:
        """Transactions, oldest first, as dicts with the decoded request and answer."""
        return self._read(_select, last, terminal, after).addCallback(lambda rows: [_entry(row) for row in rows])

    def clear(self) -> defer.Deferred:
        return self._read(lambda db: db.execute("DELETE FROM transactions") and None)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
        else:
            self.db.close()

    def _take_pending(self) -> tuple[list, list, list]:
        pending = (
            [
                (cid, terminal, display.address(peer), opened, closed)
                for cid, terminal, peer, opened, closed in self._opened
            ],
            list(self._closed),
            [_transaction_row(row) for row in self._transactions],
        )
        self._opened.clear()
        self._closed.clear()
        self._transactions.clear()
        return pending

    def _read(self, query, *args) -> defer.Deferred:
        pending = self._take_pending()
        if self.pool is None:
            self._write(self.db, pending)
            return defer.succeed(query(self.db, *args))

        def write_then_query(cursor):
            self._write(cursor.connection, pending)
            return query(cursor.connection, *args)

        return self.pool.runInteraction(write_then_query)

    def _write(self, db: sqlite3.Connection, pending: tuple[list, list, list]) -> None:
        opened, closed, transactions = pending
        if not (opened or closed or transactions):
            return
        db.execute("BEGIN")
        db.executemany(INSERT_CONNECTION, opened)
        db.executemany(CLOSE_CONNECTION, closed)
        db.executemany(INSERT_TRANSACTION, transactions)
        if transactions:
            db.execute("DELETE FROM transactions WHERE id <= ?", (transactions[-1][0] - self.cap,))
        if opened:
            db.execute("DELETE FROM connections WHERE id <= ?", (opened[-1][0] - self.cap,))
        db.execute("COMMIT")


def _transaction_row(row: tuple) -> tuple:
    """A transaction as ``record`` keeps it, formatted for its INSERT."""
    relayed = row[10].columns() if row[10] else NOT_RELAYED
    return (*row[:3], display.address(row[3]), row[4], row[5], _frame(row[6]), row[7], str(row[8]), row[9], *relayed)


def _frame(request: bytes | list) -> bytes:
    return request if isinstance(request, bytes) else encode(request)


def _prepare(db: sqlite3.Connection) -> None:
    db.isolation_level = None  # transactions are explicit, in Journal._write
    if db.execute("PRAGMA database_list").fetchone()[2]:  # a file: written ahead, durable if the process dies
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    present = _columns(db)
    for name, kind in RELAY_COLUMNS.items():  # a file of an earlier version: the columns it lacks
        if name not in present:
            db.execute(f"ALTER TABLE transactions ADD COLUMN {name} {kind}")


def _columns(db: sqlite3.Connection) -> set[str]:
    return {row[1] for row in db.execute("PRAGMA table_info(transactions)")}


def _next_id(db: sqlite3.Connection, table: str) -> int:
    return (db.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0] or 0) + 1


def _select(
    db: sqlite3.Connection, last: int | None, terminal: str | None, after: int, present: set[str] | None = None
) -> list[tuple]:
    """Transactions, oldest first. ``present``: the columns of a file of an earlier version read without writing
    (what it lacks is NULL); a journal's own database has them all."""
    selected = ", ".join(name if present is None or name in present else f"NULL AS {name}" for name in COLUMNS)
    sql = f"SELECT {selected} FROM transactions WHERE id > ?"
    values: list = [after]
    if terminal is not None:
        sql += " AND terminal = ?"
        values.append(terminal)
    sql += " ORDER BY id DESC"
    if last is not None:
        sql += " LIMIT ?"
        values.append(last)
    return list(reversed(db.execute(sql, values).fetchall()))


def _entry(row: tuple) -> dict:
    entry = dict(zip(COLUMNS, row, strict=True))
    for side in ("request", "answer"):
        frame = entry[side]
        entry[side] = frame.decode("latin-1") if frame is not None else None
        entry[f"{side}_records"] = _records(frame)
    relayed = [entry.pop(name) for name in RELAY_COLUMNS]
    entry["proxy"] = _proxy(*relayed)
    return entry


def _proxy(relayed_to, segments, terminal_closed, terminal_answer, pos_half_closed) -> dict | None:
    """What the proxy saw, as the journal's readers get it; None for a transaction the simulator answered."""
    if relayed_to is None:
        return None
    return {
        "terminal": relayed_to,
        "segments": [{"from": who, "at": at, "size": size} for who, at, size in json.loads(segments or "[]")],
        "terminal_closed": terminal_closed is not None,
        "terminal_closed_at": terminal_closed,
        "terminal_answer": terminal_answer.decode("latin-1") if terminal_answer is not None else None,
        "terminal_answer_records": _records(terminal_answer),  # decoded as answer_records is, for the page
        "pos_half_closed_at": pos_half_closed,
    }


def _records(frame: bytes | None) -> list | None:
    if frame is None:
        return None
    try:
        return display.describe(decode(frame))
    except FrameError:
        return None  # a malformed frame is kept as received, it has no tags


def read(path: str | Path, last: int | None = None) -> list[dict]:
    """Entries of a journal file, read directly (for the command line, not inside a reactor)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError("no such file")
    # with no write-ahead log beside it, no server has the file open: read it as it is, leaving nothing behind
    # (a read-only connection would create -wal and -shm files that only a writer may remove)
    unused = not path.with_name(path.name + "-wal").exists()
    db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro" + ("&immutable=1" if unused else ""), uri=True)
    try:
        return [_entry(row) for row in _select(db, last, None, 0, _columns(db))]
    finally:
        db.close()
