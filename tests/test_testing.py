"""The Python API and the pytest plugin, used as a POS project uses them."""

import json
import shutil
import subprocess
import sys
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import WAIT

from caisse_ap_ip.amounts import currency_from_code
from caisse_ap_ip.client import ClientError, payment_request, transact
from caisse_ap_ip.testing import ServerProcess, SimulatedTerminal, TerminalError

POS_PROJECT = Path(__file__).parent / "pos_project"
REQUEST = payment_request(Decimal("9.99"), currency_from_code("EUR"))


def pay(terminal, timeout=5.0):
    return dict(transact("127.0.0.1", terminal.port, REQUEST, timeout=timeout, quiet_time=0.05).answer)


@pytest.mark.parametrize("in_subprocess", [False, True], ids=["thread", "subprocess"])
def test_simulated_terminal(in_subprocess):
    with SimulatedTerminal("--seed", "3", subprocess=in_subprocess) as terminal:
        assert pay(terminal)["AE"] == "10"
        terminal.next("failure:refused", "close")
        assert pay(terminal)["AF"] == "04"
        with pytest.raises(ClientError, match="closed the connection without answering"):
            pay(terminal)
        assert [t["outcome"] for t in terminal.transactions] == ["answer", "failure:04", "close"]
        terminal.configure(failure=True, failure_type="timeout")
        assert pay(terminal)["AF"] == "08"
        assert terminal.wait_for_transaction()["outcome"] == "answer"  # the next one this object had not seen
        with pytest.raises(ValueError, match="unknown setting 'colour'"):
            terminal.configure(colour="red")
        terminal.reset()
        assert terminal.transactions == [] and pay(terminal)["AE"] == "10"
        assert terminal.wait_for_transaction()["outcome"] == "answer"
        with pytest.raises(TerminalError, match=r"no transaction within 0\.2 s"):
            terminal.wait_for_transaction(timeout=0.2)


@pytest.mark.parametrize("in_subprocess", [False, True], ids=["thread", "subprocess"])
def test_next_takes_modifiers_as_keywords(in_subprocess):
    with SimulatedTerminal(subprocess=in_subprocess) as terminal:
        terminal.next("failure:refused", "success", delay=0.01, fragments=3, pause=0.01)
        assert pay(terminal)["AF"] == "04" and pay(terminal)["AE"] == "10"
        assert [t["outcome"] for t in terminal.transactions] == [
            "failure:04 delay=0.01 fragments=3 pause=0.01",
            "success delay=0.01 fragments=3 pause=0.01",
        ]
        with pytest.raises(ValueError, match="fragments"):
            terminal.next("success", fragments=0)


def test_the_thread_backend_does_what_the_command_line_does():
    with SimulatedTerminal("--terminals", "2", "--control-port", "0", "--host", "127.0.0.1") as terminal:
        assert len(set(terminal.ports)) == 2 and terminal.port == terminal.ports[0]
        assert terminal.control_host == "127.0.0.1" and terminal.control_port not in terminal.ports
        with urllib.request.urlopen(f"http://127.0.0.1:{terminal.control_port}/terminals", timeout=WAIT) as answer:
            assert [t["port"] for t in json.load(answer)["terminals"]] == terminal.ports
    with pytest.raises(ValueError, match="argument --busy: invalid choice 'sometimes'"):
        SimulatedTerminal("--busy", "sometimes")


def test_a_server_process_that_dies_at_start_up_says_why():
    with pytest.raises(TerminalError, match=r"exited with status 2; stderr: .*invalid choice 'visa'"):
        ServerProcess("-pt", "visa")


def test_two_simulated_terminals_in_one_process_are_independent():
    with SimulatedTerminal() as first, SimulatedTerminal("-f") as second:
        assert pay(first)["AE"] == "10" and pay(second)["AE"] == "01"
        assert len(first.transactions) == len(second.transactions) == 1


def test_the_plugin_serves_a_pos_project(tmp_path):
    project = tmp_path / "pos_project"
    shutil.copytree(POS_PROJECT, project)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project)],
        cwd=project, capture_output=True, text=True, timeout=WAIT * 6,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout
