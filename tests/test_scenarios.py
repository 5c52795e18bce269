"""Scenario rules: predicates, sequences, state, magic amounts, and errors that point at the line."""

import random
import textwrap
from decimal import Decimal

import pytest
from helpers import REQUEST, ServerProcess, read_answers

from caisse_ap_ip.amounts import currency_from_code
from caisse_ap_ip.client import build_request, with_records
from caisse_ap_ip.outcomes import parse
from caisse_ap_ip.scenarios import MAGIC_AMOUNTS, Scenario, ScenarioError, load, magic_amounts
from caisse_ap_ip.terminal import Terminal, TerminalSettings


def scenario_file(tmp_path, text: str):
    path = tmp_path / "scenario.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def terminal_with(tmp_path, text: str, seed=1) -> Terminal:
    terminal = Terminal(TerminalSettings(duration=0), random.Random(seed))
    terminal.scenario = load(scenario_file(tmp_path, text), seed)
    return terminal


def request(action="debit", amount="112.45", currency="EUR", **options):
    return build_request(action, Decimal(amount), currency_from_code(currency), **options)


def kinds(terminal: Terminal, requests) -> list[str]:
    return [terminal.plan(req).outcome.describe() for req in requests]


@pytest.mark.parametrize(
    ("when", "matching", "other"),
    [
        ('amount = "12.34"', request(amount="12.34"), request(amount="12.35")),
        ('amount = "10-20"', request(amount="20"), request(amount="20.01")),
        ('amount = "100-"', request(amount="100000"), request(amount="99.99")),
        ("cents = [51, 52]", request(amount="3.52"), request(amount="3.53")),
        ('last_digits = "999"', request(amount="19.99"), request(amount="19.98")),
        ('currency = ["USD", "XPF"]', request(currency="XPF", amount="100"), request(currency="EUR")),
        ('action = "refund"', request("refund"), request()),
        ("check = true", request(check=True), request()),
        ('pos = "7"', request(pos_number="07"), request()),
        ('tags = { CF = "ORDER-1" }', request(private_data="ORDER-1"), request(private_data="ORDER-2")),
        ('ticket = "100"', request(ticket="customer"), request()),
        ('ticket = "none"', request(), request(ticket="customer")),
        ('ticket = ["110", "120"]', request(ticket="both"), request(ticket="customer")),
    ],
)
def test_each_predicate(tmp_path, when, matching, other):
    terminal = terminal_with(tmp_path, f'[[rule]]\nwhen = {{ {when} }}\noutcome = "silent"\n')
    assert kinds(terminal, [matching, other]) == ["silent", "answer"]


def test_rank_every_and_share(tmp_path):
    terminal = terminal_with(
        tmp_path,
        """
        [[rule]]
        when = { rank = 3 }
        outcome = "close"
        [[rule]]
        when = { every = 2 }
        outcome = "silent"
        """,
    )
    assert kinds(terminal, [request()] * 6) == ["answer", "silent", "close", "silent", "answer", "silent"]
    shared = terminal_with(tmp_path, '[[rule]]\nwhen = { share = 0.25 }\noutcome = "reset"\n', seed=5)
    resets = kinds(shared, [request()] * 400).count("reset")
    assert 60 < resets < 140
    again = terminal_with(tmp_path, '[[rule]]\nwhen = { share = 0.25 }\noutcome = "reset"\n', seed=5)
    assert kinds(again, [request()] * 400).count("reset") == resets  # the seed makes it reproducible


def test_first_matching_rule_wins_and_sequences_cycle_or_stop(tmp_path):
    terminal = terminal_with(
        tmp_path,
        """
        [[rule]]
        when = { amount = "1" }
        outcomes = ["close", "silent"]
        repeat = "once"
        [[rule]]
        when = { amount = "1-2" }
        outcomes = ["failure:refused", { outcome = "success", delay = 2 }]
        """,
    )
    one = request(amount="1")
    assert kinds(terminal, [one] * 5) == ["close", "silent", "failure:04", "success delay=2", "failure:04"]


def test_state_gives_a_first_attempt_that_times_out_and_a_retry_that_succeeds(tmp_path):
    terminal = terminal_with(
        tmp_path,
        """
        [[rule]]
        name = "first attempt"
        when = { state = "start", action = "debit" }
        outcome = "failure:timeout"
        then = "retry"
        [[rule]]
        when = { state = "retry" }
        outcome = "success"
        then = "start"
        """,
    )
    plans = [terminal.plan(request()) for _ in range(3)]
    assert [p.outcome.describe() for p in plans] == ["failure:08", "success", "failure:08"]
    assert plans[0].rule == "first attempt"
    assert dict(terminal.respond(request(), plans[0].outcome).records)["AF"] == "08"


def test_queued_outcomes_come_first_and_every_request_counts(tmp_path):
    terminal = terminal_with(tmp_path, '[[rule]]\nwhen = { rank = 2 }\noutcome = "close"\n')
    terminal.queued.append(parse("silent"))
    assert kinds(terminal, [request(), request(), request()]) == ["silent", "close", "answer"]


def test_magic_amounts():
    terminal = Terminal(TerminalSettings(duration=0))
    terminal.scenario = Scenario(magic_amounts())
    for cents, text in MAGIC_AMOUNTS.items():
        assert terminal.plan(request(amount=f"12.{cents}")).outcome == parse(text)
    for common in ("12.00", "12.50", "12.90", "12.95", "12.99", "12.49", "0.01"):
        assert terminal.plan(request(amount=common)).outcome == parse("answer")
    yen = with_records(request(currency="JPY", amount="1561"), [])
    assert terminal.plan(yen).outcome == parse("failure:refused")  # last two digits of the minor units


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rule]]\nwhen = { amout = 1 }\noutcome = "silent"\n', "scenario.toml:1: rule 1: unknown predicate 'amout'"),
        (
            '[[rule]]\noutcome = "silent"\n\n[[rule]]\noutcome = "boom"\n',
            "scenario.toml:4: rule 2: unknown outcome 'boom'",
        ),
        ('[[rule]]\nwhen = { cents = 100 }\noutcome = "silent"\n', "cents are 0 to 99"),
        ('[[rule]]\nwhen = { action = "pay" }\noutcome = "silent"\n', "unknown action 'pay'"),
        ('[[rule]]\nwhen = { currency = "EURO" }\noutcome = "silent"\n', "unknown currency 'EURO'"),
        ('[[rule]]\nwhen = { amount = "ten" }\noutcome = "silent"\n', "bad value for amount"),
        ('[[rule]]\nwhen = { amount = "20-10" }\noutcome = "silent"\n', "amount range '20-10' ends before it starts"),
        ('[[rule]]\nwhen = { ticket = "yes" }\noutcome = "silent"\n', 'ticket is a CK value such as "100"'),
        ("[[rule]]\nwhen = {}\n", "give either outcome or outcomes"),
        ("[[rule]]\noutcomes = []\n", "non-empty list"),
        ('[[rule]]\noutcome = "silent"\nrepeat = "twice"\n', "repeat must be cycle or once"),
        ('[[rule]]\noutcome = "silent"\ncolour = 1\n', "unknown key colour"),
        ('[rules]\noutcome = "silent"\n', "scenario.toml:1: unknown top-level key rules"),
        ("[[rule]\n", "scenario.toml: Expected ']]'"),
    ],
)
def test_errors_name_the_file_the_line_and_the_reason(tmp_path, text, message):
    with pytest.raises(ScenarioError) as caught:
        load(scenario_file(tmp_path, text))
    assert message in str(caught.value)


def test_a_scenario_file_drives_the_server(tmp_path):
    path = scenario_file(
        tmp_path,
        """
        [[rule]]
        when = { state = "start" }
        outcome = "failure:timeout"
        then = "retry"
        [[rule]]
        when = { state = "retry" }
        outcome = "success"
        then = "start"
        """,
    )
    server = ServerProcess("-d", "0", "--scenario", str(path))
    try:
        with server.connect() as sock:
            results = []
            for _ in range(3):
                sock.sendall(REQUEST)
                results.append(dict(read_answers(sock)[0]).get("AF", "ok"))
        assert results == ["08", "ok", "08"]
    finally:
        server.stop()


def test_a_bad_scenario_file_stops_the_server_at_start_up(tmp_path):
    import subprocess
    import sys

    from helpers import SERVER_SCRIPT, WAIT

    path = scenario_file(tmp_path, '[[rule]]\nwhen = { cents = 5 }\noutcome = "silent"\n\n[[rule]]\noutcome = "x"\n')
    result = subprocess.run(
        [sys.executable, str(SERVER_SCRIPT), "--scenario", str(path)], capture_output=True, text=True, timeout=WAIT
    )
    assert result.returncode == 2
    assert f"{path}:5: rule 2: unknown outcome 'x'" in result.stderr


def test_magic_amounts_through_the_server(terminal_server):
    server = terminal_server("-d", "0", "--magic-amounts")
    with server.connect() as sock:
        sock.sendall(REQUEST.replace(b"CB00511245", b"CB0041261"))
        assert dict(read_answers(sock)[0])["AF"] == "04"
        sock.sendall(REQUEST)
        assert dict(read_answers(sock)[0])["AE"] == "10"
