"""The terminal's decisions, without any network."""

import random
from datetime import datetime

import pytest
from helpers import REQUEST as REQUEST_BYTES

from caisse_ap_ip.cards import PAYMENT_TYPES, pan
from caisse_ap_ip.protocol import decode, encode
from caisse_ap_ip.terminal import Terminal, TerminalSettings

ECHO = REQUEST_BYTES
REQUEST = decode(REQUEST_BYTES)


def terminal(**settings) -> Terminal:
    return Terminal(TerminalSettings(**settings), random.Random(7), lambda: datetime(2026, 11, 29, 11, 42, 17))


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


@pytest.mark.parametrize(
    ("payment_type", "cc", "ci", "aid", "pan_length"),
    [
        ("cbcontact", "001", "1", "A0000000421010", 16),
        ("cbcontactless", "00B", "2", "A0000000421010", 16),
        ("amexcontact", "002", "1", "A00000002501", 15),
        ("amexcontactless", "00D", "2", "A00000002501", 15),
    ],
)
def test_card_success_echoes_the_request_then_adds_card_data(payment_type, cc, ci, aid, pan_length):
    term = terminal(payment_type=payment_type, seller_contract="1234567890")
    assert term.plan(REQUEST).delay == 3.0
    reply = term.respond(REQUEST)
    assert encode(reply.records).startswith(ECHO + b"AE00210")
    fields = dict(reply.records)
    assert [tag for tag, _ in reply.records[len(REQUEST) :]] == ["AE", "CC", "CI", "AC", "AA", "AI", "AB", "CF", "CG"]
    assert (fields["CC"], fields["CI"], fields["AI"], fields["CG"], fields["CF"]) == (
        cc, ci, aid, "1234567890", "1010000000",
    )  # fmt: skip
    assert len(fields["AC"]) == 6 and fields["AC"].isdigit()
    pan = fields["AA"]
    assert len(pan) == pan_length and pan[6:-4] == "#" * (pan_length - 10)
    assert pan[0] in "345"
    assert fields["AB"] > "2611" and 1 <= int(fields["AB"][2:]) <= 12


@pytest.mark.parametrize("payment_type", sorted(PAYMENT_TYPES))
def test_the_masked_pan_hides_a_luhn_valid_number_of_the_brand(payment_type):
    card, rng = PAYMENT_TYPES[payment_type], random.Random(3)
    for _ in range(50):
        number = pan(card, rng.getrandbits(128))
        assert len(number) == card.pan_length and luhn_valid(number)
        assert number.startswith(card.pan_prefixes)


def test_check_success_carries_no_card_data():
    reply = terminal().respond([*REQUEST, ("CC", "00C")])
    assert encode(reply.records) == ECHO + b"CC00300CAE00210"


@pytest.mark.parametrize(
    ("failure_type", "af"), [("abandon", "11"), ("timeout", "08"), ("refused", "04"), ("forbidden", "05")]
)
def test_failure_mode_answers_the_failure_type(failure_type, af):
    term = terminal(failure=True, failure_type=failure_type, duration=0.5)
    assert term.plan(REQUEST).delay == 0.5
    reply = term.respond(REQUEST)
    assert encode(reply.records) == ECHO + b"AE00201AF002" + af.encode()


def test_a_check_always_fails_with_af_04():
    reply = terminal(failure=True, failure_type="timeout").respond([*REQUEST, ("CC", "00C")])
    assert encode(reply.records) == ECHO + b"CC00300CAE00201AF00204"


@pytest.mark.parametrize("failure", [False, True])
def test_immediate_mode_answers_ae_11_at_once(failure):
    request = [(tag, "1" if tag == "BA" else value) for tag, value in REQUEST]
    term = terminal(failure=failure)
    assert term.plan(request).delay == 0
    reply = term.respond(request)
    assert encode(reply.records) == encode(request) + b"AE00211"


@pytest.mark.parametrize("missing", ["CZ", "CJ", "CA", "CB", "CD", "CE"])
@pytest.mark.parametrize("failure", [False, True])
def test_a_missing_mandatory_tag_is_a_format_error_in_every_mode(missing, failure):
    request = [record for record in REQUEST if record[0] != missing]
    term = terminal(failure=failure)
    assert term.plan([*request, ("BA", "1")]).delay == 0
    reply = term.respond([*request, ("BA", "1")])
    fields = dict(reply.records)
    assert reply.records[0] == ("CZ", "0300")  # CZ first, even when the request had none
    assert (fields["AE"], fields["AF"]) == ("01", "09")
    assert "AC" not in fields


@pytest.mark.parametrize("action", ["9", "X", "4"])
def test_actions_outside_the_protocol_are_unknown(action):
    request = [(tag, action if tag == "CD" else value) for tag, value in REQUEST]
    assert dict(terminal().respond(request).records)["AF"] == "12"


def test_refund_is_answered_like_a_debit_with_cd_echoed():
    request = [(tag, "1" if tag == "CD" else value) for tag, value in REQUEST]
    fields = dict(terminal().respond(request).records)
    assert (fields["CD"], fields["AE"]) == ("1", "10")


@pytest.mark.parametrize("amount", ["1x", "1234567890123", "-100"])
def test_an_amount_that_is_not_2_to_12_digits_is_a_format_error(amount):
    request = [(tag, amount if tag == "CB" else value) for tag, value in REQUEST]
    assert dict(terminal().respond(request).records)["AF"] == "09"


def test_private_data_sent_by_the_pos_comes_back_unchanged():
    fields = dict(terminal().respond([*REQUEST, ("CF", "ORDER-42")]).records)
    assert fields["CF"] == "ORDER-42"


def test_completeness_needs_every_mandatory_tag():
    assert terminal().is_complete(REQUEST)
    assert not terminal().is_complete(REQUEST[:-1])
