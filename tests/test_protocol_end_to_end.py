"""The whole protocol through both scripts: every client action against the server, and the server's new options."""

import json
import socket
import subprocess
import sys
import threading

import pytest
from helpers import REQUEST, SERVER_SCRIPT, WAIT, ServerProcess, client, fake_terminal, read_answers

from caisse_ap_ip.client import build_request
from caisse_ap_ip.codes import ACTION_CODES
from caisse_ap_ip.protocol import encode


def run_json(port, *args) -> tuple[int, dict]:
    result = client("-p", str(port), "--json", *args)
    return result.returncode, json.loads(result.stdout)


def answer_tags(report) -> dict[str, str]:
    return {record["tag"]: record["value"] for record in report["answer"]["records"]}


@pytest.fixture(scope="module")
def shop_terminal():
    server = ServerProcess("-d", "0", "--seed", "3", "--clock", "2026-03-14T10:42:17")
    yield server
    server.stop()


@pytest.mark.parametrize("action", [a for a in ACTION_CODES if a not in ("cancel", "duplicate", "status")])
def test_every_action_the_client_sends_is_understood(shop_terminal, action):
    code, report = run_json(shop_terminal.port, "--action", action)
    assert code == 0, report
    assert answer_tags(report)["CD"] == ACTION_CODES[action]


def test_cancel_duplicate_and_status_after_a_debit(shop_terminal):
    port = shop_terminal.port
    assert run_json(port, "-a", "31.40", "--reference", "T-1")[0] == 0
    code, report = run_json(port, "--action", "status")
    assert code == 0 and answer_tags(report)["CB"] == "3140"
    code, report = run_json(port, "--action", "duplicate", "--ticket", "both")
    assert code == 0 and [t["meaning"] for t in report["answer"]["tickets"]] == [
        "customer ticket, text",
        "merchant ticket, text",
    ]
    assert all("DUPLICATA" in t["text"] and "31,40 EUR" in t["text"] for t in report["answer"]["tickets"])
    assert run_json(port, "--action", "cancel", "-a", "31.40", "--reference", "T-2")[0] == 1
    code, report = run_json(port, "--action", "cancel", "-a", "31.40", "--reference", "T-1")
    assert code == 0 and answer_tags(report)["CD"] == "2"


def test_tickets_are_shown_and_saved(shop_terminal, tmp_path):
    out = tmp_path / "tickets.txt"
    result = client("-p", str(shop_terminal.port), "--ticket", "customer", "--ticket-out", str(out))
    assert result.returncode == 0
    assert "ticket 1 (customer ticket, text):\n  | CARTE BANCAIRE\n" in result.stdout
    assert "  | LE 14/03/26 A 10:42:17\n" in result.stdout
    assert out.read_text(encoding="utf-8").endswith("TICKET CLIENT\nA CONSERVER\n")


def test_html_tickets(shop_terminal):
    code, report = run_json(shop_terminal.port, "--ticket", "merchant", "--ticket-format", "html")
    assert code == 0
    (ticket,) = report["answer"]["tickets"]
    assert ticket["meaning"] == "merchant ticket, HTML" and ticket["text"].startswith("<html>")


def test_request_options_reach_the_frame(shop_terminal):
    code, report = run_json(
        shop_terminal.port, "--pos-number", "7", "--private-data", "ORDER-42", "--reference", "R1",
        "--protocol-version", "0320", "--tag", "BB=1", "--tag", "CJ=999999999999",
    )  # fmt: skip
    assert code == 0
    frame = report["request"]["frame"]
    assert frame.startswith("CZ0040320CJ012999999999999CA00207") and frame.endswith("CF008ORDER-42CH002R1BB0011")
    assert answer_tags(report)["CF"] == "ORDER-42"


def test_immediate_request_exits_4(shop_terminal):
    result = client("-p", str(shop_terminal.port), "--immediate")
    assert result.returncode == 4 and "AE  action status                      11" in result.stdout


@pytest.mark.parametrize(
    ("frame", "af"),
    [(r"CZ0040300CJ012012345678901CA00201CE003978CD0010CB00511245\r\n", "09"), (r"CZ0040300CD001Q", "12")],
)
def test_raw_frames_test_the_terminal_error_handling(shop_terminal, frame, af):
    code, report = run_json(shop_terminal.port, "--raw", frame)
    assert code == 1 and answer_tags(report)["AF"] == af
    assert report["request"]["frame"] == frame


def test_raw_bytes_are_sent_exactly_as_given():
    received = []

    def record_and_answer(conn):
        conn.settimeout(WAIT)
        received.append(conn.recv(100))
        conn.sendall(b"CZ0040300AE00201AF00209")

    with fake_terminal(record_and_answer) as port:
        result = client("-p", str(port), "--raw", r"CZ004\xe9300\r\n")
    assert received == [b"CZ004\xe9300\r\n"]
    assert result.returncode == 1
    assert "not a valid frame: non-ASCII byte at byte 5" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--action", "pay"], "invalid choice 'pay'"),
        (["--ticket", "all"], "invalid choice 'all'"),
        (["--tag", "cb=1"], "is not XX=VALUE"),
        (["--tag", "CB="], "allowed 1 to 999"),
        (["--pos-number", "123"], "must be 1 or 2 digits"),
        (["--protocol-version", "3"], "must be 4 digits"),
        (["--private-data", "x" * 100], "CF must be 1 to 99"),
        (["--action", "print", "--print-text", "€"], "Latin-1"),
    ],
)
def test_client_usage_errors(args, message):
    result = client("-p", "9", *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


# -- server options


def pay(server, request=REQUEST) -> dict:
    with server.connect() as sock:
        sock.sendall(request)
        return dict(read_answers(sock)[0])


def test_currencies_option(terminal_server):
    only_euro = terminal_server("-d", "0", "--currencies", "eur")
    usd = REQUEST.replace(b"CE003978", b"CE003840")
    assert pay(only_euro, usd)["AF"] == "13"
    assert pay(only_euro)["AE"] == "10"
    several = terminal_server("-d", "0", "--currencies", "EUR,XPF,USD")
    assert pay(several, usd)["AE"] == "10"
    assert pay(several, REQUEST.replace(b"CE003978", b"CE003826"))["AF"] == "13"


def test_bad_currency_list_is_refused_at_start_up():
    result = subprocess.run(
        [sys.executable, str(SERVER_SCRIPT), "--currencies", "EUR,EURO"], capture_output=True, text=True, timeout=WAIT
    )
    assert result.returncode == 2 and "unknown currency 'EURO'" in result.stderr


def test_profile_option(terminal_server):
    fields = pay(terminal_server("-d", "0", "--profile", "payxpert"))
    assert (fields["CZ"], fields["AF"], fields["AL"]) == ("0320", "01", "1")


def test_strict_option(terminal_server):
    one_digit = REQUEST.replace(b"CB00511245", b"CB0015")
    assert pay(terminal_server("-d", "0"), one_digit)["AE"] == "10"
    assert pay(terminal_server("-d", "0", "--strict"), one_digit)["AF"] == "09"


def test_immediate_answer_option(terminal_server):
    immediate = REQUEST.replace(b"BA0010", b"BA0011")
    assert pay(terminal_server("-d", "5", "--immediate-answer", "busy"), immediate)["AF"] == "07"


def test_failure_type_by_code(terminal_server):
    assert pay(terminal_server("-d", "0", "-f", "-ft", "06"))["AF"] == "06"


def test_identification_carries_the_terminal_id(terminal_server):
    server = terminal_server("-d", "0", "--terminal-id", "123412341234")
    assert encode(list(pay(server, b"CZ0040300CJ012012345678901CA00201CD001I").items())) == (
        b"CZ0040301CJ012123412341234CA00201CD001IAE00210"
    )


def test_print_is_logged(terminal_server):
    server = terminal_server("-d", "0", "-l", "info", "--merchant-name", "CAFÉ")
    pay(server, encode(build_request("print", print_text="IMPRESSION DE TEST\n")))
    assert "print: printed:\nIMPRESSION DE TEST" in server.stderr()


def test_the_same_seed_and_clock_give_byte_identical_answers():
    def session() -> list[bytes]:
        server = ServerProcess("-d", "0", "--seed", "7", "--clock", "2026-03-14T10:42:17")
        try:
            with server.connect() as sock:
                answers = []
                for request in (REQUEST + b"CK003120", REQUEST.replace(b"CB00511245", b"CB0041000")):
                    sock.sendall(request)
                    answers.append(encode(read_answers(sock)[0]))
                return answers
        finally:
            server.stop()

    first, second = session(), session()
    assert first == second
    assert b"ZT" in first[0]


def test_concurrent_clients_of_every_action_do_not_disturb_each_other(shop_terminal):
    results = []

    def run(action):
        results.append(run_json(shop_terminal.port, "--action", action)[0])

    threads = [threading.Thread(target=run, args=(a,)) for a in ("debit", "identify", "print", "refund")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert results == [0, 0, 0, 0]


def test_ipv6_destination(terminal_server):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    server = ServerProcess("--host", "::1", "-d", "0")
    try:
        assert client("-d", "::1", "-p", str(server.port)).returncode == 0
    finally:
        server.stop()
