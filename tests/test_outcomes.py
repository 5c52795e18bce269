"""Outcomes (what happens to a request), the connection policy after an answer, and a busy terminal."""

import time

import pytest
from helpers import REQUEST, WAIT, client, read_answers, read_until_closed

from caisse_ap_ip.outcomes import GARBAGE, Outcome, OutcomeError, parse, split, truncate, with_modifiers
from caisse_ap_ip.protocol import FrameDecoder, decode


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("answer", Outcome()),
        ("success", Outcome("success")),
        ("success:AmexContactless", Outcome("success", payment_type="amexcontactless")),
        ("failure", Outcome("failure", code="11")),
        ("failure:refused", Outcome("failure", code="04")),
        ("failure:06 delay=2", Outcome("failure", code="06", delay=(2.0, 2.0))),
        ("silent", Outcome("silent")),
        ("answer delay=1-3 fragments=4 pause=0.2", Outcome(delay=(1.0, 3.0), fragments=4, pause=0.2)),
        ("delay=0.5", Outcome(delay=(0.5, 0.5))),
        ("delay:2", Outcome(delay=(2.0, 2.0))),
        ("delay:1-3", Outcome(delay=(1.0, 3.0))),
        ("fragments", Outcome(fragments=3)),
        ("fragments:4 pause=0.2", Outcome(fragments=4, pause=0.2)),
    ],
)
def test_outcomes_are_parsed_from_text(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty outcome"),
        ("explode", "unknown outcome 'explode'"),
        ("failure:01", "unknown failure '01'"),
        ("success:visa", "unknown payment type 'visa'"),
        ("silent:now", "takes no argument"),
        ("answer delay=3-1", "ends before it starts"),
        ("answer delay=-1", "is not seconds"),
        ("answer delay=soon", "is not seconds"),
        ("answer fragments=0", "at least 1"),
        ("answer colour=red", "unknown outcome key colour"),
        ("answer fragments", "is not key=value"),
        ("delay", "delay needs its seconds"),
        ("delay:2 delay=3", "delay given twice"),
        ("fragments:0", "at least 1"),
    ],
)
def test_bad_outcomes_say_what_is_wrong(text, message):
    with pytest.raises(OutcomeError, match=message):
        parse(text)


def test_modifiers_are_added_to_any_outcome_and_checked():
    refused = parse("failure:refused")
    assert with_modifiers(refused, delay=2, fragments=3, pause=0.1) == Outcome(
        "failure", code="04", delay=(2.0, 2.0), fragments=3, pause=0.1
    )
    assert with_modifiers(refused) == refused
    with pytest.raises(OutcomeError, match="at least 1"):
        with_modifiers(refused, fragments=0)


def test_split_and_truncate():
    assert split(b"abcdefghij", 3) == [b"abcd", b"efg", b"hij"]
    assert split(b"ab", 5) == [b"a", b"b"]
    cut = truncate(REQUEST)
    assert REQUEST.startswith(cut) and len(cut) < len(REQUEST)
    with pytest.raises(ValueError, match="truncated record"):
        decode(cut)


def exchange(server, data=REQUEST, wait=WAIT) -> bytes:
    with server.connect() as sock:
        sock.settimeout(wait)
        sock.sendall(data)
        return read_until_closed(sock)


def fields_of(server, data=REQUEST) -> dict[str, str]:
    with server.connect() as sock:
        sock.sendall(data)
        return dict(read_answers(sock)[0])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-f", "--outcome", "success"], {"AE": "10", "CC": "001"}),
        (["--outcome", "success:amexcontactless"], {"AE": "10", "CC": "00D", "CI": "2"}),
        (["--outcome", "failure:cardholder-abandon"], {"AE": "01", "AF": "06"}),
        (["--outcome", "failure:02"], {"AE": "01", "AF": "02"}),
        (["--outcome", "immediate"], {"AE": "11"}),
    ],
)
def test_answering_outcomes(terminal_server, args, expected):
    fields = fields_of(terminal_server("-d", "0", *args))
    assert {tag: fields.get(tag) for tag in expected} == expected


def test_silent_reads_the_request_and_keeps_the_line_open(terminal_server):
    server = terminal_server("-d", "0", "--outcome", "silent")
    with server.connect() as sock:
        sock.sendall(REQUEST)
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(100)
    result = client("-p", str(server.port), "--timeout", "0.3")
    assert result.returncode == 3 and "no complete answer" in result.stderr


def test_close_without_answering(terminal_server):
    server = terminal_server("-d", "0", "--outcome", "close")
    assert exchange(server) == b""
    result = client("-p", str(server.port))
    assert result.returncode == 3 and "closed the connection without answering" in result.stderr


def test_reset_without_answering(terminal_server):
    server = terminal_server("-d", "0", "--outcome", "reset")
    with pytest.raises(ConnectionResetError):
        exchange(server)
    assert client("-p", str(server.port)).returncode == 3


def test_garbage(terminal_server):
    server = terminal_server("-d", "0", "--outcome", "garbage", "--after-answer", "close")
    assert exchange(server) == GARBAGE
    result = client("-p", str(server.port))
    assert result.returncode == 3 and "malformed answer" in result.stderr


def test_truncated(terminal_server):
    server = terminal_server("-d", "0", "--outcome", "truncated")
    received = exchange(server)
    assert received and received[-1:] != b"2"  # cut short of the last record
    with pytest.raises(ValueError, match="truncated record"):
        decode(received)
    result = client("-p", str(server.port))
    assert result.returncode == 3 and "truncated record" in result.stderr


def test_fragments_arrive_in_pieces_and_the_client_reads_them_whole(terminal_server):
    server = terminal_server("-d", "0", "--outcome", "answer fragments=4 pause=0.1")
    pieces = []
    with server.connect() as sock:
        sock.sendall(REQUEST)
        decoder = FrameDecoder()
        while not (decoder.at_boundary and decoder.open_message and decoder.open_message[-1][0] == "CG"):
            pieces.append(sock.recv(4096))
            list(decoder.feed(pieces[-1]))
    assert len(pieces) >= 2
    assert decode(b"".join(pieces))[-1][0] == "CG"
    assert client("-p", str(server.port), "--quiet-time", "0.3").returncode == 0


def test_delay_range(terminal_server):
    server = terminal_server("-d", "0", "--outcome", "answer delay=0.3-0.4")
    started = time.monotonic()
    assert fields_of(server)["AE"] == "10"
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(("policy", "at_least"), [("close", 0.0), ("0.3", 0.3)])
def test_after_answer_the_terminal_closes(terminal_server, policy, at_least):
    server = terminal_server("-d", "0", "--after-answer", policy)
    started = time.monotonic()
    received = exchange(server)
    assert decode(received)[-1][0] == "CG"
    assert time.monotonic() - started >= at_least
    result = client("-p", str(server.port), "--quiet-time", "30", "--json")
    assert result.returncode == 0  # the client is done with the whole answer, closed or not


def wait_for(condition, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.01)


def pending_then_second(server):
    """A first POS starts a 0.5 s transaction; once the server has it, a second POS sends its request."""
    first, second = server.connect(), server.connect()
    first.sendall(REQUEST)
    wait_for(lambda: "debit 112.45 EUR: planned" in server.stderr())
    second.sendall(REQUEST.replace(b"CB00511245", b"CB0041000"))
    return first, second


def test_busy_refuse(terminal_server):
    first, second = pending_then_second(terminal_server("-d", "0.5", "--busy", "refuse", "-l", "debug"))
    with first, second:
        refused = dict(read_answers(second)[0])
        assert (refused["AE"], refused["AF"], refused["CB"]) == ("01", "07", "1000")
        assert dict(read_answers(first)[0])["AE"] == "10"


def test_busy_queue(terminal_server):
    first, second = pending_then_second(terminal_server("-d", "0.5", "--busy", "queue", "-l", "debug"))
    with first, second:
        started = time.monotonic()
        assert dict(read_answers(first)[0])["AE"] == "10"
        assert dict(read_answers(second)[0])["CB"] == "1000"
        assert time.monotonic() - started >= 0.5  # the second waited for its own turn after the first


def test_busy_ignore(terminal_server):
    first, second = pending_then_second(terminal_server("-d", "0.5", "--busy", "ignore", "-l", "debug"))
    with first, second:
        assert dict(read_answers(first)[0])["AE"] == "10"
        second.settimeout(0.3)
        with pytest.raises(TimeoutError):
            second.recv(100)


def test_parallel_is_the_default(terminal_server):
    first, second = pending_then_second(terminal_server("-d", "0.5", "-l", "debug"))
    with first, second:
        assert dict(read_answers(second)[0])["AE"] == "10"
        assert dict(read_answers(first)[0])["AE"] == "10"


def test_bad_outcome_option_exits_2():
    import subprocess
    import sys

    from helpers import SERVER_SCRIPT

    result = subprocess.run(
        [sys.executable, str(SERVER_SCRIPT), "--outcome", "explode"], capture_output=True, text=True, timeout=WAIT
    )
    assert result.returncode == 2 and "unknown outcome 'explode'" in result.stderr
