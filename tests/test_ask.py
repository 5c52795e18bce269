"""The outcome ask: a person decides, from the keyboard, the control API, Python, or nobody (the time-out).

The registry and the server are driven in-process with task.Clock; the control API and SimulatedTerminal over
loopback; the keypad in a pseudo-terminal, as a person would use it.
"""

import io
import json
import os
import select
import subprocess
import sys
import threading

import pytest
from helpers import REQUEST, SERVER_SCRIPT, WAIT, InProcessTerminal, call, read_answers
from twisted.internet import task

from caisse_ap_ip import decisions, outcomes, prompt
from caisse_ap_ip.decisions import AlreadyDecided, Decisions, NotPending
from caisse_ap_ip.server import Limits, Phase
from caisse_ap_ip.testing import SimulatedTerminal, TerminalError

IDENTIFY = b"CZ0040300CJ012012345678901CA00201CD001I"
ASK = outcomes.parse("ask")


# -- the registry


def test_the_first_decision_wins_and_the_next_is_told_it_came_too_late():
    desk, events = Decisions(task.Clock()), []
    desk.events.subscribe(lambda kind, data: events.append(kind))
    pending = desk.ask("1", "127.0.0.1:5000", [("CZ", "0300"), ("CD", "0")], timeout=60)
    got = []
    pending.decided.addCallback(got.append)
    desk.decide(pending.id, outcomes.parse("failure:refused"), "web")
    assert got == [(outcomes.parse("failure:refused"), "web")]
    with pytest.raises(AlreadyDecided, match=r"decided: failure:04 by web"):
        desk.decide(pending.id, outcomes.parse("success"), "api")
    assert desk.waiting() == [] and events == ["pending", "pending", "decided"]


def test_nobody_deciding_is_the_input_time_out_at_the_deadline():
    clock = task.Clock()
    desk = Decisions(clock)
    pending = desk.ask("1", "peer", [("CD", "0")], timeout=60)
    got = []
    pending.decided.addCallback(got.append)
    clock.advance(59.9)
    assert got == [] and desk.waiting() == [pending]
    clock.advance(0.1)
    assert got == [(decisions.TIMED_OUT, decisions.BY_TIMEOUT)] and decisions.TIMED_OUT.code == "08"


def test_oldest_unknown_withdrawn_and_ask_again():
    clock = task.Clock()
    desk = Decisions(clock)
    with pytest.raises(NotPending):
        desk.decide("oldest", outcomes.parse("success"), "api")
    first, second = (desk.ask("1", f"peer{n}", [("CD", "0")], timeout=60) for n in (1, 2))
    assert desk.decide("oldest", outcomes.parse("success"), "api") is first
    with pytest.raises(outcomes.OutcomeError, match="not ask again"):
        desk.decide(second.id, ASK, "api")
    desk.withdraw(second, "the POS left")
    with pytest.raises(AlreadyDecided, match="the POS left"):
        desk.decide(second.id, outcomes.parse("success"), "api")
    with pytest.raises(NotPending):
        desk.decide(99, outcomes.parse("success"), "api")
    clock.advance(60)  # the withdrawn one's timer was cancelled: nothing fires
    assert clock.getDelayedCalls() == []


def test_waiting_for_a_transaction_to_arrive():
    clock = task.Clock()
    desk = Decisions(clock)
    early, late = [], []
    desk.when_waiting(None, 5).addCallback(early.append)
    desk.when_waiting("2", 5).addCallback(late.append)
    desk.ask("1", "peer", [("CD", "0")], timeout=60)
    assert len(early) == 1 and len(early[0]) == 1 and late == []
    clock.advance(5)
    assert late == [[]]


def test_the_description_a_person_decides_on():
    desk = Decisions(task.Clock())
    records = [("CZ", "0300"), ("CA", "07"), ("CE", "978"), ("CD", "0"), ("CB", "1234"), ("CC", "00C")]
    described = desk.ask("2", "127.0.0.1:5000", records, timeout=60).describe()
    assert described["pos"] == "07" and described["action"] == "debit" and described["check"] is True
    assert described["amount"] == "12.34 EUR" and described["minor_units"] == 1234 and described["currency"] == "EUR"
    assert described["deadline"] - described["received"] == 60
    assert [row["tag"] for row in described["request_records"]] == ["CZ", "CA", "CE", "CD", "CB", "CC"]


# -- the server


def asking_terminal(**limits) -> InProcessTerminal:
    terminal = InProcessTerminal(Limits(**limits), outcome=ASK)
    return terminal


def test_a_payment_waits_until_decided_then_gets_exactly_that_answer():
    terminal = asking_terminal()
    pos = terminal.exchange(REQUEST, seconds=30)
    assert pos.received == b"" and pos.connection.phase is Phase.ASKING
    (pending,) = terminal.factory.decisions.waiting()
    terminal.factory.decisions.decide(pending.id, outcomes.parse("success:cbcontactless"), "web")
    fields = pos.fields()
    assert (fields["AE"], fields["CC"], fields["CI"]) == ("10", "00B", "2")
    (entry,) = terminal.entries()
    assert entry["outcome"] == "success:cbcontactless (asked, decided by web)"


def test_undecided_it_is_the_input_time_out_after_ask_timeout():
    terminal = asking_terminal(ask_timeout=5)
    pos = terminal.exchange(REQUEST, seconds=4.9)
    assert pos.received == b""
    terminal.advance(0.1)
    assert (pos.fields()["AE"], pos.fields()["AF"]) == ("01", "08")
    assert terminal.entries()[0]["outcome"].endswith("(asked, decided by time-out)")


def test_a_pos_that_leaves_while_waiting_removes_its_entry_and_is_journaled():
    terminal = asking_terminal()
    pos = terminal.exchange(REQUEST, seconds=1)
    pos.reset()
    assert terminal.factory.decisions.waiting() == []
    (entry,) = terminal.entries()
    assert entry["answer"] is None and entry["outcome"] == "left before the answer (ask)"
    terminal.advance(120)  # its time-out does not fire on a closed connection
    assert len(terminal.entries()) == 1


def test_several_pos_wait_at_once_each_with_its_own_entry():
    terminal = asking_terminal()
    first, second = terminal.exchange(REQUEST, 1), terminal.exchange(REQUEST.replace(b"CA00201", b"CA00207"), 1)
    desk = terminal.factory.decisions
    assert [dict(p.request)["CA"] for p in desk.waiting()] == ["01", "07"]
    desk.decide("oldest", outcomes.parse("failure:abandon"), "keyboard")
    assert first.fields()["AF"] == "11" and second.received == b""
    desk.decide("oldest", outcomes.parse("success"), "keyboard")
    assert second.fields()["AE"] == "10"


def test_the_modifiers_of_ask_apply_to_what_is_decided():
    terminal = InProcessTerminal(outcome=outcomes.parse("ask fragments=3 pause=0.5"))
    pos = terminal.exchange(REQUEST, 1)
    terminal.factory.decisions.decide("oldest", outcomes.parse("failure:refused"), "api")
    assert 0 < len(pos.received) < 100  # the first of three pieces
    terminal.advance(1)
    assert pos.fields()["AF"] == "04" and len(pos.transport.writes) == 3


def test_what_needs_no_customer_is_answered_at_once():
    terminal = asking_terminal()
    assert terminal.exchange(IDENTIFY, 0).fields()["AE"] == "10"
    assert terminal.exchange(REQUEST.replace(b"CE003978", b"CE003999"), 0).fields()["AF"] == "13"
    assert terminal.factory.decisions.waiting() == []


def test_a_pipelined_request_waits_behind_the_decision():
    terminal = asking_terminal()
    pos = terminal.exchange(REQUEST + REQUEST, 1)
    desk = terminal.factory.decisions
    assert len(desk.waiting()) == 1
    desk.decide("oldest", outcomes.parse("success"), "api")
    assert len(pos.answers()) == 1 and len(desk.waiting()) == 1
    desk.decide("oldest", outcomes.parse("failure:refused"), "api")
    assert [dict(answer)["AE"] for answer in pos.answers()] == ["10", "01"]


def test_a_decision_may_be_any_outcome_silent_or_close_included():
    terminal = asking_terminal()
    silent, closed = terminal.exchange(REQUEST, 1), terminal.exchange(REQUEST, 1)
    desk = terminal.factory.decisions
    desk.decide("oldest", outcomes.parse("silent"), "keyboard")
    desk.decide("oldest", outcomes.parse("close"), "keyboard")
    assert silent.received == b"" and not silent.closed
    assert closed.received == b"" and closed.closed


# -- the keypad


class FakeDesk(Decisions):
    def __init__(self):
        super().__init__(task.Clock())
        self.decisions = []

    def decide(self, which, outcome, by):
        self.decisions.append((which, str(outcome), by))
        return super().decide(which, outcome, by)


@pytest.mark.parametrize(
    ("key", "outcome"),
    [("\r", "success"), ("\n", "success"), ("c", "success:cbcontactless"), ("a", "success:amexcontact"),
     ("r", "failure:04"), ("f", "failure:05"), ("x", "failure:11"), ("t", "failure:08"), ("s", "silent"),
     ("C", "success:cbcontactless")],
)  # fmt: skip
def test_each_key_decides_the_oldest_transaction(key, outcome):
    desk, said = FakeDesk(), []
    keypad = prompt.Keypad(desk, said.append)
    oldest = desk.ask("1", "127.0.0.1:5000", [("CA", "01"), ("CE", "978"), ("CD", "0"), ("CB", "100")], 60)
    desk.ask("1", "127.0.0.1:5001", [("CD", "0")], 60)
    keypad.dataReceived(key.encode())
    assert desk.decisions == [(oldest.id, outcome, prompt.BY_KEYBOARD)]
    assert "127.0.0.1:5000 POS 01: debit 1.00 EUR waits for the customer" in said[0]


def test_the_keypad_says_when_nothing_waits_and_ignores_other_keys():
    desk, said = FakeDesk(), []
    keypad = prompt.Keypad(desk, said.append)
    keypad.dataReceived(b"zq1 ")
    assert said == [] and desk.decisions == []
    keypad.dataReceived(b"\r")
    assert said == ["no transaction waits for a decision\n"]
    desk.ask("1", "peer", [("CD", "0")], 60)
    keypad.dataReceived(b"?")
    assert "1. terminal 1 peer: debit" in said[-1]


def test_the_keypad_is_only_for_a_terminal_in_the_foreground():
    read, write = os.pipe()
    try:
        assert not prompt.interactive(read)
    finally:
        os.close(read)
        os.close(write)


def test_keys_on_the_servers_own_terminal_decide_in_a_pseudo_terminal():
    import pty

    master, slave = pty.openpty()

    def controlling_terminal():  # the pty becomes the server's terminal, and it runs in the foreground
        import fcntl
        import termios

        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    server = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "-p", "0", "-d", "0", "--outcome", "ask"],
        stdin=slave, stdout=subprocess.PIPE, stderr=slave, start_new_session=True, preexec_fn=controlling_terminal,
    )  # fmt: skip
    os.close(slave)
    try:
        listening = read_until(server.stdout.fileno(), b"\n").decode()  # "listening on 127.0.0.1:PORT"
        port = int(listening.split()[2].rsplit(":", 1)[1])
        answers = []
        pos = threading.Thread(target=lambda: answers.append(_pay(port)))
        pos.start()
        read_until(master, b"waits for the customer")
        os.write(master, b"c")
        pos.join(WAIT)
        assert (answers[0]["AE"], answers[0]["CC"], answers[0]["CI"]) == ("10", "00B", "2")
        assert b"decided by keyboard" in read_until(master, b"decided by keyboard")
    finally:
        server.terminate()
        server.wait(WAIT)
        os.close(master)


def _pay(port: int) -> dict:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(REQUEST)
        return dict(read_answers(sock)[0])


def read_until(fd: int, wanted: bytes) -> bytes:
    seen = b""
    while wanted not in seen:
        ready, _, _ = select.select([fd], [], [], WAIT)
        assert ready, f"{wanted!r} not shown; the terminal shows {seen!r}"
        seen += os.read(fd, 4096)
    return seen


# -- the control API and SimulatedTerminal


@pytest.fixture(scope="module")
def asking():
    with SimulatedTerminal("--outcome", "ask", "--control-port", "0") as terminal:
        yield terminal


@pytest.fixture(autouse=True)
def nothing_left_waiting(request):
    """A test that failed half-way may leave a POS waiting: the next one starts with none."""
    if "asking" in request.fixturenames:
        terminal = request.getfixturevalue("asking")
        for waiting in terminal.pending():
            terminal.decide("close", waiting["id"])


def paying(terminal) -> tuple[threading.Thread, list]:
    answers = []
    pos = threading.Thread(target=lambda: answers.append(_pay(terminal.port)))
    pos.start()
    return pos, answers


def test_list_pending_then_post_a_decision_first_wins(asking):
    pos, answers = paying(asking)
    status, body = call(asking, "GET", "/pending?wait=10")
    (pending,) = body["pending"]
    assert status == 200 and pending["amount"] == "112.45 EUR" and pending["pos"] == "01"
    status, body = call(asking, "POST", f"/pending/{pending['id']}", {"outcome": "failure:forbidden", "by": "curl"})
    assert status == 200 and body["decided"]["by"] == "curl" and body["decided"]["outcome"] == "failure:05"
    pos.join(WAIT)
    assert answers[0]["AF"] == "05"
    status, body = call(asking, "POST", f"/pending/{pending['id']}", {"outcome": "success"})
    assert status == 409 and "no longer waits" in body["error"]
    assert asking.wait_for_transaction()["outcome"] == "failure:05 (asked, decided by curl)"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [("/pending/oldest", {"outcome": "success"}, 404, "no transaction waits"),
     ("/pending/12345", {"outcome": "success"}, 404, "no transaction 12345"),
     ("/pending/abc", {"outcome": "success"}, 404, "a number or 'oldest'"),
     ("/pending/oldest", {"outcome": "nonsense"}, 400, "unknown outcome"),
     ("/pending/oldest", {"nothing": 1}, 400, "send")],
)  # fmt: skip
def test_decisions_the_api_refuses(asking, path, body, status, message):
    got, answer = call(asking, "POST", path, body)
    assert got == status and message in answer["error"]


def test_ask_is_no_decision_through_the_api(asking):
    pos, answers = paying(asking)
    asking.pending(wait=10)
    status, body = call(asking, "POST", "/pending/oldest", {"outcome": "ask"})
    assert status == 400 and "not ask again" in body["error"]
    asking.decide("success:amexcontact")
    pos.join(WAIT)
    assert answers[0]["CC"] == "002"


def test_a_python_test_decides_like_a_person(asking):
    asking.next("ask")  # queued, even where --outcome is not ask
    pos, answers = paying(asking)
    (pending,) = asking.pending(wait=10)
    decided = asking.decide("failure:refused", pending["id"])
    pos.join(WAIT)
    assert decided["id"] == pending["id"] and answers[0]["AF"] == "04"
    with pytest.raises(TerminalError, match="no longer waits"):
        asking.decide("success", pending["id"])
    assert call(asking, "GET", "/ticket")[1]["ticket"].splitlines()[0] == "CARTE BANCAIRE"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"Origin": "http://evil.example", "Content-Type": "application/json"}, 403),
     ({"Origin": "http://127.0.0.1:{port}", "Content-Type": "text/plain"}, 415),
     ({"Host": "evil.example:{port}"}, 403),
     ({"Origin": "http://127.0.0.1:{port}", "Content-Type": "application/json"}, 200)],
)  # fmt: skip
def test_browsers_of_other_origins_cannot_change_the_terminal(asking, headers, status):
    headers = {name: value.format(port=asking.control_port) for name, value in headers.items()}
    got, body = call(asking, "POST", "/outcomes", {"outcomes": ["success"]}, headers=headers)
    assert got == status, body
    call(asking, "DELETE", "/outcomes")


def test_a_scenario_rule_asks_for_large_amounts_only(tmp_path):
    rules = tmp_path / "ask.toml"
    rules.write_text('[[rule]]\nname = "large"\nwhen = { amount = "100-" }\noutcome = "ask"\n')
    with SimulatedTerminal("--scenario", str(rules)) as terminal:
        small = _pay_amount(terminal.port, b"CB0041000")
        assert small["AE"] == "10" and terminal.pending() == []
        pos, answers = paying(terminal)
        (waiting,) = terminal.pending(wait=10)
        assert waiting["amount"] == "112.45 EUR"
        terminal.decide("failure:timeout")
        pos.join(WAIT)
        assert answers[0]["AF"] == "08"
        assert terminal.transactions[-1]["rule"] == "large"


def test_a_subprocess_terminal_is_decided_through_its_api():
    with SimulatedTerminal("--outcome", "ask", subprocess=True) as terminal:
        pos, answers = paying(terminal)
        (waiting,) = terminal.pending(wait=10)
        assert waiting["amount"] == "112.45 EUR"
        assert terminal.decide("success:cbcontactless")["by"] == "python"
        pos.join(WAIT)
        assert answers[0]["CC"] == "00B"
        with pytest.raises(TerminalError, match="no transaction waits"):
            terminal.decide("success")


def _pay_amount(port: int, amount: bytes) -> dict:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(REQUEST.replace(b"CB00511245", amount))
        return dict(read_answers(sock)[0])


def test_a_queued_outcome_used_up_is_announced(asking):
    seen = []
    asking.next("failure:refused")
    backend = asking._backend
    stop = backend._call(backend.simulator.events.subscribe, lambda kind, data: seen.append(kind))
    try:
        assert _pay(asking.port)["AF"] == "04"
    finally:
        backend._call(stop)
    assert "queue" in seen and asking.transactions[-1]["rule"] == "queued"


# -- what the review found: arrows, terminals, leaving clients, foreign names, who decided


def test_arrow_and_function_keys_decide_nothing():
    desk, said = FakeDesk(), []
    keypad = prompt.Keypad(desk, said.append)
    desk.ask("1", "peer", [("CD", "0")], 60)
    keypad.dataReceived(b"\x1b[A\x1b[C\x1bOA\x1b[15~")  # up, right, up (application mode), F5
    keypad.dataReceived(b"\x1b[")  # a sequence cut between two reads
    keypad.dataReceived(b"D")
    assert desk.decisions == []
    keypad.dataReceived(b"c")
    assert [outcome for _, outcome, _ in desk.decisions] == ["success:cbcontactless"]


def api_of(*options: str):
    from twisted.internet.testing import MemoryReactorClock

    from caisse_ap_ip import control, settings
    from caisse_ap_ip.simulator import Simulator

    simulator = Simulator(settings.parse_args(["-d", "0", *options]), MemoryReactorClock())
    return simulator, control.ControlAPI(simulator)


def dummy(method: bytes, path: bytes, body=None, host: bytes = b"127.0.0.1:8080", **args):
    from twisted.web.test.requesthelper import DummyRequest

    request = DummyRequest(path.lstrip(b"/").split(b"/"))
    request.method, request.path = method, path
    request.args = {name.encode(): [str(value).encode()] for name, value in args.items()}
    request.requestHeaders.setRawHeaders(b"host", [host])
    request.content = io.BytesIO(json.dumps(body).encode() if body is not None else b"")
    return request


def rendered(api, request) -> tuple[int, dict]:
    body = api.render(request)
    text = body if isinstance(body, bytes) else b"".join(request.written)
    return request.responseCode or 200, json.loads(text)


def test_a_decision_for_one_terminal_never_decides_anothers():
    simulator, api = api_of("--terminals", "2")
    desk = simulator.decisions
    first = desk.ask("1", "peer1", [("CD", "0")], 60)
    assert rendered(api, dummy(b"POST", b"/pending/oldest", {"outcome": "success"}, terminal=2))[0] == 404
    status, body = rendered(api, dummy(b"POST", f"/pending/{first.id}".encode(), {"outcome": "success"}, terminal=2))
    assert status == 404 and "waits on terminal 1, not 2" in body["error"]
    assert rendered(api, dummy(b"POST", b"/pending/oldest", {"outcome": "success"}, terminal=1))[0] == 200


def test_a_long_poll_whose_client_leaves_lets_go_of_its_timer_and_subscription():
    simulator, api = api_of()
    reactor, events = simulator.reactor, simulator.events
    before = (len(reactor.getDelayedCalls()), len(events._subscribers))
    request = dummy(b"GET", b"/pending", wait=30)
    api.render(request)
    assert len(events._subscribers) == before[1] + 1
    request.processingFailed(ConnectionError("the client left"))
    assert (len(reactor.getDelayedCalls()), len(events._subscribers)) == before
    transaction = dummy(b"GET", b"/transactions/next", timeout=30)
    api.render(transaction)
    transaction.processingFailed(ConnectionError("the client left"))
    assert len(reactor.getDelayedCalls()) == before[0] and simulator.terminals[0]._factory.listeners == []


@pytest.mark.parametrize(
    ("listening", "host", "allowed"),
    [("127.0.0.1", b"localhost:8080", True), ("127.0.0.1", b"[::1]:8080", True),
     ("127.0.0.1", b"192.168.1.5:8080", False), ("127.0.0.1", b"rebound.evil.example:8080", False),
     ("0.0.0.0", b"192.168.1.5:8080", True), ("0.0.0.0", b"[fe80::1]:8080", True),
     ("0.0.0.0", b"rebound.evil.example:8080", False)],
)  # fmt: skip
def test_the_api_answers_only_to_names_of_its_own(listening, host, allowed):
    _, api = api_of("--control-host", listening)
    assert (rendered(api, dummy(b"GET", b"/health", host=host))[0] == 200) == allowed


def test_this_machines_own_name_reaches_a_lan_api():
    import socket

    _, api = api_of("--control-host", "0.0.0.0")
    assert rendered(api, dummy(b"GET", b"/health", host=socket.gethostname().encode() + b":8080"))[0] == 200


def test_who_decided_is_one_short_printable_line():
    simulator, api = api_of()
    simulator.decisions.ask("1", "peer", [("CD", "0")], 60)
    body = {"outcome": "success", "by": "me\nINFO forged line" + "x" * 100}
    by = rendered(api, dummy(b"POST", b"/pending/oldest", body))[1]["decided"]["by"]
    assert "\n" not in by and len(by) == 40 and by.startswith("meINFO forged line")


def test_a_decision_that_cannot_be_carried_out_resets_the_line(monkeypatch, caplog):
    terminal = asking_terminal()
    pos = terminal.exchange(REQUEST, 1)

    def broken(*args):
        raise RuntimeError("a defect")

    monkeypatch.setattr(terminal.factory.terminal, "decided", broken)
    terminal.factory.decisions.decide("oldest", outcomes.parse("success"), "api")
    assert pos.transport.aborted and "carrying out a decision failed" in caplog.text


# -- what the walk through README found


def test_a_pos_that_closes_while_waiting_removes_its_entry_though_tcp_calls_it_a_half_close():
    terminal = asking_terminal()
    pos = terminal.exchange(REQUEST, 1)
    pos.shutdown_write()  # a POS that gives up and closes: the terminal sees the end of what it sends
    assert terminal.factory.decisions.waiting() == []
    terminal.advance(0)
    (entry,) = terminal.entries()
    assert pos.closed and entry["answer"] is None and entry["outcome"] == "left before the answer (ask)"


def test_a_server_that_stops_does_not_say_its_pos_left():
    terminal = asking_terminal()
    pos = terminal.exchange(REQUEST, 1)
    terminal.factory.stopping = True
    pos.reset()
    assert terminal.entries()[0]["outcome"] == "the server stopped before the answer (ask)"


def test_after_ctrl_z_and_fg_keys_are_read_one_at_a_time_again():
    import pty
    import signal
    import termios

    master, slave = pty.openpty()

    def controlling_terminal():
        import fcntl

        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    server = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "-p", "0", "-d", "0", "--outcome", "ask"],
        stdin=slave, stdout=subprocess.PIPE, stderr=slave, start_new_session=True, preexec_fn=controlling_terminal,
    )  # fmt: skip
    try:
        port = int(read_until(server.stdout.fileno(), b"\n").decode().split()[2].rsplit(":", 1)[1])
        answers = []
        pos = threading.Thread(target=lambda: answers.append(_pay(port)))
        pos.start()
        read_until(master, b"waits for the customer")
        modes = termios.tcgetattr(slave)
        modes[3] |= termios.ICANON | termios.ECHO  # what a shell leaves after the job was stopped and resumed
        termios.tcsetattr(slave, termios.TCSANOW, modes)
        server.send_signal(signal.SIGCONT)
        read_until(master, b"waits for the customer")  # shown again once the server has its keys back
        os.write(master, b"r")  # one key, no Enter
        pos.join(WAIT)
        assert answers[0]["AF"] == "04"
    finally:
        server.terminate()
        server.wait(WAIT)
        os.close(slave)
        os.close(master)
