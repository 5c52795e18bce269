"""The control API, as a test suite uses it: over HTTP on loopback, with curl-like requests.

The simulator runs in this process (the thread backend of ``caisse_ap_ip.testing``, the assembly the command
line uses) with its control API on an ephemeral loopback port; subprocesses only for the process's contract.
"""

import contextlib
import socket
import subprocess
import sys
import threading

import pytest
from helpers import REQUEST, SERVER_SCRIPT, WAIT, ServerProcess, call, read_answers, read_until_closed

from caisse_ap_ip.testing import SimulatedTerminal


def connect(server, port=None) -> socket.socket:
    return socket.create_connection((server.host, port or server.port), timeout=WAIT)


@contextlib.contextmanager
def simulator(*options):
    """A simulator in this process, with its control API on an ephemeral loopback port."""
    with SimulatedTerminal("--control-port", "0", *options) as terminal:
        yield terminal


def pay(server, amount=b"CB00511245") -> dict:
    with connect(server) as sock:
        sock.sendall(REQUEST.replace(b"CB00511245", amount))
        return dict(read_answers(sock)[0])


@pytest.fixture(scope="module")
def controlled():
    with simulator("--seed", "1") as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(request):
    if "controlled" in request.fixturenames:
        server = request.getfixturevalue("controlled")
        assert call(server, "POST", "/reset")[0] == 200


def test_health(controlled):
    status, body = call(controlled, "GET", "/health")
    assert status == 200 and body["status"] == "ok" and body["version"].count(".") == 2


def test_settings_change_at_run_time_and_reset_restores_them(controlled):
    status, body = call(controlled, "PATCH", "/settings", {"failure": True, "failure_type": "forbidden"})
    assert status == 200 and (body["failure"], body["failure_type"]) == (True, "forbidden")
    assert pay(controlled)["AF"] == "05"
    call(controlled, "PATCH", "/settings", {"failure": False, "payment_type": "amexcontactless", "profile": "payxpert"})
    fields = pay(controlled)
    assert (fields["CC"], fields["CZ"], fields["AF"]) == ("00D", "0320", "01")
    call(controlled, "PATCH", "/settings", {"currencies": ["EUR"], "outcome": "failure:timeout"})
    assert pay(controlled)["AF"] == "08"
    assert call(controlled, "POST", "/reset") == (200, {"reset": ["1"]})
    body = call(controlled, "GET", "/settings")[1]
    assert body["failure"] is False and body["currencies"] == "all" and body["outcome"] == "answer"
    assert pay(controlled)["AE"] == "10"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"duration": -1}, "duration: '-1' must be a finite number >= 0"),
        ({"failure_type": "bogus"}, "failure_type: invalid choice 'bogus'"),
        ({"colour": "red"}, "unknown setting 'colour'"),
        ({"failure": True, "profile": "visa"}, "profile: invalid choice 'visa'"),
    ],
)
def test_bad_settings_are_refused_whole(controlled, change, message):
    status, body = call(controlled, "PATCH", "/settings", change)
    assert status == 400 and message in body["error"]
    assert call(controlled, "GET", "/settings")[1]["failure"] is False  # nothing was applied


def test_queued_outcomes_apply_to_the_next_transactions(controlled):
    status, body = call(controlled, "POST", "/outcomes", {"outcomes": ["failure:refused", "close"], "count": 1})
    assert status == 200 and body["queued"] == ["failure:04", "close"]
    assert pay(controlled)["AF"] == "04"
    with connect(controlled) as sock:
        sock.sendall(REQUEST)
        assert read_until_closed(sock) == b""
    assert pay(controlled)["AE"] == "10"
    call(controlled, "POST", "/outcomes", "silent")
    assert call(controlled, "DELETE", "/outcomes")[1] == {"queued": []}
    assert call(controlled, "POST", "/outcomes", {"outcomes": ["explode"]})[0] == 400


def test_journal_read_filter_and_clear(controlled):
    pay(controlled, b"CB0041000")
    pay(controlled, b"CB0042000")
    status, body = call(controlled, "GET", "/journal")
    assert status == 200
    amounts = [{r["tag"]: r["value"] for r in t["request_records"]}["CB"] for t in body["transactions"]]
    assert amounts == ["1000", "2000"]
    first = body["transactions"][0]["id"]
    assert len(call(controlled, "GET", f"/journal?after={first}")[1]["transactions"]) == 1
    assert len(call(controlled, "GET", "/journal?last=1")[1]["transactions"]) == 1
    assert call(controlled, "DELETE", "/journal")[1] == {"transactions": []}
    assert call(controlled, "GET", "/journal")[1] == {"transactions": []}


def test_waiting_for_the_next_transaction_needs_no_sleep(controlled):
    pay(controlled, b"CB0041000")
    latest = call(controlled, "GET", "/journal?last=1")[1]["transactions"][0]["id"]
    results = {}

    def wait():  # whether it asks before or after the payment below, it wants the first one after `latest`
        results["next"] = call(controlled, "GET", f"/transactions/next?after={latest}&timeout=10", timeout=15)

    waiter = threading.Thread(target=wait)
    waiter.start()
    pay(controlled, b"CB0043000")
    waiter.join(15)
    status, body = results["next"]
    assert status == 200 and body["transaction"]["id"] == latest + 1
    assert {r["tag"]: r["value"] for r in body["transaction"]["request_records"]}["CB"] == "3000"
    status, body = call(controlled, "GET", f"/transactions/next?after={latest}&timeout=5")
    assert body["transaction"]["id"] == latest + 1  # already there: answered at once
    assert call(controlled, "GET", "/transactions/next?timeout=0.2")[1] == {"transaction": None}


def test_unknown_endpoints_and_methods(controlled):
    assert call(controlled, "GET", "/nope") == (404, {"error": "no endpoint /nope"})
    assert call(controlled, "DELETE", "/health")[0] == 405
    assert call(controlled, "POST", "/scenario/reload")[0] == 400  # started without --scenario


def test_token_given_at_start_up_and_the_control_on_line():
    server = ServerProcess("-d", "0", "--control-port", "0", "--control-token", "s3cret")
    try:
        assert server.control_host == "127.0.0.1" and server.control_port not in server.ports
        assert call(server, "GET", "/health")[0] == 401
        assert call(server, "GET", "/health", token="wrong")[0] == 401
        assert call(server, "GET", "/health", token="s3cret")[0] == 200
        not_ascii = {"Authorization": "Bearer s3cr\u00e9t".encode().decode("latin-1")}  # a wrong token, not a 500
        assert call(server, "GET", "/health", headers=not_ascii)[0] == 401
    finally:
        server.stop()


def test_scenario_reload(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text('[[rule]]\noutcome = "failure:refused"\n')
    with simulator("--scenario", str(path)) as server:
        assert pay(server)["AF"] == "04"
        path.write_text('[[rule]]\noutcome = "failure:forbidden"\n')
        status, body = call(server, "POST", "/scenario/reload")
        assert status == 200 and body["rules"] == ["rule 1"]
        assert pay(server)["AF"] == "05"
        path.write_text('[[rule]]\noutcome = "boom"\n')
        status, body = call(server, "POST", "/scenario/reload")
        assert status == 400 and "rule 1: unknown outcome 'boom'" in body["error"]
        assert pay(server)["AF"] == "05"  # the previous rules stay


def test_the_control_api_listens_on_loopback_by_default(controlled):
    assert controlled.control_host == "127.0.0.1"


def test_several_terminals_in_one_process_under_one_api():
    with simulator("--terminals", "3") as server:
        assert len(set(server.ports)) == 3
        status, body = call(server, "GET", "/terminals")
        assert status == 200
        assert [t["port"] for t in body["terminals"]] == server.ports and body["terminals"][1]["name"] == "2"
        assert call(server, "PATCH", "/settings?terminal=2", {"failure": True})[1]["terminal"] == "2"
        answers = []
        for port in server.ports:
            with connect(server, port) as sock:
                sock.sendall(REQUEST)
                answers.append(dict(read_answers(sock)[0])["AE"])
        assert answers == ["10", "01", "10"]  # only terminal 2 fails
        journal = call(server, "GET", "/journal")[1]["transactions"]
        assert [t["terminal"] for t in journal] == ["1", "2", "3"]
        assert [t["terminal"] for t in call(server, "GET", "/journal?terminal=2")[1]["transactions"]] == ["2"]
        assert call(server, "GET", "/settings?terminal=9")[0] == 404
        assert call(server, "POST", "/reset?terminal=2")[1] == {"reset": ["2"]}


def test_terminals_on_a_list_of_ports():
    free = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free.append(probe.getsockname()[1])
    with SimulatedTerminal("--terminals", ",".join(map(str, free))) as server:
        assert server.ports == free


def test_a_control_port_in_use_stops_the_process_with_a_clear_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, str(SERVER_SCRIPT), "-p", "0", "--control-port", str(port)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr
