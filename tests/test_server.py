"""The server as a user runs it: a subprocess on an ephemeral port, spoken to with raw sockets."""

import contextlib
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import REQUEST, SERVER_SCRIPT, WAIT, ServerProcess, read_answers, read_until_closed

from caisse_ap_ip.protocol import FrameDecoder, decode, encode

CHECK_REQUEST = REQUEST + b"CC00300C"


def answer_to(server, data: bytes) -> dict:
    with server.connect() as sock:
        sock.sendall(data)
        return dict(read_answers(sock)[0])


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
    import signal

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
    import signal

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
    assert answer_to(server, REQUEST)["AF"] == "04"


@pytest.mark.parametrize(
    ("payment_type", "cc", "ci"),
    [
        ("cbcontact", "001", "1"),
        ("cbcontactless", "00B", "2"),
        ("amexcontact", "002", "1"),
        ("amexcontactless", "00D", "2"),
    ],
)
def test_payment_type_and_seller_contract(terminal_server, payment_type, cc, ci):
    server = terminal_server("-d", "0", "--payment-type", payment_type, "-sc", "C0NTRACT42")
    fields = answer_to(server, REQUEST)
    assert (fields["AE"], fields["CC"], fields["CI"], fields["CG"]) == ("10", cc, ci, "C0NTRACT42")


@pytest.mark.parametrize(
    ("failure_type", "af"), [("abandon", "11"), ("timeout", "08"), ("refused", "04"), ("forbidden", "05")]
)
def test_failure_types(terminal_server, failure_type, af):
    server = terminal_server("-d", "0", "--failure", "--failure-type", failure_type)
    with server.connect() as sock:
        sock.sendall(REQUEST)
        assert encode(read_answers(sock)[0]) == REQUEST + b"AE00201AF002" + af.encode()
        sock.sendall(CHECK_REQUEST)
        assert encode(read_answers(sock)[0]) == CHECK_REQUEST + b"AE00201AF00204"


def test_failure_defaults_to_abandon(terminal_server):
    assert answer_to(terminal_server("-d", "0", "-f"), REQUEST)["AF"] == "11"


def test_check_success_has_no_card_data(fast_server):
    with fast_server.connect() as sock:
        sock.sendall(CHECK_REQUEST)
        assert encode(read_answers(sock)[0]) == CHECK_REQUEST + b"AE00210"


def test_missing_mandatory_tag_gets_ae_01_af_09_in_success_mode(terminal_server):
    server = terminal_server("-d", "5", "--assembly-time", "0.05")
    no_cj = b"CZ0040300CA00201CE003978CD0010CB00511245"
    started = time.monotonic()
    assert encode([*answer_to(server, no_cj).items()]) == no_cj + b"AE00201AF00209"
    assert time.monotonic() - started < 5  # answered without the 5 s customer delay


def test_unknown_action_gets_af_12(fast_server):
    assert answer_to(fast_server, REQUEST.replace(b"CD0010", b"CD0019"))["AF"] == "12"


def test_immediate_mode_answers_ae_11_without_waiting(terminal_server):
    server = terminal_server("-d", "5")
    immediate = REQUEST.replace(b"BA0010", b"BA0011")
    with server.connect() as sock:
        sock.sendall(immediate)
        assert encode(read_answers(sock)[0]) == immediate + b"AE00211"


@pytest.mark.parametrize("piece", [1, 2, 7, 10])
def test_a_request_in_small_pieces_is_answered_once_whole(fast_server, piece):
    with fast_server.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for start in range(0, len(REQUEST), piece):
            sock.sendall(REQUEST[start : start + piece])
        answer = read_answers(sock)[0]
    assert encode(answer).startswith(REQUEST + b"AE00210")


def test_optional_records_arriving_after_the_mandatory_ones_still_belong_to_the_request(terminal_server):
    server = terminal_server("-d", "1")
    with server.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(REQUEST)
        sock.sendall(b"CC00300C")
        assert encode(read_answers(sock)[0]) == CHECK_REQUEST + b"AE00210"


def test_two_requests_in_one_segment_get_two_answers_in_order(fast_server):
    refund = REQUEST.replace(b"CD0010", b"CD0011")
    with fast_server.connect() as sock:
        sock.sendall(REQUEST + refund)
        first, second = read_answers(sock, 2)
    assert (dict(first)["CD"], dict(second)["CD"]) == ("0", "1")


def test_further_requests_on_the_same_connection_are_answered(fast_server):
    with fast_server.connect() as sock:
        for amount in (b"CB00511245", b"CB0041000", b"CB00205"):
            sock.sendall(REQUEST.replace(b"CB00511245", amount))
            assert dict(read_answers(sock)[0])["CB"] == amount[5:].decode()


@pytest.mark.parametrize("duration", ["0", "0.01"])
def test_many_pipelined_requests_are_all_answered_in_order(terminal_server, duration):
    server = terminal_server("-d", duration)
    amounts = [f"{n:04d}" for n in range(1, 41)]
    with server.connect() as sock:
        sock.sendall(b"".join(REQUEST.replace(b"CB00511245", b"CB004" + a.encode()) for a in amounts))
        answers = read_answers(sock, len(amounts))
    assert [dict(answer)["CB"] for answer in answers] == amounts


@pytest.mark.parametrize(
    "data",
    [REQUEST, REQUEST[: REQUEST.index(b"CB")], REQUEST + REQUEST, REQUEST[:-10] + b"CC00300C" + REQUEST[-10:]],
    ids=["whole", "incomplete", "two", "check"],
)
def test_a_pos_that_shuts_its_side_down_gets_every_answer_then_eof(terminal_server, data):
    server = terminal_server("-d", "0.2")
    with server.connect() as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = read_until_closed(sock)
    messages = list(FrameDecoder().feed(received + b"CZ0040300"))
    assert [dict(m)["AE"] for m in messages] == (["01"] if data.count(b"CB") == 0 else ["10"] * data.count(b"CZ"))


def test_an_answer_being_prepared_outlasts_the_idle_timeout(terminal_server):
    server = terminal_server("-d", "0.5", "--idle-timeout", "0.1")
    assert answer_to(server, REQUEST)["AE"] == "10"


def test_each_answer_leaves_in_one_piece_for_a_single_recv(fast_server):
    with fast_server.connect() as sock:
        sock.sendall(REQUEST)
        data = sock.recv(1024)  # what the released Odoo POS module does
    assert decode(data)[-1][0] == "CG"


def test_a_request_without_its_mandatory_tags_is_answered_after_the_assembly_time(terminal_server):
    server = terminal_server("-d", "0", "--assembly-time", "0.05")
    truncated = REQUEST[: REQUEST.index(b"CB")]
    assert answer_to(server, truncated)["AF"] == "09"


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
def test_malformed_input_gets_af_09_then_the_connection_closes(fast_server, data, echo):
    with fast_server.connect() as sock:
        sock.sendall(data)
        assert read_until_closed(sock) == echo + b"AE00201AF00209"
    assert answer_to(fast_server, REQUEST)["AE"] == "10"  # everybody else is still served


def test_a_100_kb_blob_is_refused_and_the_server_keeps_serving(fast_server):
    blob = b"CZ0040300" + (b"CF999" + b"x" * 999) * 100
    with fast_server.connect() as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(blob)  # the server may close before the whole blob is written
        try:
            received = read_until_closed(sock)
        except ConnectionResetError:
            received = b""
    assert received in (b"", encode([("CZ", "0300"), ("CF", "x" * 999), ("AE", "01"), ("AF", "09")]))
    assert answer_to(fast_server, REQUEST)["AE"] == "10"


def test_max_message_size_is_configurable(terminal_server):
    server = terminal_server("-d", "0", "--max-message-size", "60")
    with server.connect() as sock:
        sock.sendall(REQUEST)
        assert read_until_closed(sock).endswith(b"AE00201AF00209")


def test_connections_over_the_limit_are_closed_at_once(terminal_server):
    server = terminal_server("-d", "0", "--max-connections", "2")
    first, second = server.connect(), server.connect()
    with first, second:
        for sock in (first, second):  # make sure both are accepted before the third arrives
            sock.sendall(REQUEST)
            read_answers(sock)
        with server.connect() as third, contextlib.suppress(ConnectionResetError):
            assert read_until_closed(third) == b""
    assert "refused: already 2 connections" in server.stderr()


def test_idle_connections_are_closed(terminal_server):
    server = terminal_server("-d", "0", "--idle-timeout", "0.2")
    with server.connect() as sock:
        sock.sendall(REQUEST)
        read_answers(sock)
        assert read_until_closed(sock) == b""


def test_fifty_pos_waiting_one_second_are_answered_together(terminal_server):
    server = terminal_server("-d", "1")

    def pay(_):
        with server.connect() as sock:
            sock.sendall(REQUEST)
            return dict(read_answers(sock)[0])["AE"]

    started = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(pay, range(50)))
    assert statuses == ["10"] * 50
    assert time.monotonic() - started < 10  # a blocking delay would take 50 s


def test_a_pos_leaving_before_its_answer_harms_nobody(terminal_server):
    server = terminal_server("-d", "0.2")
    with server.connect() as sock:
        sock.sendall(REQUEST)
    with server.connect() as sock:
        sock.sendall(REQUEST[:30])  # and one leaving mid-record
    assert answer_to(server, REQUEST)["AE"] == "10"
    assert "Traceback" not in server.stderr()


def test_debug_logs_every_transaction_tag_by_tag(terminal_server):
    server = terminal_server("-d", "0", "-l", "debug")
    answer_to(server, REQUEST)
    log = server.stderr()
    assert "debit 112.45 EUR -> success" in log
    assert "AE  action status" in log


def test_info_logs_no_line_per_transaction_but_anomalies(terminal_server):
    server = terminal_server("-d", "0", "-l", "info")
    answer_to(server, REQUEST)
    with server.connect() as sock:
        sock.sendall(b"\xff")
        read_until_closed(sock)
    log = server.stderr()
    assert "terminal ready: success (cbcontact) after 0 s, contract 424242" in log
    assert "debit 112.45 EUR" not in log
    assert "malformed request (non-ASCII byte at byte 0): answered AF=09 and closed" in log
