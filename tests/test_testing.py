"""The Python API and the pytest plugin, used as a POS project uses them."""

import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import WAIT

from caisse_ap_ip.amounts import currency_from_code
from caisse_ap_ip.client import ClientError, payment_request, transact
from caisse_ap_ip.testing import SimulatedTerminal, TerminalError

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
