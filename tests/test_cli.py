"""Both scripts end to end, as a person or a shell script in CI runs them."""

import json
import socket
import subprocess
import sys

import pytest
from helpers import CLIENT_SCRIPT, REQUEST, WAIT, answering, client, fake_terminal, read_request


def test_success_exits_0_and_explains_every_tag(fast_server):
    result = client("-p", str(fast_server.port))
    assert result.returncode == 0, result.stderr
    assert "CB  amount                             11245  (112.45 EUR)" in result.stdout
    assert "AE  action status                      10  (operation performed)" in result.stdout
    assert "CC  payment application                001  (CB/Visa/Mastercard contact)" in result.stdout
    assert "CI  card read mode                     1  (contact (chip))" in result.stdout
    assert result.stdout.rstrip().endswith("result: success")


@pytest.mark.parametrize(
    ("failure_type", "explanation"),
    [
        ("abandon", "failure: not performed: operator abandon (AF=11)"),
        ("timeout", "failure: not performed: input time-out (AF=08)"),
        ("refused", "failure: refused (AF=04)"),
        ("forbidden", "failure: forbidden (AF=05)"),
    ],
)
def test_each_failure_exits_1_with_its_meaning(terminal_server, failure_type, explanation):
    server = terminal_server("-d", "0", "-f", "-ft", failure_type)
    result = client("--destination", "127.0.0.1", "--port", str(server.port))
    assert result.returncode == 1
    assert result.stdout.rstrip().endswith(f"result: {explanation}")


def test_check_refund_and_other_currencies_with_the_original_short_options(fast_server):
    port = str(fast_server.port)
    check = client("-d", "127.0.0.1", "-p", port, "-a", "45", "-ck", "-l", "warn")
    assert check.returncode == 0 and "CC  payment application                00C  (cheque)" in check.stdout
    refund = client("-p", port, "-a", "-20")
    assert refund.returncode == 0 and "CD  action type                        1  (credit (refund))" in refund.stdout
    yen = client("-p", port, "-a", "1500", "-c", "jpy")
    assert yen.returncode == 0 and "CB  amount                             1500  (1500 JPY)" in yen.stdout


def test_json_output_for_scripts(terminal_server):
    server = terminal_server("-d", "0", "-f", "-ft", "refused")
    result = client("-p", str(server.port), "-a", "12.30", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    answer = {record["tag"]: record for record in report["answer"]["records"]}
    assert report["request"]["frame"] == "CZ0040300CJ012012345678901CA00201CE003978BA0010CD0010CB0041230"
    assert answer["AF"] == {"tag": "AF", "name": "status complement", "value": "04", "meaning": "refused"}
    assert answer["CB"]["meaning"] == "12.30 EUR"
    assert (report["result"], report["exit_code"], report["error"]) == ("failure: refused (AF=04)", 1, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-a", "0"], "amount must not be zero"),
        (["-a", "1.001"], "more decimals than EUR allows"),
        (["-a", "1.5", "-c", "JPY"], "more decimals than JPY allows"),
        (["-a", "10000000000"], "exceeds the protocol maximum"),
        (["-a", "ten"], "is not a number"),
        (["-c", "EURO"], "unknown currency 'EURO'"),
        (["--timeout", "0"], "must be a finite number > 0"),
        (["--bogus"], "unrecognized arguments"),
        (["--ticket", "customer", "--ticket-out", "/nonexistent/x.txt"], "no folder /nonexistent"),
        (["--ticket", "customer", "--ticket-out", "/"], "/ is a folder"),
    ],
)
def test_usage_errors_exit_2_and_send_nothing(args, message):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        result = client("-p", str(listener.getsockname()[1]), *args)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_connection_refused_exits_3():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        result = client("-p", str(port))
        as_json = client("-p", str(port), "--json")
    assert result.returncode == 3
    assert (
        result.stderr.strip()
        == f"caisse-ap-ip-client: connection refused by 127.0.0.1:{port}: is the terminal listening?"
    )
    assert as_json.returncode == 3
    assert json.loads(as_json.stdout)["error"].startswith("connection refused")


def test_a_silent_terminal_exits_3_after_the_timeout():
    with fake_terminal(answering([], then_close=False, linger=5)) as port:
        result = client("-p", str(port), "--timeout", "0.3")
    assert result.returncode == 3
    assert "no complete answer" in result.stderr and "within 0.3 s" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_malformed_answer_exits_3():
    with fake_terminal(answering([b"CZ0040300AE0"])) as port:
        result = client("-p", str(port))
    assert result.returncode == 3
    assert "malformed answer" in result.stderr and "truncated record at byte 12" in result.stderr


def test_an_answer_without_status_exits_3():
    with fake_terminal(answering([b"CZ0040300CA00201"])) as port:
        result = client("-p", str(port), "--json")
    assert result.returncode == 3
    assert "no status (AE missing)" in result.stderr
    assert json.loads(result.stdout)["answer"]["frame"] == "CZ0040300CA00201"


def test_an_immediate_acknowledgement_exits_4():
    with fake_terminal(answering([b"CZ0040300CA00201CD0010AE00211"])) as port:
        result = client("-p", str(port))
    assert result.returncode == 4
    assert "result: acknowledged" in result.stdout


def test_echo_mismatches_are_warned_about():
    wrong = b"CZ0040300CA00202CE003978CD0010CB00511245AE00210"
    with fake_terminal(answering([wrong])) as port:
        result = client("-p", str(port))
    assert result.returncode == 0
    assert "warning: CA answered '02', sent '01'" in result.stdout


def test_both_scripts_report_their_version():
    for script in ("caisse-ap-ip-client.py", "caisse-ap-ip-server.py"):
        result = subprocess.run(
            [sys.executable, str(CLIENT_SCRIPT.parent / script), "--version"],
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert result.returncode == 0 and result.stdout.split()[-1].count(".") == 2


ECHO = REQUEST
CARD = b"CC003001CI0011AC006583014AA016497010######4127AI014A0000000421010AB0042612CF0101010000000CG006424242"


def test_a_partial_authorisation_exits_5_and_says_how_much():
    partial = ECHO.replace(b"CB00511245", b"CB0041000") + b"AE00210" + CARD
    with fake_terminal(answering([partial])) as port:
        result = client("-p", str(port))
    with fake_terminal(answering([partial])) as port:
        as_json = json.loads(client("-p", str(port), "--json").stdout)
    assert result.returncode == 5
    assert "result: success: partial authorisation 10.00 of 112.45 EUR" in result.stdout
    assert "warning" not in result.stdout  # a lower CB is the partial authorisation, not a wrong echo
    assert as_json["partial"] == {"authorised": "10.00", "requested": "112.45", "currency": "EUR"}
    assert as_json["exit_code"] == 5


def test_an_extended_af_is_read_by_its_code_and_its_cb2a_fields_shown():
    extended = ECHO + b"AE00201AF029" + b"0451" + b"SOLDE INSUFFISANT".ljust(21) + b"  02"
    with fake_terminal(answering([extended])) as port:
        result = client("-p", str(port))
    with fake_terminal(answering([extended])) as port:
        as_json = json.loads(client("-p", str(port), "--json").stdout)
    assert result.returncode == 1
    assert "result: failure: refused (AF=04)" in result.stdout
    assert "authorisation response code (CB2A field 39) '51'" in result.stdout
    assert "message for the initiator (CB2A field 44-BC) 'SOLDE INSUFFISANT'" in result.stdout
    assert as_json["answer"]["af"]["fields"]["non_completion"] == "02"


def test_stray_bytes_after_a_good_answer_are_a_warning_not_an_error():
    with fake_terminal(answering([ECHO + b"AE00210" + CARD + b"\r\n"], then_close=False)) as port:
        result = client("-p", str(port), "--json", "--quiet-time", "30")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["trailing"] == "\\r\\n"
    assert report["warnings"] == ["2 stray bytes after the answer: \\r\\n"]


def test_the_interim_answer_is_shown_and_the_final_one_decides():
    with fake_terminal(answering([ECHO + b"AE00211", ECHO + b"AE00201AF00204"], pause=0.05)) as port:
        result = client("-p", str(port))
    with fake_terminal(answering([ECHO + b"AE00211", ECHO + b"AE00201AF00204"], pause=0.05)) as port:
        as_json = json.loads(client("-p", str(port), "--json").stdout)
    assert result.returncode == 1
    assert f"interim answer: {(ECHO + b'AE00211').decode()}" in result.stdout
    assert as_json["interim"]["frame"].endswith("AE00211") and as_json["answer"]["frame"].endswith("AF00204")


def test_wait_final_reads_past_the_acknowledgement_of_an_immediate_request():
    immediate = ECHO.replace(b"BA0010", b"BA0011")
    with fake_terminal(answering([immediate + b"AE00211", immediate + b"AE00210" + CARD], pause=0.05)) as port:
        result = client("-p", str(port), "--immediate", "--wait-final")
    assert result.returncode == 0 and "result: success" in result.stdout


def test_a_waiting_line_on_a_terminal_while_the_customer_decides():
    import os
    import pty
    import threading

    go = threading.Event()

    def slow_customer(conn):
        read_request(conn)
        go.wait(WAIT)
        conn.sendall(ECHO + b"AE00210" + CARD)

    master, slave = pty.openpty()
    with fake_terminal(slow_customer) as port:
        process = subprocess.Popen(
            [sys.executable, str(CLIENT_SCRIPT), "-p", str(port)], stdout=subprocess.PIPE, stderr=slave, text=True
        )
        os.close(slave)
        seen = b""
        while b"waiting for the terminal... 1 s" not in seen:
            seen += os.read(master, 1024)
        go.set()
        out, _ = process.communicate(timeout=WAIT)
    os.close(master)
    assert process.returncode == 0 and "result: success" in out
    assert "waiting" not in out  # stdout stays clean for scripts


@pytest.mark.parametrize(
    ("argv", "tty", "shown"),
    [([], True, True), (["--json"], True, False), (["-l", "warn"], True, False), ([], False, False)],
)
def test_the_waiting_line_only_on_a_terminal_and_never_for_scripts(monkeypatch, argv, tty, shown):
    from caisse_ap_ip import client_cli

    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    args = client_cli.build_parser().parse_args(argv)
    assert (client_cli._progress_line(args) is not None) == shown
