"""What real POS software sends (docs/protocol.md §14): accepted by default, refused under --strict."""

import random
from datetime import datetime

import pytest
from helpers import REQUEST, InProcessTerminal

from caisse_ap_ip.outcomes import parse
from caisse_ap_ip.protocol import decode, encode
from caisse_ap_ip.terminal import Terminal, TerminalSettings

AKRETION = REQUEST  # the original client's request


def answer(frame: bytes, outcome: str = "answer", **settings) -> dict[str, str]:
    term = Terminal(TerminalSettings(duration=0, **settings), random.Random(1), lambda: datetime(2026, 3, 14))
    return dict(term.respond(decode(frame), parse(outcome)).records)


VARIANTS = {
    "CJ of 3 characters": AKRETION.replace(b"CJ012012345678901", b"CJ003012"),
    "CJ of 8 digits": AKRETION.replace(b"CJ012012345678901", b"CJ00801234567"),
    "CB of 1 digit": AKRETION.replace(b"CB00511245", b"CB0015"),
    "CA of 1 digit": AKRETION.replace(b"CA00201", b"CA0011"),
}
ALWAYS_ACCEPTED = {
    "CB zero-padded to 12 digits": AKRETION.replace(b"CB00511245", b"CB012000000011245"),
    "CZ 0301": AKRETION.replace(b"CZ0040300", b"CZ0040301"),
    "CZ 0320": AKRETION.replace(b"CZ0040300", b"CZ0040320"),
    "HiPay order": b"CZ0040320CJ012999999999999CA00201CB00511245CD0010CE003978",
    "BA last": b"CZ0040300CJ012012345678901CA00201CE003978CD0010CB00511245BA0010",
    "CF last": b"CZ0040300CJ012012345678901CA00201CE003978CD0010CB00511245CF010ORDER-1234",
    "no BA": b"CZ0040300CJ012012345678901CA00201CE003978CD0010CB00511245",
    "identification probe": b"CZ0040300CJ012012345678901CA00201CD001I",
}


@pytest.mark.parametrize("frame", VARIANTS.values(), ids=VARIANTS)
def test_variants_real_pos_send_are_accepted_by_default_and_refused_under_strict(frame):
    assert answer(frame)["AE"] == "10"
    refused = answer(frame, strict=True)
    assert (refused["AE"], refused["AF"]) == ("01", "09")


@pytest.mark.parametrize("frame", ALWAYS_ACCEPTED.values(), ids=ALWAYS_ACCEPTED)
def test_variants_within_the_dictionary_are_accepted_even_under_strict(frame):
    assert answer(frame)["AE"] == answer(frame, strict=True)["AE"] == "10"


def test_the_answer_keeps_the_request_version_unless_the_profile_has_its_own():
    frame = ALWAYS_ACCEPTED["CZ 0301"]
    assert answer(frame)["CZ"] == "0301"
    assert answer(frame, profile="payxpert")["CZ"] == "0320"


def test_a_cancel_invented_as_a_debit_without_amount_is_refused_cleanly():
    invented = b"CZ0040300CJ012012345678901CA00201CE003978CD0010CF006CANCEL"
    assert (answer(invented)["AE"], answer(invented)["AF"]) == ("01", "09")


@pytest.mark.parametrize("outcome", ["answer", "failure:refused"])
def test_tags_only_a_terminal_sends_are_never_echoed(outcome):
    sent = AKRETION + b"AF005HELLOAC006999999AA016999999######9999"
    got = answer(sent, outcome)
    assert got.get("AF") != "HELLO" and got.get("AC") != "999999" and got.get("AA") != "999999######9999"
    if outcome == "answer":
        assert got["AE"] == "10" and "AF" not in got  # a success carries no AF in the original shape
    assert answer(sent, strict=True)["AF"] == "09"  # and --strict refuses them


# -- answer shapes real terminals produce, as outcomes


def test_partial_gives_less_than_requested_as_an_amount_or_a_share():
    assert answer(AKRETION, "partial:10.00")["CB"] == "1000"
    assert answer(AKRETION, "partial:50%")["CB"] == "5622"
    assert answer(AKRETION, "partial:500")["CB"] == "11245"  # never more than asked
    assert answer(AKRETION, "partial:10.00")["AE"] == "10"


def test_extended_af_carries_cb2a_sub_fields_after_its_code():
    af = answer(AKRETION, "extended-af")["AF"]
    assert af[:2] == "04" and len(af) == 29 and af[2:4] == "05"
    assert answer(AKRETION, "extended-af:forbidden")["AF"][:4] == "0557"


def test_padded_amount_pads_cb_to_12_digits():
    assert answer(AKRETION, "padded-amount")["CB"] == "000000011245"


def test_the_interim_answer_of_a_pending_transaction_is_ae_11():
    term = Terminal(TerminalSettings(profile="payxpert"))
    interim = term.interim(decode(AKRETION + b"CK003100"))
    assert encode(interim).startswith(b"CZ0040320") and dict(interim)["AE"] == "11" and "CK" not in dict(interim)


def test_partial_applies_to_debits_only_a_refund_or_cancellation_is_whole():
    refund = AKRETION.replace(b"CD0010", b"CD0011")
    assert answer(refund, "partial:10.00")["CB"] == "11245"


@pytest.mark.parametrize("frame", VARIANTS.values(), ids=VARIANTS)
def test_variants_through_the_network_layer_too(frame):
    lenient = InProcessTerminal().exchange(frame).fields()
    strict = InProcessTerminal(strict=True).exchange(frame).fields()
    assert lenient["AE"] == "10" and (strict["AE"], strict["AF"]) == ("01", "09")
