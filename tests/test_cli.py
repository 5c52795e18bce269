"""Both scripts end to end, as a person or a shell script in CI runs them."""

import json
import socket
import subprocess
import sys

import pytest
from helpers import CLIENT_SCRIPT, WAIT, answering, client, fake_terminal


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
        (["--timeout", "0"], "must be > 0"),
        (["--bogus"], "unrecognized arguments"),
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
