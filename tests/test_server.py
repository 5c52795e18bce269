"""The server: its process contract through a subprocess, its network behaviour in process.

In process, the protocol and factory run on fake transports and a task.Clock
(helpers.InProcessTerminal): no socket, no sleep, and time moves only with
``clock.advance``.
"""

import logging
import re
import signal
import socket
import subprocess
import sys

import pytest
from helpers import REQUEST, SERVER_SCRIPT, WAIT, InProcessTerminal, ServerProcess, read_answers, read_until_closed
from twisted.internet.interfaces import IHalfCloseableProtocol

from caisse_ap_ip.outcomes import parse
from caisse_ap_ip.protocol import decode, encode
from caisse_ap_ip.server import BUSY_MODES, MAX_PIPELINED, Limits, Phase

CHECK_REQUEST = REQUEST + b"CC00300C"
INCOMPLETE = REQUEST[: REQUEST.index(b"CB")]  # lacks its amount, a mandatory tag
AF_09 = b"AE00201AF00209"


def with_amount(amount: str) -> bytes:
    return REQUEST.replace(b"CB00511245", f"CB{len(amount):03d}{amount}".encode())


# -- the process contract


def test_prints_its_real_port_and_answers_there(fast_server):
    assert fast_server.host == "127.0.0.1"  # loopback unless --host says otherwise
    with fast_server.connect() as sock:
        sock.sendall(REQUEST)
        (answer,) = read_answers(sock)
    assert encode(answer).startswith(REQUEST + b"AE00210CC003001CI0011")


def test_listens_on_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    server = ServerProcess("--host", "::1", "-d", "0")
    try:
        with socket.create_connection(("::1", server.port), timeout=WAIT) as sock:
            sock.sendall(REQUEST)
            assert dict(read_answers(sock)[0])["AE"] == "10"
    finally:
        assert server.stop() == 0


def test_sigint_stops_the_server_even_when_started_with_sigint_ignored():
    def ignore_sigint():
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for a background job of a shell script

    process = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "-p", "0", "-d", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=ignore_sigint,
    )  # fmt: skip
    assert process.stdout.readline().startswith("listening on")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=WAIT) == 0


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_stops_cleanly_with_exit_0(signal_name):
    server = ServerProcess("-d", "0")
    assert server.stop(getattr(signal, signal_name)) == 0
    assert "Traceback" not in server.stderr()


def test_a_port_in_use_is_reported_with_a_non_zero_exit(fast_server):
    result = subprocess.run(
        [sys.executable, str(SERVER_SCRIPT), "-p", str(fast_server.port)], capture_output=True, text=True, timeout=WAIT
    )
    assert result.returncode == 3
    assert result.stdout == ""
    assert f"cannot listen on 127.0.0.1:{fast_server.port}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-ft", "bogus"], "invalid choice 'bogus' (choose from abandon, timeout, refused, forbidden, "),
        (["-pt", "visa"], "invalid choice 'visa'"),
        (["-l", "verbose"], "invalid choice 'verbose'"),
        (["-sc", "12345678901"], "1 to 10 printable ASCII characters"),
        (["-d", "-1"], "must be a finite number >= 0"),
        (["-d", "soon"], "is not a number"),
        (["-p", "70000"], "not between 0 and 65535"),
        (["--max-connections", "0"], "must be > 0"),
    ],
)
def test_bad_options_are_refused_at_start_up(args, message):
    result = subprocess.run([sys.executable, str(SERVER_SCRIPT), *args], capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_choices_are_case_insensitive(terminal_server):
    server = terminal_server("-d", "0", "-f", "-ft", "REFUSED", "-pt", "AmexContact", "-l", "WARN")
    with server.connect() as sock:
        sock.sendall(REQUEST)
        assert dict(read_answers(sock)[0])["AF"] == "04"


def test_debug_logs_every_transaction_tag_by_tag(terminal_server):
    server = terminal_server("-d", "0", "-l", "debug")
    with server.connect() as sock:
        sock.sendall(REQUEST)
        read_answers(sock)
    log = server.stderr()
    assert "debit 112.45 EUR -> success" in log
    assert "AE  action status" in log


@pytest.mark.parametrize("level", ["info", "warn"])
def test_info_logs_one_line_per_transaction_and_warn_only_what_went_wrong(terminal_server, level):
    server = terminal_server("-d", "0", "-l", level)
    with server.connect() as sock:
        sock.sendall(REQUEST)
        read_answers(sock)
    with server.connect() as sock:
        sock.sendall(b"\xff")
        while sock.recv(4096):
            pass
    log = server.stderr()
    line = re.search(
        r"INFO 127\.0\.0\.1:\d+ POS 01 debit 112\.45 EUR: success CB/Visa/Mastercard contact, auth \d{6} in", log
    )
    assert bool(line) == (level == "info")
    assert ("terminal ready: success (cbcontact) after 0 s, contract 424242" in log) == (level == "info")
    assert re.search(r"WARNING 127\.0\.0\.1:\d+: malformed: non-ASCII byte at byte 0 \(AF=09\) in", log)


def test_busy_modes_are_named_and_described():
    assert list(BUSY_MODES) == ["parallel", "refuse", "queue", "ignore"]
    assert all(BUSY_MODES.values())


# -- what the terminal answers, in process


@pytest.mark.parametrize(
    ("failure_type", "af"), [("abandon", "11"), ("timeout", "08"), ("refused", "04"), ("forbidden", "05")]
)
def test_failure_types(failure_type, af):
    server = InProcessTerminal(failure=True, failure_type=failure_type)
    pos = server.connect()
    pos.send(REQUEST)
    pos.send(CHECK_REQUEST)
    assert [encode(answer) for answer in pos.answers()] == [
        REQUEST + b"AE00201AF002" + af.encode(),
        CHECK_REQUEST + b"AE00201AF00204",
    ]


def test_failure_defaults_to_abandon():
    assert InProcessTerminal(failure=True).exchange().fields()["AF"] == "11"


@pytest.mark.parametrize(
    ("payment_type", "cc", "ci"),
    [
        ("cbcontact", "001", "1"),
        ("cbcontactless", "00B", "2"),
        ("amexcontact", "002", "1"),
        ("amexcontactless", "00D", "2"),
    ],
)
def test_payment_type_and_seller_contract(payment_type, cc, ci):
    fields = InProcessTerminal(payment_type=payment_type, seller_contract="C0NTRACT42").exchange().fields()
    assert (fields["AE"], fields["CC"], fields["CI"], fields["CG"]) == ("10", cc, ci, "C0NTRACT42")


def test_check_success_has_no_card_data():
    assert InProcessTerminal().exchange(CHECK_REQUEST).received == CHECK_REQUEST + b"AE00210"


def test_missing_mandatory_tag_gets_ae_01_af_09_in_success_mode():
    server = InProcessTerminal(Limits(assembly_time=0.05), duration=5)
    no_cj = b"CZ0040300CA00201CE003978CD0010CB00511245"
    pos = server.connect()
    pos.send(no_cj)
    server.advance(0.05)
    assert pos.received == no_cj + AF_09  # after the assembly time, without the 5 s customer delay


def test_unknown_action_gets_af_12():
    assert InProcessTerminal().exchange(REQUEST.replace(b"CD0010", b"CD0019")).fields()["AF"] == "12"


def test_immediate_mode_answers_ae_11_without_waiting():
    immediate = REQUEST.replace(b"BA0010", b"BA0011")
    pos = InProcessTerminal(duration=5).connect()
    pos.send(immediate)
    assert pos.received == immediate + b"AE00211"


def test_each_answer_leaves_in_one_write_for_a_single_recv():
    pos = InProcessTerminal().exchange()
    assert len(pos.transport.writes) == 1 and decode(pos.transport.writes[0])[-1][0] == "CG"


# -- how requests are framed


@pytest.mark.parametrize("piece", [1, 2, 7, 10])
def test_a_request_in_small_pieces_is_answered_once_whole(piece):
    pos = InProcessTerminal().connect()
    for start in range(0, len(REQUEST), piece):
        assert pos.received == b""
        pos.send(REQUEST[start : start + piece])
    assert pos.received.startswith(REQUEST + b"AE00210")


def test_optional_records_arriving_after_the_mandatory_ones_still_belong_to_the_request():
    server = InProcessTerminal(duration=1)
    pos = server.connect()
    pos.send(REQUEST)
    server.advance(0.5)
    pos.send(b"CC00300C")
    server.advance(0.5)
    assert pos.received == CHECK_REQUEST + b"AE00210"


def test_two_requests_in_one_segment_get_two_answers_in_order():
    pos = InProcessTerminal().exchange(REQUEST + REQUEST.replace(b"CD0010", b"CD0011"))
    assert [dict(answer)["CD"] for answer in pos.answers()] == ["0", "1"]


def test_further_requests_on_the_same_connection_are_answered():
    pos = InProcessTerminal().connect()
    for amount in ("11245", "1000", "05"):
        pos.send(with_amount(amount))
        assert dict(pos.answers()[-1])["CB"] == amount


@pytest.mark.parametrize("duration", [0, 0.01])
def test_many_pipelined_requests_are_all_answered_in_order(duration):
    server = InProcessTerminal(duration=duration)
    amounts = [f"{n:04d}" for n in range(1, 41)]
    pos = server.connect()
    pos.send(b"".join(with_amount(amount) for amount in amounts))
    server.advance(0.5)
    assert [dict(answer)["CB"] for answer in pos.answers()] == amounts


def test_a_thousand_requests_in_one_segment_get_a_thousand_answers_in_order(caplog):
    """Answering and reading the next request are a loop, not a recursion (RecursionError at 246 before)."""
    server = InProcessTerminal()
    amounts = [f"{n:04d}" for n in range(1000)]
    pos = server.connect()
    with caplog.at_level(logging.WARNING):
        pos.send(b"".join(with_amount(amount) for amount in amounts))
    assert [dict(answer)["CB"] for answer in pos.answers()] == amounts
    assert [entry["answer"] is not None for entry in server.entries()] == [True] * 1000
    assert caplog.records == []
    assert pos.transport.producerState == "producing"


def test_hundreds_of_bare_version_records_are_each_answered_af_09(caplog):
    server = InProcessTerminal()
    pos = server.connect()
    with caplog.at_level(logging.WARNING):
        pos.send(b"CZ0040300" * 246)
        server.advance(0.2)  # the last one waits the assembly time: no CZ follows it
    assert [encode(answer) for answer in pos.answers()] == [b"CZ0040300" + AF_09] * 246
    assert caplog.records == []


def test_reading_pauses_while_too_many_requests_wait_and_resumes_below():
    server = InProcessTerminal(duration=1)
    pos = server.connect()
    pos.send(REQUEST * (MAX_PIPELINED + 4))
    assert pos.transport.producerState == "paused"
    server.advance(1)
    assert len(pos.answers()) == 1 and pos.transport.producerState == "paused"
    for _ in range(4):
        server.advance(1)
    assert len(pos.answers()) == 5 and pos.transport.producerState == "producing"


def test_a_request_without_its_mandatory_tags_is_answered_after_the_assembly_time():
    server = InProcessTerminal(Limits(assembly_time=0.05))
    pos = server.connect()
    pos.send(INCOMPLETE)
    server.advance(0.04)
    assert pos.received == b""
    server.advance(0.01)
    assert pos.fields()["AF"] == "09"


def test_each_new_record_restarts_the_assembly_time():
    server = InProcessTerminal(Limits(assembly_time=0.2))
    pos = server.connect()
    pos.send(INCOMPLETE)
    server.advance(0.15)
    pos.send(b"CH005REF42")
    server.advance(0.15)
    assert pos.received == b""
    pos.send(b"CB00511245")
    assert pos.fields()["AE"] == "10"


def test_the_assembly_timer_never_judges_before_bytes_already_received_are_read():
    """After a stall, the timer and the rest of the request are due in the same reactor turn: the timer fires
    first, as Twisted runs timers before reading; the request must still be judged whole, once, with AE=10."""
    server = InProcessTerminal(Limits(assembly_time=0.2))
    pos = server.connect()
    pos.send(INCOMPLETE)  # arms the assembly timer
    server.clock.callLater(0.2, pos.send, REQUEST[len(INCOMPLETE) :])  # read in the turn the timer fires
    server.advance(0.2)
    assert [dict(answer)["AE"] for answer in pos.answers()] == ["10"]
    assert len(server.entries()) == 1


def test_a_request_not_whole_within_the_request_timeout_gets_af_09_and_the_line_closes(caplog):
    """A POS dribbling a byte just under every --idle-timeout no longer holds the connection for ever."""
    server = InProcessTerminal(Limits(idle_timeout=10, request_timeout=30))
    pos = server.connect()
    pos.send(REQUEST[:10])  # mid-record from now on: the assembly time never applies
    for byte in range(10, 13):
        server.advance(9)
        pos.send(REQUEST[byte : byte + 1])
    server.advance(2.9)
    assert pos.received == b"" and not pos.closed  # 30 s after the first byte, not before
    server.advance(0.1)
    assert pos.received == b"CZ0040300" + AF_09 and pos.closed
    (entry,) = server.entries()
    assert entry["request"] == "CZ0040300" and "--request-timeout" in entry["outcome"]
    assert ": timed out: not whole after 30 s (--request-timeout) (AF=09)" in caplog.text


def test_a_slow_request_within_the_request_timeout_is_answered_and_each_request_has_its_own():
    server = InProcessTerminal(Limits(idle_timeout=10, request_timeout=30))
    pos = server.connect()
    for _ in range(3):  # 3 requests of 25 s each, cut mid-record: 75 s on one connection
        for start in range(0, len(REQUEST), 7):
            pos.send(REQUEST[start : start + 7])
            server.advance(2.5)
    assert [dict(answer)["AE"] for answer in pos.answers()] == ["10"] * 3 and not pos.closed


@pytest.mark.parametrize(
    "data",
    [REQUEST, INCOMPLETE, REQUEST + REQUEST, REQUEST[:-10] + b"CC00300C" + REQUEST[-10:]],
    ids=["whole", "incomplete", "two", "check"],
)
def test_a_pos_that_shuts_its_side_down_gets_every_answer_then_eof(data):
    server = InProcessTerminal(duration=0.2)
    pos = server.connect()
    pos.send(data)
    pos.shutdown_write()
    server.advance(0.2 * data.count(b"CZ"))
    statuses = [dict(answer)["AE"] for answer in pos.answers()]
    assert statuses == (["01"] if data.count(b"CB") == 0 else ["10"] * data.count(b"CZ"))
    assert pos.closed


def test_a_pos_that_shuts_its_side_down_with_nothing_pending_is_closed():
    server = InProcessTerminal()
    pos = server.exchange()
    pos.shutdown_write()
    server.advance(0)
    assert pos.transport.disconnected and server.factory.active == 0


def test_when_the_terminal_cannot_write_any_more_it_closes():
    server = InProcessTerminal(duration=1)
    pos = server.connect()
    pos.send(REQUEST)
    pos.connection.writeConnectionLost()
    assert pos.closed


@pytest.mark.parametrize(
    ("data", "echo"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"CZ0040300"),
        (b"\xff\xfe\x00\x01", b"CZ0040300"),
        (REQUEST[:20] + b"\xe9" + REQUEST[21:], b"CZ0040300"),
        (b"CZ0040300CJ0x2012345678901", b"CZ0040300"),
        (b"CZ0040300CJ000", b"CZ0040300"),
        (REQUEST + b"\r\n", REQUEST),
        (REQUEST + b"\n", REQUEST),
    ],
)
def test_malformed_input_gets_af_09_then_the_connection_closes(data, echo):
    server = InProcessTerminal()
    pos = server.connect()
    pos.send(data)
    assert pos.received == echo + AF_09 and pos.closed
    assert server.exchange().fields()["AE"] == "10"  # everybody else is still served


def test_requests_before_a_malformed_byte_are_answered_first():
    server = InProcessTerminal()
    pos = server.connect()
    pos.send(REQUEST + CHECK_REQUEST + b"\xff")
    assert pos.received == REQUEST + pos.received[len(REQUEST) : -len(CHECK_REQUEST + AF_09)] + CHECK_REQUEST + AF_09
    assert [entry["outcome"].split(":")[0] for entry in server.entries()] == ["answer", "malformed"]


def test_malformed_and_busy_answers_follow_the_echo_rule_of_every_answer():
    """The profile's CZ, and no CK (answers carry CK only inside ZT)."""
    with_ck = REQUEST + b"CK0010"
    server = InProcessTerminal(Limits(busy="refuse"), profile="payxpert", duration=1)
    first, second, third = server.connect(), server.connect(), server.connect()
    first.send(REQUEST)
    second.send(with_ck)
    third.send(with_ck + b"\r\n")
    for pos in (second, third):
        (answer,) = pos.answers()
        assert answer[0] == ("CZ", "0320") and "CK" not in dict(answer)


def test_a_100_kb_blob_is_refused_and_the_server_keeps_serving():
    server = InProcessTerminal()
    pos = server.connect()
    pos.send(b"CZ0040300" + (b"CF999" + b"x" * 999) * 100)
    assert pos.received == encode([("CZ", "0300"), ("CF", "x" * 999), ("AE", "01"), ("AF", "09")]) and pos.closed
    assert server.exchange().fields()["AE"] == "10"


def test_max_message_size_is_configurable():
    pos = InProcessTerminal(Limits(max_message_size=60)).exchange()
    assert pos.received.endswith(AF_09) and pos.closed


# -- connections: the limit, idle ones, many at once, leaving early


def test_connections_over_the_limit_are_closed_at_once(caplog):
    server = InProcessTerminal(Limits(max_connections=2))
    first, second = server.connect(), server.connect()
    third = server.connect()
    assert third.transport.aborted and third.received == b""
    assert server.factory.active == 2
    server.advance(0)
    first.send(REQUEST)
    assert first.fields()["AE"] == "10"
    assert "refused: already 2 connections" in caplog.text
    second.reset()
    fourth = server.connect()
    assert not fourth.closed


def test_idle_connections_are_closed():
    server = InProcessTerminal(Limits(idle_timeout=0.2))
    pos = server.connect()
    pos.send(REQUEST)
    assert not pos.closed
    server.advance(0.15)
    assert not pos.closed
    server.advance(0.15)
    assert pos.closed and pos.fields()["AE"] == "10"
    server.advance(0)
    assert server.factory.active == 0


def test_an_answer_being_prepared_outlasts_the_idle_timeout():
    server = InProcessTerminal(Limits(idle_timeout=0.1), duration=0.5)
    pos = server.connect()
    pos.send(REQUEST)
    for _ in range(4):
        server.advance(0.1)
        assert not pos.closed
    server.advance(0.1)
    assert pos.fields()["AE"] == "10"


def test_fifty_pos_waiting_one_second_are_answered_together():
    server = InProcessTerminal(duration=1)
    everyone = [server.connect() for _ in range(50)]
    for pos in everyone:
        pos.send(REQUEST)
    server.advance(0.99)
    assert [pos.received for pos in everyone] == [b""] * 50
    server.advance(0.01)
    assert [pos.fields()["AE"] for pos in everyone] == ["10"] * 50


def test_a_pos_leaving_before_its_answer_harms_nobody():
    server = InProcessTerminal(duration=0.2)
    leaving, mid_record = server.connect(), server.connect()
    leaving.send(REQUEST)
    leaving.reset()
    mid_record.send(REQUEST[:30])
    mid_record.reset()
    server.advance(1)
    assert server.exchange().fields()["AE"] == "10"
    assert server.factory.active == 1  # the last POS, which keeps its line


def test_a_request_whose_pos_resets_before_its_delayed_answer_is_journaled():
    server = InProcessTerminal(duration=3)
    pos = server.connect()
    pos.send(REQUEST)
    server.advance(1)
    pos.reset()
    server.advance(5)
    (entry,) = server.entries()
    assert entry["request"] == REQUEST.decode() and entry["answer"] is None
    assert entry["outcome"] == "left before the answer (answer)"
    assert pos.received == b""


def test_every_request_received_whole_is_journaled_whatever_the_pos_does_next():
    server = InProcessTerminal(Limits(busy="queue"), duration=3)
    first, queued, pipelined = server.connect(), server.connect(), server.connect()
    first.send(REQUEST)  # holds the terminal for 3 s
    queued.send(with_amount("1000"))
    pipelined.send(with_amount("2000"))
    server.advance(1)
    assert queued.connection.phase is Phase.QUEUED
    queued.reset()
    first.send(with_amount("3000") + with_amount("4000"))  # pipelined behind the first, never read
    first.reset()
    server.advance(10)
    journaled = {(entry["request"][-4:], entry["answer"] is None, entry["outcome"]) for entry in server.entries()}
    assert journaled == {
        ("1245", True, "left before the answer (answer)"),
        ("1000", True, "left before the answer (not planned yet)"),
        ("3000", True, "left before the answer (not planned yet)"),
        ("4000", True, "left before the answer (not planned yet)"),
        ("2000", False, "answer"),  # the terminal went to the next POS in the queue
    }
    assert dict(pipelined.answers()[0])["CB"] == "2000"


def test_a_fin_before_the_delayed_answer_still_gets_the_answer_and_the_journal_row():
    server = InProcessTerminal(duration=3)
    pos = server.connect()
    pos.send(REQUEST)
    pos.shutdown_write()
    server.advance(3)
    assert pos.fields()["AE"] == "10" and pos.closed
    (entry,) = server.entries()
    assert entry["answer"] is not None


# -- the field as it is (issue 8): answer shapes that need the connection, the older serial protocol, closing


def test_crlf_sends_the_answer_then_cr_lf():
    server = InProcessTerminal(outcome=parse("crlf"))
    pos = server.exchange()
    assert pos.received.endswith(b"CG006424242\r\n") and decode(pos.received[:-2])[-1][0] == "CG"


@pytest.mark.parametrize("ba", [b"BA0010", b"BA0011"])
def test_pending_sends_ae_11_at_once_then_the_final_answer_after_the_delay(ba):
    server = InProcessTerminal(duration=2, outcome=parse("pending"))
    pos = server.connect()
    pos.send(REQUEST.replace(b"BA0010", ba))
    assert pos.received == REQUEST.replace(b"BA0010", ba) + b"AE00211"  # taken into account, whatever BA said
    server.advance(2)
    interim, final = pos.answers()
    assert dict(interim)["AE"] == "11" and dict(final)["AE"] == "10" and dict(final)["AC"]
    (entry,) = server.entries()
    assert entry["answer"].endswith(encode(final).decode()) and "AE00211" in entry["answer"]


def test_pending_sends_no_interim_for_a_request_refused_at_once():
    pos = InProcessTerminal(duration=2, outcome=parse("pending")).exchange(INCOMPLETE + b"CB00511245CD0019")
    assert [dict(answer)["AE"] for answer in pos.answers()] == ["01"]


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"\x0201" + b"00011245" + b"01" + b"0" + b"978" + b" " * 10 + b"A010B010\x03\x15", "STX, fixed fields"),
        (b"\x02" + REQUEST + b"\x03A", "STX, TLV records"),
        (b"\x05", "handshake (ENQ)"),
    ],
)
def test_the_older_serial_protocol_is_named_in_the_log_and_the_line_closed(caplog, data, what):
    server = InProcessTerminal()
    pos = server.connect()
    with caplog.at_level(logging.WARNING, logger="caisse_ap_ip"):
        pos.send(data)
    assert pos.received == b"" and pos.closed
    (line,) = caplog.messages
    assert what in line and "Concert V2" in line and "not Caisse-AP over IP" in line
    assert "Concert V2" in server.entries()[0]["outcome"]
    assert server.exchange().fields()["AE"] == "10"  # the next POS is served


def test_a_profile_whose_terminals_close_after_the_answer_closes_it():
    pos = InProcessTerminal(profile="ingenico").exchange()
    assert pos.fields()["AE"] == "10" and pos.closed


def test_after_answer_n_seconds_overrides_the_profile():
    server = InProcessTerminal(Limits(after_answer=5), profile="ingenico")
    pos = server.exchange(seconds=1)
    assert pos.fields()["AE"] == "10" and not pos.closed
    server.advance(4)
    assert pos.closed


def test_a_pos_leaving_during_a_pending_transaction_is_journaled_with_the_interim_it_got():
    server = InProcessTerminal(duration=5, outcome=parse("pending"))
    pos = server.connect()
    pos.send(REQUEST)
    server.advance(1)
    pos.reset()
    server.advance(0)
    (entry,) = server.entries()
    assert entry["answer"] == (REQUEST + b"AE00211").decode() and "interim AE=11 sent" in entry["outcome"]


def test_many_requests_then_a_half_close_get_every_answer_before_the_close(fast_server):
    """Over a real socket: answers still in the transport's buffer at EOF must leave before the close."""
    with fast_server.connect() as sock:
        sock.sendall(REQUEST * 300)
        sock.shutdown(socket.SHUT_WR)
        received = read_until_closed(sock)
    assert received.count(b"AE00210") == 300 and received.startswith(REQUEST)


def test_half_closes_are_taken_whatever_the_phase():
    pos = InProcessTerminal().exchange()
    assert IHalfCloseableProtocol(pos.connection, None) is pos.connection
