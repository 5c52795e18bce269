"""The journal: what the POS sent and what it got, in memory or in a file that survives kill -9."""

import json
import signal
import subprocess
import sys

from helpers import REQUEST, SERVER_SCRIPT, WAIT, ServerProcess, read_answers, read_until_closed, server_running

from caisse_ap_ip.journal import Journal


def result(deferred):
    found = []
    deferred.addCallback(found.append)
    return found[0]


def test_memory_journal_records_decodes_and_caps():
    journal = Journal(cap=3)
    connection = journal.connection_opened("1", "127.0.0.1:5000", 10.0)
    for n in range(5):
        _, written = journal.record("1", connection, "127.0.0.1:5000", 10.0 + n, 10.5 + n, REQUEST, b"CZ0040300AE00210",
                                    "answer", None)  # fmt: skip
        assert written is None  # in memory: recorded at once
    journal.connection_closed(connection, 20.0)
    entries = result(journal.entries())
    assert [e["id"] for e in entries] == [3, 4, 5]
    assert entries[-1]["request"] == REQUEST.decode()
    assert entries[-1]["answer_records"][-1] == {"tag": "AE", "name": "action status", "value": "10",
                                                 "meaning": "operation performed"}  # fmt: skip
    assert [e["id"] for e in result(journal.entries(last=1))] == [5]
    assert [e["id"] for e in result(journal.entries(after=4))] == [5]
    assert result(journal.entries(terminal="2")) == []
    rows = journal.db.execute("SELECT id, peer, opened, closed FROM connections").fetchall()
    assert rows == [(1, "127.0.0.1:5000", 10.0, 20.0)]
    result(journal.clear())
    assert result(journal.entries()) == []


def test_malformed_frames_are_kept_as_received():
    journal = Journal()
    journal.record("1", 1, "p", 1.0, 1.0, b"CZ004\xff", None, "malformed", None)
    (entry,) = result(journal.entries())
    assert entry["request"] == "CZ004\xff" and entry["request_records"] is None and entry["answer"] is None


def show(path, *args):
    command = [sys.executable, str(SERVER_SCRIPT), "journal", str(path), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=WAIT)


def test_a_file_journal_survives_kill_9_and_is_shown(tmp_path):
    path = tmp_path / "journal.db"
    server = ServerProcess("-d", "0", "--journal", str(path), "--magic-amounts")
    answers = []
    with server.connect() as sock:
        for amount in (b"CB00511245", b"CB0041261"):
            sock.sendall(REQUEST.replace(b"CB00511245", amount))
            answers.append(read_answers(sock)[0])
    with server.connect() as sock:
        sock.sendall(REQUEST.replace(b"CB00511245", b"CB0041267"))  # magic .67: closed without an answer
        assert read_until_closed(sock) == b""
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    text = show(path)
    assert text.returncode == 0
    assert "answer after" in text.stdout and "failure:04 [magic amount .61]" in text.stdout
    assert "close [magic amount .67]" in text.stdout and "(no answer)" in text.stdout
    lines = show(path, "--last", "2", "--json").stdout.splitlines()
    last_two = [json.loads(line) for line in lines]
    assert [entry["id"] for entry in last_two] == [2, 3]
    assert {r["tag"]: r["value"] for r in last_two[0]["answer_records"]}["AF"] == "04"

    restarted = ServerProcess("-d", "0", "--journal", str(path))  # the same file goes on
    with restarted.connect() as sock:
        sock.sendall(REQUEST)
        read_answers(sock)
    restarted.stop()
    assert json.loads(show(path, "--last", "1", "--json").stdout)["id"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.db"]  # reading it left nothing beside it


def test_every_kind_of_request_is_journaled(tmp_path):
    path = tmp_path / "journal.db"
    server = ServerProcess("-d", "0", "--journal", str(path))
    with server.connect() as sock:
        sock.sendall(REQUEST.replace(b"CD0010", b"CD0019"))  # unknown action
        read_answers(sock)
        sock.sendall(b"CZ0040300\r\n")  # malformed: answered AF=09, closed
        read_until_closed(sock)
    server.stop()
    outcomes = [json.loads(line)["outcome"] for line in show(path, "--json").stdout.splitlines()]
    assert outcomes[0] == "answer" and outcomes[1].startswith("malformed: tag is not two upper-case")


def test_the_journal_command_says_when_there_is_no_journal(tmp_path):
    missing = show(tmp_path / "nothing.db")
    assert missing.returncode == 2 and missing.stderr.endswith("nothing.db: no such file\n")
    not_sqlite = tmp_path / "text.db"
    not_sqlite.write_text("hello")
    assert show(not_sqlite).returncode == 2


def test_the_journal_command_read_by_head_stops_quietly(tmp_path):
    """`journal PATH | head -1`: the reader leaves early; that is no error and no traceback."""
    import sqlite3

    from caisse_ap_ip import journal

    path = tmp_path / "shop.db"
    db = sqlite3.connect(path)
    db.executescript(journal.SCHEMA)
    row = ("1", 1, "127.0.0.1:1", 0.0, 0.0, REQUEST, REQUEST + b"AE00210", "answer", None, *journal.NOT_RELAYED)
    rows = [(n, *row) for n in range(1, 5001)]
    db.executemany(journal.INSERT_TRANSACTION, rows)
    db.commit()
    db.close()
    command = [sys.executable, str(SERVER_SCRIPT), "journal", str(path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith("#1 ")
    process.stdout.close()  # as head does after its line
    _, stderr = process.communicate(timeout=WAIT)
    assert process.returncode == 0 and "Traceback" not in stderr


EARLIER_SCHEMA = """
CREATE TABLE connections (id INTEGER PRIMARY KEY, terminal TEXT, peer TEXT, opened REAL, closed REAL);
CREATE TABLE transactions (id INTEGER PRIMARY KEY, terminal TEXT, connection INTEGER, peer TEXT,
    received REAL, acted REAL, request BLOB, answer BLOB, outcome TEXT, rule TEXT);
"""


def test_a_journal_file_of_the_previous_version_is_read_and_goes_on_with_the_new_columns(tmp_path):
    import sqlite3

    from caisse_ap_ip import journal

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(EARLIER_SCHEMA)
    db.execute("INSERT INTO transactions VALUES (1, '1', 1, '127.0.0.1:1', 1.0, 2.0, ?, ?, 'answer', NULL)",
               (REQUEST, REQUEST + b"AE00210"))  # fmt: skip
    db.commit()
    db.close()
    (old,) = journal.read(path)  # read without writing, as the journal command does: what it lacks is null
    assert old["answer"].endswith("AE00210") and old["proxy"] is None
    assert show(path).returncode == 0

    with (
        server_running("-d", "0", "--journal", str(path)) as server,  # opened for writing: columns added
        server.connect() as sock,
    ):
        sock.sendall(REQUEST)
        read_answers(sock)
    first, second = journal.read(path)
    assert first["id"] == 1 and second["id"] == 2 and second["proxy"] is None
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(transactions)")}
    assert set(journal.RELAY_COLUMNS) <= columns
