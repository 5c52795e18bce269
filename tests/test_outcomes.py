"""Outcomes (what happens to a request), the connection policy after an answer, and a busy terminal."""

import pytest
from helpers import REQUEST, WAIT, InProcessTerminal, Pos, client, read_until_closed

from caisse_ap_ip.outcomes import GARBAGE, Outcome, OutcomeError, coerce, parse, split, truncate, with_modifiers
from caisse_ap_ip.protocol import decode
from caisse_ap_ip.server import Limits


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
        ("partial:1e999999", "neither an amount"),
        ("partial:1000000000000", "neither an amount"),
    ],
)
def test_bad_outcomes_say_what_is_wrong(text, message):
    with pytest.raises(OutcomeError, match=message):
        parse(text)


def test_modifier_kinds_in_table_form():
    assert coerce({"outcome": "fragments", "fragments": 4}) == Outcome(fragments=4)
    assert coerce({"outcome": "delay", "delay": 2}) == Outcome(delay=(2.0, 2.0))


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


# -- on the network, in process (helpers.InProcessTerminal: fake transports and a task.Clock)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"failure": True, "outcome": "success"}, {"AE": "10", "CC": "001"}),
        ({"outcome": "success:amexcontactless"}, {"AE": "10", "CC": "00D", "CI": "2"}),
        ({"outcome": "failure:cardholder-abandon"}, {"AE": "01", "AF": "06"}),
        ({"outcome": "failure:02"}, {"AE": "01", "AF": "02"}),
        ({"outcome": "immediate"}, {"AE": "11"}),
    ],
)
def test_answering_outcomes(settings, expected):
    fields = InProcessTerminal(**{**settings, "outcome": parse(settings["outcome"])}).exchange().fields()
    assert {tag: fields.get(tag) for tag in expected} == expected


def terminal_with(outcome: str, limits: Limits | None = None, **settings) -> InProcessTerminal:
    return InProcessTerminal(limits, outcome=parse(outcome), **settings)


def test_silent_reads_the_request_and_keeps_the_line_open():
    server = terminal_with("silent")
    pos = server.exchange(seconds=250)
    assert pos.received == b"" and not pos.closed
    pos.send(REQUEST)  # nothing more is answered on this connection
    server.advance(10)
    assert pos.received == b"" and not pos.closed
    (entry,) = server.entries()
    assert (entry["answer"], entry["outcome"]) == (None, "silent")


def test_close_without_answering():
    pos = terminal_with("close").exchange()
    assert pos.received == b"" and pos.closed and not pos.transport.aborted


def test_reset_without_answering():
    pos = terminal_with("reset").exchange()
    assert pos.received == b"" and pos.transport.aborted


def test_garbage():
    pos = terminal_with("garbage", Limits(after_answer=0)).exchange()
    assert pos.received == GARBAGE and pos.closed


def test_truncated():
    pos = terminal_with("truncated").exchange()
    received = pos.received
    assert received and received[-1:] != b"2"  # cut short of the last record
    with pytest.raises(ValueError, match="truncated record"):
        decode(received)
    assert pos.closed


def test_fragments_arrive_in_pieces_pause_seconds_apart():
    server = terminal_with("answer fragments=4 pause=0.1")
    pos = server.connect()
    pos.send(REQUEST)
    for count in (1, 2, 3, 4):
        assert len(pos.transport.writes) == count
        server.advance(0.1)
    assert len(pos.transport.writes) == 4
    assert decode(pos.received)[-1][0] == "CG"


def test_a_request_pipelined_behind_a_fragmented_answer_waits_for_its_last_piece():
    server = terminal_with("answer fragments=3 pause=0.1")
    pos = server.connect()
    pos.send(REQUEST + REQUEST)
    server.advance(0.2)
    assert len(pos.transport.writes) == 4 and len(pos.answers()) == 1
    server.advance(0.2)
    assert len(pos.answers()) == 2


def test_delay_range():
    server = terminal_with("answer delay=0.3-0.4")
    pos = server.connect()
    pos.send(REQUEST)
    server.advance(0.29)
    assert pos.received == b""
    server.advance(0.11)
    assert pos.fields()["AE"] == "10"


@pytest.mark.parametrize(("after_answer", "closed_after"), [(0, 0.0), (0.3, 0.3), (None, None)])
def test_after_answer_the_terminal_closes_or_keeps_the_line(after_answer, closed_after):
    server = InProcessTerminal(Limits(after_answer=after_answer))
    pos = server.connect()
    pos.send(REQUEST)
    assert decode(pos.received)[-1][0] == "CG"
    if closed_after is None:
        server.advance(250)
        assert not pos.closed
        return
    if closed_after:
        server.advance(closed_after - 0.01)
        assert not pos.closed
        pos.send(REQUEST)  # a second request in the meantime is answered too
        server.advance(0.01)
        assert len(pos.answers()) == 2
    assert pos.closed


def pending_then_second(busy: str) -> tuple[InProcessTerminal, Pos, Pos]:
    """A first POS starts a 0.5 s transaction; then a second POS sends its request."""
    server = InProcessTerminal(Limits(busy=busy), duration=0.5)
    first, second = server.connect(), server.connect()
    first.send(REQUEST)
    server.advance(0.1)
    second.send(REQUEST.replace(b"CB00511245", b"CB0041000"))
    return server, first, second


def test_busy_refuse():
    server, first, second = pending_then_second("refuse")
    refused = second.fields()
    assert (refused["AE"], refused["AF"], refused["CB"]) == ("01", "07", "1000")
    assert first.received == b""
    server.advance(0.4)
    assert first.fields()["AE"] == "10"
    assert [entry["outcome"] for entry in server.entries()] == ["busy: refused", "answer"]


def test_busy_queue():
    server, first, second = pending_then_second("queue")
    server.advance(0.4)
    assert first.fields()["AE"] == "10" and second.received == b""
    server.advance(0.49)  # the second waits for its own turn after the first
    assert second.received == b""
    server.advance(0.01)
    assert second.fields()["CB"] == "1000"


def test_busy_queue_hands_the_terminal_on_in_arrival_order():
    server = InProcessTerminal(Limits(busy="queue"))
    first = server.connect()
    server.factory.terminal.queue([parse("answer delay=1")])
    first.send(REQUEST)
    waiting = [server.connect() for _ in range(3)]
    for rank, pos in enumerate(waiting):
        pos.send(REQUEST.replace(b"CB00511245", f"CB004100{rank}".encode()))
    assert [pos.received for pos in waiting] == [b""] * 3
    server.advance(1)
    assert [pos.fields()["CB"] for pos in waiting] == ["1000", "1001", "1002"]


def test_busy_ignore():
    server, first, second = pending_then_second("ignore")
    server.advance(0.4)
    assert first.fields()["AE"] == "10"
    server.advance(10)
    assert second.received == b"" and not second.closed
    assert [entry["outcome"] for entry in server.entries()] == ["busy: ignored", "answer"]


def test_parallel_is_the_default():
    server, first, second = pending_then_second(Limits().busy)
    server.advance(0.4)
    assert first.fields()["AE"] == "10" and second.received == b""
    server.advance(0.1)
    assert second.fields()["AE"] == "10"


def test_the_busy_mode_can_change_at_run_time():
    server, first, refused = pending_then_second("refuse")
    assert refused.fields()["AF"] == "07"
    server.factory.configure(busy="parallel")
    third = server.connect()
    third.send(REQUEST)
    server.advance(0.4)
    assert first.fields()["AE"] == "10" and third.received == b""
    server.factory.configure(busy="ignore")
    server.advance(0.1)
    assert third.fields()["AE"] == "10"


def test_an_unknown_busy_mode_is_refused_where_it_is_set():
    server = InProcessTerminal()
    with pytest.raises(ValueError, match="no --busy mode 'later'"):
        server.factory.configure(busy="later", after_answer=0)
    assert server.factory.connection_settings()["after_answer"] is None  # all or nothing
    with pytest.raises(ValueError, match="known: parallel, refuse, queue, ignore"):
        InProcessTerminal(Limits(busy="later"))


def test_a_silent_transaction_keeps_an_exclusive_terminal_until_its_pos_leaves():
    server = InProcessTerminal(Limits(busy="refuse"))
    silenced = server.connect()
    server.factory.terminal.queue([parse("silent")])
    silenced.send(REQUEST)
    assert server.exchange().fields()["AF"] == "07"
    silenced.reset()
    server.advance(0)
    assert server.exchange().fields()["AE"] == "10"


# -- what a POS sees of each outcome, through the real client and a real server process


@pytest.fixture(scope="module")
def magic_server(terminal_server):
    return terminal_server("-d", "0", "--magic-amounts")


@pytest.mark.parametrize(
    ("cents", "args", "returncode", "message"),
    [
        ("66", ["--timeout", "0.3"], 3, "no complete answer"),  # silent
        ("67", [], 3, "closed the connection without answering"),  # close
        ("68", [], 3, ""),  # reset
        ("69", ["--quiet-time", "0.3"], 0, ""),  # answer fragments=3 pause=0.2
        ("72", [], 3, "malformed answer"),  # garbage
        ("73", [], 3, "truncated record"),  # truncated
    ],
    ids=["silent", "close", "reset", "fragments", "garbage", "truncated"],
)
def test_the_client_reports_each_outcome(magic_server, cents, args, returncode, message):
    result = client("-p", str(magic_server.port), "-a", f"12.{cents}", *args)
    assert result.returncode == returncode and message in result.stderr


def test_the_client_is_done_when_the_terminal_closes_after_answering(terminal_server):
    server = terminal_server("-d", "0", "--after-answer", "close")
    with server.connect() as sock:
        sock.sendall(REQUEST)
        assert decode(read_until_closed(sock))[-1][0] == "CG"
    result = client("-p", str(server.port), "--quiet-time", "30", "--json")
    assert result.returncode == 0  # the client is done with the whole answer, closed or not


def test_bad_outcome_option_exits_2():
    import subprocess
    import sys

    from helpers import SERVER_SCRIPT

    result = subprocess.run(
        [sys.executable, str(SERVER_SCRIPT), "--outcome", "explode"], capture_output=True, text=True, timeout=WAIT
    )
    assert result.returncode == 2 and "unknown outcome 'explode'" in result.stderr
