"""Each outcome for a real terminal's answer shape, end to end: our client against our server."""

import json
import textwrap

import pytest
from helpers import ServerProcess, client

SHAPES = {  # amount paid -> outcome the scenario gives it
    "1.01": "partial:0.50",
    "1.02": "partial:50%",
    "1.03": "extended-af",
    "1.04": "padded-amount",
    "1.05": "pending",
    "1.06": "crlf",
}


@pytest.fixture(scope="module")
def shaped_terminal(tmp_path_factory):
    rules = "".join(
        f'[[rule]]\nwhen = {{ amount = "{amount}" }}\noutcome = "{outcome}"\n\n' for amount, outcome in SHAPES.items()
    )
    scenario = tmp_path_factory.mktemp("shapes") / "shapes.toml"
    scenario.write_text(textwrap.dedent(rules))
    server = ServerProcess("-d", "0", "--scenario", str(scenario))
    yield server
    server.stop()


def pay(server, amount: str) -> tuple[int, dict]:
    result = client("-p", str(server.port), "-a", amount, "--json")
    return result.returncode, json.loads(result.stdout)


@pytest.mark.parametrize(("amount", "authorised"), [("1.01", "0.50"), ("1.02", "0.51")])
def test_partial_authorisation(shaped_terminal, amount, authorised):
    code, report = pay(shaped_terminal, amount)
    assert code == 5
    assert report["partial"] == {"authorised": authorised, "requested": amount, "currency": "EUR"}
    assert report["result"] == f"success: partial authorisation {authorised} of {amount} EUR"


def test_extended_af(shaped_terminal):
    code, report = pay(shaped_terminal, "1.03")
    assert code == 1 and report["result"] == "failure: refused (AF=04)"
    assert report["answer"]["af"]["fields"]["response_code"] == "05"
    assert report["answer"]["af"]["fields"]["message"] == "TRANSACTION REFUSEE"


def test_padded_amount(shaped_terminal):
    code, report = pay(shaped_terminal, "1.04")
    cb = next(record["value"] for record in report["answer"]["records"] if record["tag"] == "CB")
    assert code == 0 and cb == "000000000104" and report["warnings"] == []  # compared as a number


def test_pending(shaped_terminal):
    code, report = pay(shaped_terminal, "1.05")
    assert code == 0 and report["interim"]["frame"].endswith("AE00211") and report["result"] == "success"


def test_crlf(shaped_terminal):
    code, report = pay(shaped_terminal, "1.06")
    assert code == 0 and report["trailing"] == "\\r\\n"
    assert report["warnings"] == ["2 stray bytes after the answer: \\r\\n"]
