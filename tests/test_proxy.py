"""--proxy: the simulator between a POS and a real terminal, relaying byte for byte and journaling what it saw.

In process (helpers.InProcessProxy): the POS's and the terminal's connections are fake transports, the
reactor is a MemoryReactorClock, and time moves only when a test says so. The end-to-end tests put a
scripted terminal on 127.0.0.1 behind a real proxy.
"""

import logging
import socket
import threading

import helpers
import pytest
from helpers import (
    REAL_TERMINAL,
    REQUEST,
    WAIT,
    InProcessProxy,
    answering,
    fake_terminal,
    receive_pieces,
    scripted_terminal,
    split,
)
from twisted.internet import error

from caisse_ap_ip import client, display, outcomes, proxy
from caisse_ap_ip.outcomes import CRLF, GARBAGE, parse, truncate
from caisse_ap_ip.protocol import decode, encode
from caisse_ap_ip.server import MAX_PIPELINED
from caisse_ap_ip.testing import SimulatedTerminal

# what a real terminal answered: its own CZ, a zero-padded CB, tags the simulator never sends (AP, AQ)
ANSWER = encode([
    ("CZ", "0301"), ("CJ", "012345678901"), ("CA", "01"), ("CE", "978"), ("BA", "0"), ("CD", "0"),
    ("CB", "000000011245"), ("AE", "10"), ("CC", "00B"), ("CI", "2"), ("AC", "583014"),
    ("AA", "497010######4127"), ("AI", "A0000000421010"), ("AB", "2612"), ("CF", "1010000000"),
    ("AP", "2603141042170"), ("AQ", "SN123456"), ("CG", "1234567"),
])  # fmt: skip
PIECES = split(ANSWER, 9, 60)  # as the terminal cuts it: a first segment of 9 bytes, then two more
SECOND = REQUEST.replace(b"CA00201", b"CA00202")  # the next request of a POS that pipelines
ANSWER2 = ANSWER.replace(b"CA00201", b"CA00202")


def entry(proxied: InProcessProxy) -> dict:
    (only,) = proxied.entries()
    return only


def test_bytes_pass_unchanged_each_piece_as_it_comes_and_the_journal_shows_the_segments(caplog):
    proxied = InProcessProxy()
    pos = proxied.connect()
    host, port, _, timeout = proxied.dialled()
    assert ((host, port), timeout) == (REAL_TERMINAL, 5)  # the terminal of --proxy, within --proxy-timeout
    pos.send(REQUEST[:20])  # before the terminal took the connection: held, then forwarded
    terminal = proxied.accept()
    pos.send(REQUEST[20:])
    assert terminal.received == REQUEST
    with caplog.at_level(logging.INFO, "caisse_ap_ip"):
        for at, piece in zip((2.5, 2.75, 3.0), PIECES, strict=True):
            proxied.advance(at - proxied.clock.seconds())
            terminal.send(piece)
            assert pos.transport.writes[-1] == piece  # at once, alone: the cutting and timing are the terminal's
        proxied.advance(0.1)
        terminal.close()
        proxied.advance(0)
    assert pos.transport.writes == PIECES and pos.closed  # the terminal's close reaches the POS
    row = entry(proxied)
    assert (row["request"], row["answer"], row["outcome"]) == (REQUEST.decode(), ANSWER.decode(), "answer")
    assert row["acted"] - row["received"] == pytest.approx(3.0)  # until the answer's last byte
    assert row["proxy"] == {
        "terminal": "127.0.0.1:9100",
        "segments": [
            {"from": "pos", "at": 0.0, "size": 20},
            {"from": "pos", "at": 0.0, "size": len(REQUEST) - 20},
            *(
                {"from": "terminal", "at": at, "size": len(piece)}
                for at, piece in zip((2.5, 2.75, 3.0), PIECES, strict=True)
            ),
        ],
        "terminal_closed": True,
        "terminal_closed_at": pytest.approx(3.1),
        "terminal_answer": ANSWER.decode(),
        "terminal_answer_records": display.describe(decode(ANSWER)),  # as answer_records: for the page
        "pos_half_closed_at": None,
    }
    (line,) = [r.getMessage() for r in caplog.records if "proxied" in r.getMessage()]
    assert line.startswith("127.0.0.1:40000 POS 01 debit 112.45 EUR: success CB/Visa/Mastercard contactless")
    assert line.endswith("in 3.00 s, proxied to 127.0.0.1:9100 (answer in 3 segments, closed by the terminal)")


def test_a_terminal_that_keeps_the_line_open_is_journaled_after_the_close_watch():
    proxied = InProcessProxy()
    pos, terminal = proxied.relay()
    terminal.send(ANSWER)
    proxied.advance(proxy.CLOSE_WATCH - 0.01)
    assert proxied.entries() == []  # it may still close
    proxied.advance(0.01)
    row = entry(proxied)
    assert row["proxy"]["terminal_closed"] is False and row["proxy"]["terminal_closed_at"] is None
    assert not pos.closed


def test_a_pos_leaving_as_soon_as_its_answer_is_whole_still_learns_whether_the_terminal_closed():
    proxied = InProcessProxy()
    pos, terminal = proxied.relay()
    terminal.send(ANSWER)
    pos.reset()  # before the terminal's close has come
    proxied.advance(0.01)
    assert proxied.entries() == [] and not terminal.transport.disconnecting
    terminal.close()
    row = entry(proxied)
    assert row["answer"] == ANSWER.decode() and row["proxy"]["terminal_closed_at"] == pytest.approx(0.01)


def test_a_pos_leaving_after_its_answer_ends_the_terminal_connection_after_the_close_watch():
    proxied = InProcessProxy()
    pos, terminal = proxied.relay()
    terminal.send(ANSWER)
    pos.reset()
    proxied.advance(proxy.CLOSE_WATCH)
    assert entry(proxied)["proxy"]["terminal_closed"] is False
    assert terminal.transport.disconnecting  # the proxy hung up on the terminal


def test_a_pos_leaving_before_the_answer_is_journaled_so():
    proxied = InProcessProxy()
    pos, terminal = proxied.relay()
    terminal.send(ANSWER[:30])
    pos.reset()
    row = entry(proxied)
    assert row["outcome"] == "left before the answer (answer)" and row["answer"] == ANSWER[:30].decode()


def test_an_answer_on_a_record_boundary_without_what_it_implies_is_whole_after_the_quiet_time():
    proxied = InProcessProxy()
    _, terminal = proxied.relay()
    terminal.send(ANSWER[: ANSWER.index(b"CC003")])  # AE=10 but no card records yet
    proxied.advance(client.DEFAULT_QUIET_TIME + proxy.CLOSE_WATCH)
    assert entry(proxied)["acted"] == 0.0  # whole when its last byte came


def test_neither_side_is_read_while_the_other_cannot_take_more():
    proxied = InProcessProxy()
    pos, terminal = proxied.relay()
    terminal.transport.producer.pauseProducing()  # what Twisted does when the terminal's send buffer is full
    assert pos.transport.producerState == "paused"
    terminal.transport.producer.resumeProducing()
    pos.transport.producer.pauseProducing()  # the POS does not read its answer
    assert (pos.transport.producerState, terminal.transport.producerState) == ("producing", "paused")
    terminal.transport.producer.stopProducing()  # the terminal's connection is lost: the POS's line is not cut
    assert not pos.closed


class ClosingLikeTcp(helpers.PosTransport):
    """A transport that closes as Twisted's TCP transport does: with its send buffer full, it pauses the streaming
    producer registered with it, and loseConnection then waits until that producer is unregistered."""

    producer_paused = False

    def fill(self) -> None:
        """The other end does not read: the send buffer is full."""
        self.producer_paused = True
        self.producer.pauseProducing()

    def loseConnection(self) -> None:
        if self.producer is not None and self.producer_paused:
            self.disconnecting = True  # but not closed
            return
        super().loseConnection()

    def unregisterProducer(self) -> None:
        super().unregisterProducer()
        self.producer_paused = False
        if self.disconnecting and not self.disconnected:
            self.disconnecting = False
            self.loseConnection()


def test_the_pos_line_closes_after_the_terminals_close_even_while_the_pos_does_not_read(monkeypatch):
    monkeypatch.setattr(helpers, "PosTransport", ClosingLikeTcp)
    proxied = InProcessProxy()
    pos, terminal = proxied.relay()
    terminal.send(ANSWER)
    pos.transport.fill()  # the POS does not read its answer: nor is the terminal read
    assert terminal.transport.producerState == "paused"
    terminal.close()
    proxied.advance(0)
    assert pos.transport.disconnected and pos.received == ANSWER


def test_the_terminal_line_closes_when_the_pos_leaves_even_while_the_terminal_does_not_read(monkeypatch):
    monkeypatch.setattr(helpers, "PosTransport", ClosingLikeTcp)
    proxied = InProcessProxy()
    pos, terminal = proxied.relay()
    terminal.transport.fill()  # the terminal does not read what the POS sends: nor is the POS read
    pos.reset()
    proxied.advance(0)
    assert terminal.transport.disconnected


def test_a_pos_that_leaves_without_reading_its_answer_still_learns_whether_the_terminal_closed():
    proxied = InProcessProxy()
    pos, terminal = proxied.relay()
    terminal.send(ANSWER)
    pos.transport.producer.pauseProducing()  # the POS does not read: nor is the terminal read
    pos.reset()
    assert terminal.transport.producerState == "producing"  # read again, for its close to be seen
    terminal.close()
    assert entry(proxied)["proxy"]["terminal_closed"] is True


def test_a_pos_is_read_no_further_while_max_pipelined_requests_wait_for_the_terminal():
    proxied = InProcessProxy()
    pos, terminal = proxied.relay(REQUEST * (MAX_PIPELINED - 1))
    assert pos.transport.producerState == "producing"
    pos.send(REQUEST)
    assert pos.transport.producerState == "paused"  # as the simulated terminal stops reading ahead
    terminal.transport.producer.pauseProducing()  # the terminal cannot take more for a while, then can
    terminal.transport.producer.resumeProducing()
    assert pos.transport.producerState == "paused"  # the requests still wait
    terminal.send(ANSWER + ANSWER)  # the first is journaled: the terminal has gone on to the next
    assert pos.transport.producerState == "producing" and len(proxied.entries()) == 1


def test_a_pos_half_close_is_passed_on_and_the_answer_still_comes_back_and_the_journal_says_who_closed_first():
    proxied = InProcessProxy()
    pos, terminal = proxied.relay()
    proxied.advance(0.2)
    pos.shutdown_write()
    assert terminal.transport.write_closed and not pos.closed
    proxied.advance(0.3)
    terminal.send(ANSWER)
    terminal.close()  # perhaps because the POS shut its side down: not for sure the terminal's own choice
    proxied.advance(0)
    assert pos.received == ANSWER and pos.closed
    row = entry(proxied)
    relayed = row["proxy"]
    assert (relayed["pos_half_closed_at"], relayed["terminal_closed_at"]) == (pytest.approx(0.2), pytest.approx(0.5))
    from caisse_ap_ip import server_cli

    shown = server_cli._journal_text(row).splitlines()
    half, closed = (n for n, line in enumerate(shown) if "half-close" in line or "closed by the terminal" in line)
    assert "+0.200 s" in shown[half] and "+0.500 s  closed by the terminal" in shown[closed] and half < closed


def test_two_requests_on_one_connection_are_two_transactions_with_their_own_answers():
    proxied = InProcessProxy()
    pos, terminal = proxied.relay(REQUEST + SECOND)
    terminal.send(ANSWER)
    terminal.send(ANSWER2)  # the next answer ends the first one's watch
    proxied.advance(proxy.CLOSE_WATCH)
    first, then = proxied.entries()
    assert first["request"] == REQUEST.decode() and then["request"] == SECOND.decode()
    assert dict(decode(then["answer"].encode()))["CA"] == "02"
    assert pos.received == ANSWER + ANSWER2


def terminal_segments(row: dict) -> list[tuple[float, int]]:
    return [(s["at"], s["size"]) for s in row["proxy"]["segments"] if s["from"] == "terminal"]


def test_two_answers_in_one_read_are_two_transactions_each_with_its_own_answer():
    proxied = InProcessProxy()
    pos, terminal = proxied.relay(REQUEST + SECOND)
    proxied.advance(0.5)
    terminal.send(ANSWER + ANSWER2)  # a fast terminal: both answers arrive in one read
    proxied.advance(proxy.CLOSE_WATCH)
    first, then = proxied.entries()
    assert (first["answer"], then["answer"]) == (ANSWER.decode(), ANSWER2.decode())
    assert then["proxy"]["terminal_answer"] == ANSWER2.decode() and then["outcome"] == "answer"
    assert terminal_segments(first) == [(0.5, len(ANSWER))] and terminal_segments(then) == [(0.5, len(ANSWER2))]
    assert pos.received == ANSWER + ANSWER2


def test_an_answer_replaced_by_the_simulators_is_one_answer_per_request_when_two_come_in_one_read():
    proxied = InProcessProxy()
    proxied.factory.terminal.queue([parse("failure:refused"), parse("failure:refused")])
    pos, terminal = proxied.relay(REQUEST + SECOND)
    terminal.send(ANSWER + ANSWER2)
    assert pos.received == REQUEST + b"AE00201AF00204" + SECOND + b"AE00201AF00204"
    proxied.advance(proxy.CLOSE_WATCH)
    assert [row["proxy"]["terminal_answer"] for row in proxied.entries()] == [ANSWER.decode(), ANSWER2.decode()]


def test_only_the_answer_to_a_relayed_request_reaches_the_pos_when_the_next_one_is_replaced():
    proxied = InProcessProxy()
    proxied.factory.terminal.queue([parse("answer"), parse("failure:refused")])
    pos, terminal = proxied.relay(REQUEST + SECOND)
    terminal.send(ANSWER + ANSWER2)
    assert pos.transport.writes == [ANSWER, SECOND + b"AE00201AF00204"]


@pytest.mark.parametrize("stray", [b"", b"\r\n"], ids=["right after", "after CR LF"])
def test_a_read_that_ends_inside_the_next_answer_gives_that_answer_its_own_bytes_and_segments(stray):
    proxied = InProcessProxy()
    pos, terminal = proxied.relay(REQUEST + SECOND)
    proxied.advance(0.5)
    terminal.send(ANSWER + stray + ANSWER2[:4])  # the first bytes of the next answer come with this one
    proxied.advance(0.25)
    terminal.send(ANSWER2[4:])
    proxied.advance(proxy.CLOSE_WATCH)
    first, then = proxied.entries()
    assert first["proxy"]["terminal_answer"] == (ANSWER + stray).decode()  # stray bytes stay with their answer
    assert terminal_segments(first) == [(0.5, len(ANSWER + stray))]
    assert (then["answer"], then["proxy"]["terminal_answer"]) == (ANSWER2.decode(), ANSWER2.decode())
    assert terminal_segments(then) == [(0.5, 4), (0.75, len(ANSWER2) - 4)]
    assert pos.received == ANSWER + stray + ANSWER2


def test_an_answer_to_a_next_request_not_whole_to_the_simulator_is_its_own_even_within_the_close_watch():
    proxied = InProcessProxy()
    incomplete = SECOND[: SECOND.index(b"CB")]  # no amount: the simulator would wait --assembly-time
    pos, terminal = proxied.relay(REQUEST)
    terminal.send(ANSWER)
    proxied.advance(0.1)  # the first answer waits for the terminal's close
    pos.send(incomplete)
    terminal.send(incomplete + b"AE00201AF00209")
    proxied.advance(proxy.CLOSE_WATCH)
    first, then = proxied.entries()
    assert first["answer"] == ANSWER.decode() and first["proxy"]["terminal_closed"] is False
    assert (then["request"], then["answer"]) == (incomplete.decode(), (incomplete + b"AE00201AF00209").decode())


def test_a_request_the_terminal_answers_before_it_is_whole_to_the_simulator_is_taken_then():
    proxied = InProcessProxy()
    incomplete = REQUEST[: REQUEST.index(b"CB")]  # no amount: the simulator would wait --assembly-time
    _, terminal = proxied.relay(incomplete)
    terminal.send(incomplete + b"AE00201AF00209")
    terminal.close()
    proxied.advance(0)
    row = entry(proxied)
    assert row["request"] == incomplete.decode() and row["answer"].endswith("AE00201AF00209")


def test_bytes_no_request_can_hold_still_reach_the_terminal_and_the_journal_says_what_they_were(caplog):
    proxied = InProcessProxy()
    garbage = b"\x02" + b"01" + b"00011245" + b"\x03"  # Concert V2 serial framing
    with caplog.at_level(logging.WARNING, "caisse_ap_ip"):
        pos, terminal = proxied.relay(garbage)
        pos.send(b"\x04")
        terminal.close()
        proxied.advance(0)
    assert terminal.received == garbage + b"\x04"
    row = entry(proxied)
    assert row["request"].encode("latin-1") == garbage + b"\x04" and "Concert V2 serial framing" in row["outcome"]
    assert any("Concert V2" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("reason", "why"),
    [
        (error.ConnectionRefusedError(), "connection refused"),
        (error.TimeoutError(), "no connection within 5 s (--proxy-timeout)"),
        (error.DNSLookupError("terminal.lan"), "no such host"),
    ],
)
def test_an_unreachable_terminal_closes_the_pos_connection_and_says_why(caplog, reason, why):
    proxied = InProcessProxy()
    pos = proxied.connect()
    pos.send(REQUEST)
    with caplog.at_level(logging.WARNING, "caisse_ap_ip"):
        proxied.refuse(reason)
    assert pos.closed and pos.received == b"" and not pos.transport.aborted
    row = entry(proxied)
    assert row["outcome"] == f"terminal 127.0.0.1:9100 unreachable: {why}"
    assert row["request"] == REQUEST.decode() and row["proxy"]["segments"] == [{"from": "pos", "at": 0, "size": 63}]
    (warning,) = caplog.records
    assert warning.levelno == logging.WARNING and f"unreachable: {why}" in warning.getMessage()


def test_an_unreachable_terminal_is_journaled_even_before_the_pos_said_anything():
    proxied = InProcessProxy()
    pos = proxied.connect()
    proxied.refuse(error.ConnectionRefusedError())
    assert pos.closed and entry(proxied)["request"] == ""


def test_the_pos_leaving_while_the_terminal_is_dialled_stops_the_dialling():
    proxied = InProcessProxy()
    pos = proxied.connect()
    pos.reset()
    assert proxied.clock.connectors[-1].stoppedConnecting
    proxied.refuse(error.UserError())  # what stopConnecting makes Twisted say: not an unreachable terminal
    assert proxied.entries() == []


# -- outcomes on the way: what the POS gets of the real terminal's answer


def test_every_outcome_kind_says_what_it_does_to_the_real_answer_once_and_only_once():
    kinds = [proxy.RELAYED, set(proxy.RESHAPED), proxy.DROPPED, proxy.REPLACED, outcomes.MODIFIER_KINDS]
    assert sum(map(len, kinds)) == len(set().union(*kinds))  # no kind in two of them
    assert set().union(*kinds) == set(outcomes.KINDS)  # a new kind cannot be forgotten


def relay_with(outcome: str, pieces=PIECES):
    proxied = InProcessProxy()
    proxied.factory.terminal.queue([parse(outcome)])
    pos, terminal = proxied.relay()
    for piece in pieces:
        terminal.send(piece)
    return proxied, pos, terminal


def test_fragments_re_cut_the_real_answer_once_whole():
    proxied, pos, _ = relay_with("answer fragments=4 pause=0.2")
    assert len(pos.transport.writes) == 1  # the first piece at once: the answer was whole
    proxied.advance(0.59)
    assert len(pos.transport.writes) == 3  # 0.2 s apart
    proxied.advance(0.02)
    assert len(pos.transport.writes) == 4 and pos.received == ANSWER
    proxied.advance(proxy.CLOSE_WATCH)
    row = entry(proxied)
    assert row["answer"] == ANSWER.decode() and len(row["proxy"]["segments"]) == 1 + len(PIECES)


def test_a_delay_holds_the_real_answer():
    proxied, pos, _ = relay_with("delay:2")
    proxied.advance(1.99)
    assert pos.received == b""
    proxied.advance(0.01)
    assert pos.transport.writes == [ANSWER]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("truncated", truncate(ANSWER)),
        ("crlf", ANSWER + CRLF),
        ("garbage", GARBAGE),
        ("padded-amount", ANSWER),  # its CB is zero-padded already
        ("success", ANSWER),  # the real terminal decides whether a payment succeeds
        ("ask", ANSWER),  # the real terminal's customer decides: nothing waits on the simulator's side
    ],
)
def test_outcomes_that_reshape_or_replace_the_real_answer(outcome, expected):
    proxied, pos, _ = relay_with(outcome)
    proxied.advance(proxy.CLOSE_WATCH)
    assert pos.received == expected
    assert pos.closed == (outcome == "truncated")
    row = entry(proxied)
    assert row["answer"].encode("latin-1") == expected and row["proxy"]["terminal_answer"] == ANSWER.decode()
    assert dict((record["tag"], record["value"]) for record in row["proxy"]["terminal_answer_records"])["AE"] == "10"


def test_padded_amount_pads_the_real_answers_cb():
    unpadded = ANSWER.replace(b"CB012000000011245", b"CB00511245")
    _, pos, _ = relay_with("padded-amount", [unpadded])
    assert pos.received == ANSWER


def test_a_failure_answers_with_the_simulators_own_answer_when_the_real_one_comes():
    proxied, pos, _ = relay_with("failure:refused", PIECES[:2])
    assert pos.received == b""  # not before the terminal has answered
    proxied.advance(1)
    assert pos.received == b""
    _, pos, _ = relay_with("failure:refused")
    assert pos.received == REQUEST + b"AE00201AF00204"


@pytest.mark.parametrize("outcome", ["silent", "close", "reset", "immediate"])
def test_outcomes_that_drop_the_real_answer(outcome):
    proxied, pos, terminal = relay_with(outcome)
    terminal.close()
    proxied.advance(0)
    acknowledged = REQUEST + b"AE00211"
    assert pos.received == (acknowledged if outcome == "immediate" else b"")
    assert pos.closed == (outcome != "silent")  # a silent terminal says nothing, not even its close
    assert pos.transport.aborted == (outcome == "reset")
    row = entry(proxied)
    assert row["proxy"]["terminal_answer"] == ANSWER.decode()
    assert row["answer"] == (acknowledged.decode() if outcome == "immediate" else None)


def test_pending_sends_the_simulators_ae_11_at_once_then_the_real_answer_as_it_comes():
    proxied = InProcessProxy()
    proxied.factory.terminal.queue([parse("pending")])
    pos, terminal = proxied.relay()
    assert pos.transport.writes == [REQUEST + b"AE00211"]
    terminal.send(ANSWER)
    assert pos.transport.writes == [REQUEST + b"AE00211", ANSWER]


def test_a_scenario_rule_chooses_the_outcome_of_a_proxied_request(tmp_path):
    from caisse_ap_ip import scenarios

    path = tmp_path / "faults.toml"
    path.write_text('[[rule]]\nname = "split"\nwhen = { amount = "112.45" }\noutcome = "fragments:3"\n')
    proxied = InProcessProxy()
    proxied.factory.terminal.replace_scenario(scenarios.load(path))
    pos, terminal = proxied.relay()
    terminal.send(ANSWER)
    proxied.advance(proxy.CLOSE_WATCH + 1)
    assert len(pos.transport.writes) == 3 and pos.received == ANSWER
    row = entry(proxied)
    assert (row["outcome"], row["rule"]) == ("answer fragments=3 pause=0.05", "split")


def test_a_quiet_proxied_connection_is_closed_after_the_idle_timeout_but_not_while_an_answer_is_due():
    from caisse_ap_ip.server import Limits

    proxied = InProcessProxy(Limits(idle_timeout=10))
    pos, terminal = proxied.relay()
    proxied.advance(30)
    assert not pos.closed  # the customer takes their time: the terminal has not answered
    terminal.send(ANSWER)
    proxied.advance(proxy.CLOSE_WATCH + 10.5)
    assert pos.closed


# -- end to end: a scripted terminal on loopback, behind a real proxy


@pytest.mark.parametrize("close", [True, False], ids=["terminal closes", "terminal keeps the line"])
def test_end_to_end_raw_socket_pos_sees_the_terminals_own_segments_and_the_journal_has_them(close):
    got, piece_arrived = [], threading.Event()
    with (
        fake_terminal(scripted_terminal(PIECES, piece_arrived, got, close)) as port,
        SimulatedTerminal("--proxy", f"127.0.0.1:{port}") as simulated,
        socket.create_connection(("127.0.0.1", simulated.port), timeout=WAIT) as pos,
    ):
        pos.sendall(REQUEST[:10])
        pos.sendall(REQUEST[10:])
        received = receive_pieces(pos, PIECES, piece_arrived)
        if close:
            assert pos.recv(1) == b""  # the terminal's close reached the POS
        row = simulated.wait_for_transaction()
    assert got == [REQUEST] and received == PIECES  # unchanged, and cut where the terminal cut it
    relayed = row["proxy"]
    assert relayed["terminal"] == f"127.0.0.1:{port}" and relayed["terminal_closed"] is close
    terminal_segments = [s["size"] for s in relayed["segments"] if s["from"] == "terminal"]
    assert terminal_segments == [len(piece) for piece in PIECES]
    assert sum(s["size"] for s in relayed["segments"] if s["from"] == "pos") == len(REQUEST)
    times = [s["at"] for s in relayed["segments"]]
    assert times == sorted(times) and row["answer"] == ANSWER.decode()


def test_end_to_end_our_client_gets_the_terminals_answer_through_the_proxy():
    with (
        fake_terminal(answering(PIECES, pause=0.02, then_close=True)) as port,
        SimulatedTerminal("--proxy", f"127.0.0.1:{port}") as simulated,
    ):
        exchange = client.transact("127.0.0.1", simulated.port, REQUEST, timeout=WAIT, quiet_time=0.2)
        row = simulated.wait_for_transaction()
    assert exchange.answer_bytes == ANSWER and dict(exchange.answer)["AQ"] == "SN123456"
    assert row["answer"] == ANSWER.decode() and row["proxy"]["terminal_answer"] == ANSWER.decode()
    assert sum(s["size"] for s in row["proxy"]["segments"] if s["from"] == "terminal") == len(ANSWER)
    assert simulated.transactions[-1]["proxy"]["terminal"] == f"127.0.0.1:{port}"


def test_end_to_end_an_unreachable_terminal_closes_the_pos_connection_and_the_control_api_says_why():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]  # closed when this block ends: nobody listens there any more
    with SimulatedTerminal("--proxy", f"127.0.0.1:{port}", subprocess=True) as simulated:  # GET /journal
        with socket.create_connection(("127.0.0.1", simulated.port), timeout=WAIT) as pos:
            pos.sendall(REQUEST)
            assert pos.recv(1024) == b""
        row = simulated.wait_for_transaction()
    assert row["outcome"] == f"terminal 127.0.0.1:{port} unreachable: connection refused"
    assert row["answer"] is None and row["proxy"]["terminal_answer"] is None
    assert row["proxy"]["terminal_answer_records"] is None


def test_the_proxy_address_is_checked_and_ipv6_takes_brackets():
    with pytest.raises(ValueError, match=r"write an IPv6 address in brackets, as in \[::1\]:8888"):
        SimulatedTerminal("--proxy", "::1:8888")
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        SimulatedTerminal("--proxy", "terminal.lan")
    from caisse_ap_ip import settings

    assert settings.parse_args(["--proxy", "[::1]:8888"]).proxy == ("::1", 8888)
