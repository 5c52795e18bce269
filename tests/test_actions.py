"""The terminal's answer to every action, profile, ticket variant and malformed request (no network)."""

import random
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caisse_ap_ip import tags
from caisse_ap_ip.amounts import currency_from_code
from caisse_ap_ip.client import build_request, with_records
from caisse_ap_ip.codes import ACTION_CODES, FAILURE_TYPES, STATUS_COMPLEMENTS
from caisse_ap_ip.display import tickets
from caisse_ap_ip.profiles import PROFILES
from caisse_ap_ip.protocol import encode
from caisse_ap_ip.terminal import Terminal, TerminalSettings
from caisse_ap_ip.tickets import MAX_ZT_SIZE

NOW = datetime(2026, 3, 14, 10, 42, 17)


def terminal(**settings) -> Terminal:
    return Terminal(TerminalSettings(**settings), random.Random(42), lambda: NOW)


def request(action="debit", amount="112.45", currency="EUR", **options):
    return build_request(action, Decimal(amount), currency_from_code(currency), **options)


def answer(term: Terminal, req) -> dict[str, str]:
    return dict(term.respond(req).records)


# -- actions (docs/protocol.md §7)


@pytest.mark.parametrize("action", ["debit", "refund", "deferred"])
def test_payment_actions_succeed_with_card_data(action):
    fields = answer(terminal(), request(action))
    assert (fields["CD"], fields["AE"], fields["CC"]) == (ACTION_CODES[action], "10", "001")


def test_cancellation_finds_the_debit_by_amount_and_marks_it_cancelled():
    term = terminal()
    debit = answer(term, request(amount="20"))
    cancel = answer(term, request("cancel", amount="20"))
    assert (cancel["AE"], cancel["CD"], cancel["AC"], cancel["AA"]) == ("10", "2", debit["AC"], debit["AA"])
    assert answer(term, request("cancel", amount="20"))["AF"] == "04"  # already cancelled


def test_cancellation_by_reference_picks_that_debit():
    term = terminal()
    first = answer(term, request(amount="20", reference="ORDER-1"))
    answer(term, request(amount="20", reference="ORDER-2"))
    assert answer(term, request("cancel", amount="20", reference="ORDER-1"))["AC"] == first["AC"]
    assert answer(term, request("cancel", amount="20", reference="ORDER-3"))["AF"] == "04"


@pytest.mark.parametrize(("amount", "currency"), [("21", "EUR"), ("20", "USD")], ids=["other amount", "other currency"])
def test_a_cancellation_that_matches_nothing_is_refused(amount, currency):
    term = terminal()
    answer(term, request(amount="20"))
    fields = answer(term, request("cancel", amount=amount, currency=currency))
    assert (fields["AE"], fields["AF"]) == ("01", "04")


def test_duplicata_reprints_the_last_ticket():
    term = terminal()
    assert answer(term, request("duplicate"))["AF"] == "07"  # nothing to reprint yet
    answer(term, request(amount="7.50"))
    assert term.plan(request("duplicate")).delay == 0
    reply = term.respond(request("duplicate"))
    (ticket,) = tickets(reply.records)
    assert "DUPLICATA" in ticket["text"] and "7,50 EUR" in ticket["text"] and "TICKET CLIENT" in ticket["text"]


def test_a_duplicata_with_ck_000_is_printed_on_the_terminal_only():
    term = terminal()
    term.respond(request())
    fields = answer(term, with_records(request("duplicate"), [("CK", "000")]))
    assert fields["AE"] == "10" and "ZT" not in fields


def test_identification_answers_with_the_terminal_own_version_and_identifier():
    assert encode(terminal(terminal_id="123456789012").respond(request("identify")).records) == (
        b"CZ0040301CJ012123456789012CA00201CD001IAE00210"
    )


def test_print_shows_the_buffer_and_answers_success():
    reply = terminal().respond(request("print", print_text="BON DE RETRAIT N. 42\n"))
    assert encode(reply.records) == b"CZ0040300CJ012012345678901CA00201CD001PAE00210"
    assert reply.note == "printed:\nBON DE RETRAIT N. 42\n"


def test_print_of_a_buffer_that_is_not_ck_ak_records_is_a_format_error():
    req = with_records(request("print"), [("ZT", "not records")])
    assert answer(terminal(), req)["AF"] == "09"


@pytest.mark.parametrize("action", ["telecollection", "reboot", "ctms"])
def test_terminal_management_actions_are_acknowledged(action):
    assert answer(terminal(), request(action))["AE"] == "10"


def test_transaction_status_gives_the_last_payment_result():
    term = terminal(failure=True, failure_type="refused")
    assert answer(term, request("status"))["AF"] == "07"
    answer(term, request(amount="9.99"))
    status = answer(term, request("status"))
    assert (status["CD"], status["AE"], status["AF"], status["CB"]) == ("T", "01", "04", "999")


@pytest.mark.parametrize("action", ["4", "5", "6", "9", "X"])
def test_an_action_outside_the_protocol_gets_af_12(action):
    assert answer(terminal(), with_records(request(), [("CD", action)]))["AF"] == "12"


@pytest.mark.parametrize(
    ("profile", "action"), [("nepting", "cancel"), ("nepting", "identify"), ("ingenico", "reboot")]
)
def test_an_action_the_profile_lacks_gets_af_12(profile, action):
    assert answer(terminal(profile=profile), request(action))["AF"] == "12"


@pytest.mark.parametrize("action", ["00", "01", "IX"])
def test_a_cd_that_breaks_its_size_is_a_format_error_not_an_unknown_action(action):
    assert answer(terminal(), with_records(request(), [("CD", action)]))["AF"] == "09"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_busy_and_malformed_answers_follow_the_echo_rule_of_every_answer(profile):
    term = terminal(profile=profile)
    sent = request(ticket="customer")  # carries CK, which answers carry only inside ZT
    normal = term.respond(sent).records
    for shaped in (term.reject(sent), term.busy(sent)):
        assert shaped[0] == normal[0]  # the profile's CZ, or the request's
        assert "CK" not in dict(shaped)
    assert dict(term.reject(sent))["AF"] == "09" and dict(term.busy(sent))["AF"] == "07"


# -- AF codes (docs/protocol.md §8.2)


@pytest.mark.parametrize(("name", "code"), FAILURE_TYPES.items())
def test_every_failure_name_gives_its_af(name, code):
    fields = answer(terminal(failure=True, failure_type=name), request())
    assert (fields["AE"], fields["AF"]) == ("01", code)
    assert tags.meaning("AF", code)


def test_failure_type_may_be_an_af_code():
    assert answer(terminal(failure=True, failure_type="06"), request())["AF"] == "06"


def test_every_af_code_of_the_table_can_be_produced():
    produced = {answer(terminal(failure=True, failure_type=code), request())["AF"] for code in FAILURE_TYPES.values()}
    produced.add(answer(terminal(profile="payxpert"), request())["AF"])  # 01 with a success
    assert produced == set(STATUS_COMPLEMENTS)


def test_an_unknown_payment_application_is_a_selection_error():
    assert answer(terminal(), with_records(request(), [("CC", "ZZZ")]))["AF"] == "10"


# -- validation against the tag dictionary


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ([("CA", "001")], "CA has 3 characters"),
        ([("CZ", "030")], "CZ has 3 characters"),
        ([("CB", "11.45")], "CB is not digits"),
        ([("CB", "1234567890123")], "CB has 13 characters"),
        ([("CE", "EUR")], "CE is not digits"),
        ([("BA", "2")], "BA '2' is not one of 0, 1"),
        ([("CK", "130")], "CK '130' is not a ticket choice"),
        ([("CF", "x" * 100)], "CF has 100 characters"),
        ([("BH", "0612")], "BH has 4 characters"),
    ],
)
def test_values_that_break_the_dictionary_are_format_errors(change, reason):
    reply = terminal().respond(with_records(request(), change))
    assert dict(reply.records)["AF"] == "09"
    assert reason in reply.note


def test_a_tag_twice_is_a_format_error():
    assert answer(terminal(), [*request(), ("CB", "100")])["AF"] == "09"


def test_cz_not_first_is_a_format_error():
    req = request()
    fields = answer(terminal(), [req[1], req[0], *req[2:]])
    assert fields["AF"] == "09"


def test_unknown_tags_and_terminal_tags_in_a_request_are_ignored():
    assert answer(terminal(), [*request(), ("XY", "whatever"), ("AE", "10")])["AE"] == "10"


def test_one_digit_amounts_as_odoo_sends_them_are_accepted_unless_strict():
    req = with_records(request(), [("CB", "5")])
    assert answer(terminal(), req)["AE"] == "10"
    assert answer(terminal(strict=True), req)["AF"] == "09"


# -- currencies


def test_every_currency_is_accepted_by_default_and_a_set_can_be_configured():
    usd = request(currency="USD")
    assert answer(terminal(), usd)["AE"] == "10"
    assert answer(terminal(currencies=frozenset({"978"})), usd)["AF"] == "13"
    assert answer(terminal(currencies=frozenset({"978", "953", "840"})), usd)["AE"] == "10"


def test_a_currency_number_outside_iso_4217_is_refused():
    assert answer(terminal(), with_records(request(), [("CE", "999")]))["AF"] == "13"


# -- tickets (docs/protocol.md §10)


@pytest.mark.parametrize(
    ("ticket", "fmt", "expected"),
    [
        ("customer", "text", ["customer ticket, text"]),
        ("merchant", "text", ["merchant ticket, text"]),
        ("both", "text", ["customer ticket, text", "merchant ticket, text"]),
        ("customer", "html", ["customer ticket, HTML"]),
        ("both", "html", ["customer ticket, HTML", "merchant ticket, HTML"]),
    ],
)
def test_tickets_requested_with_ck_come_back_in_zt(ticket, fmt, expected):
    reply = terminal().respond(request(ticket=ticket, ticket_format=fmt))
    fields = dict(reply.records)
    assert "CK" not in fields  # only inside ZT
    found = tickets(reply.records)
    assert [t["meaning"] for t in found] == expected
    for t in found:
        assert "LE 14/03/26 A 10:42:17" in t["text"] and "112,45 EUR" in t["text"] and "DEBIT" in t["text"]
        assert f"NUM AUTO : {fields['AC']}" in t["text"] and fields["AA"][-4:] in t["text"]
        assert ("<html>" in t["text"]) == (fmt == "html")
    assert ("TICKET COMMERÇANT" in found[-1]["text"]) == (ticket != "customer")


def test_no_ticket_when_ck_says_so():
    assert "ZT" not in answer(terminal(), with_records(request(), [("CK", "000")]))


@pytest.mark.parametrize(("failure_type", "line"), [("abandon", "ABANDON DEBIT"), ("refused", "DEBIT REFUSE")])
def test_failures_carry_a_ticket_that_says_so(failure_type, line):
    reply = terminal(failure=True, failure_type=failure_type).respond(request(ticket="customer"))
    (ticket,) = tickets(reply.records)
    assert line in ticket["text"] and "NUM AUTO" not in ticket["text"]


def test_ticket_amounts_use_the_currency_decimals():
    for currency, amount, printed in [("JPY", "1500", "1500 JPY"), ("TND", "1.234", "1,234 TND")]:
        (ticket,) = tickets(terminal().respond(request(amount=amount, currency=currency, ticket="customer")).records)
        assert printed in ticket["text"]


def test_refund_cancellation_and_check_tickets_name_the_operation():
    term = terminal()
    (refund,) = tickets(term.respond(request("refund", ticket="customer")).records)
    assert "CREDIT" in refund["text"]
    term.respond(request(amount="3"))
    (cancel,) = tickets(term.respond(request("cancel", amount="3", ticket="customer")).records)
    assert "ANNULATION" in cancel["text"]
    (check,) = tickets(term.respond(request(check=True, ticket="customer")).records)
    assert check["text"].startswith("CHEQUE\n") and "####" not in check["text"]


def test_zt_stays_within_999_characters_in_the_worst_case():
    term = terminal(merchant_name="M" * 24, merchant_town="T" * 24, seller_contract="1234567890",
                    payment_type="cbcontactless")  # fmt: skip
    term.respond(request(amount="9999999999.99"))
    for ticket in ("customer", "merchant", "both"):
        for fmt in ("text", "html"):
            for action in ("debit", "duplicate"):
                zt = answer(term, request(action, amount="9999999999.99", ticket=ticket, ticket_format=fmt))["ZT"]
                assert len(zt) <= MAX_ZT_SIZE


def test_tickets_are_latin1():
    (ticket,) = tickets(terminal(merchant_name="CAFÉ DE LA GARE").respond(request(ticket="merchant")).records)
    assert "CAFÉ DE LA GARE" in ticket["text"] and "COMMERÇANT" in ticket["text"]


# -- profiles (docs/protocol.md §13)


def test_every_profile_is_documented_and_answers_a_debit():
    for name, profile in PROFILES.items():
        assert profile.description
        assert answer(terminal(profile=name), request())["AE"] == "10"


def test_ingenico_profile():
    term = terminal(profile="ingenico")
    assert answer(term, request())["CB"] == "000000011245"
    assert answer(term, [*request(), ("BF", "0")])["AF"] == "09"
    red_key = answer(terminal(profile="ingenico", failure=True, failure_type="abandon"), request())
    assert (red_key["AF"], red_key["CB"]) == ("11", "000000000000")
    refused = answer(terminal(profile="ingenico", failure=True, failure_type="refused"), request())
    assert refused["CB"] == "000000011245"


def test_payxpert_profile():
    reply = terminal(profile="payxpert").respond(request())
    fields = dict(reply.records)
    assert (fields["CZ"], fields["AE"], fields["AF"], fields["AL"]) == ("0320", "10", "01", "1")
    assert fields["AA"][6:12] == "******"
    assert [tag for tag, _ in reply.records].index("AL") == [tag for tag, _ in reply.records].index("AA") + 1


def test_nepting_profile():
    fields = answer(terminal(profile="nepting"), request(private_data="ORDER-9"))
    assert not {"AA", "AB", "AI", "CI"} & fields.keys()
    assert {"CC", "AC", "CG"} <= fields.keys() and fields["CF"] == "ORDER-9"
    failed = terminal(profile="nepting", failure=True).respond(request(private_data="ORDER-9", ticket="customer"))
    fields = dict(failed.records)
    assert (fields["AE"], fields["CF"]) == ("01", "ORDER-9") and "AC" in fields
    assert "ABANDON DEBIT" in tickets(failed.records)[0]["text"]


def test_original_profile_matches_the_reference_answer_shape():
    reply = terminal().respond(request())
    added = [tag for tag, _ in reply.records][len(request()) :]
    assert added == ["AE", "CC", "CI", "AC", "AA", "AI", "AB", "CF", "CG"]


# -- immediate answer (docs/protocol.md §12.5)


def test_immediate_modes():
    assert answer(terminal(), request(immediate=True))["AE"] == "11"
    busy = answer(terminal(immediate="busy"), request(immediate=True))
    assert (busy["AE"], busy["AF"]) == ("01", "07")
    term = terminal(immediate="accept")
    assert term.plan(request(immediate=True)).delay == 0
    accepted = term.respond(request(immediate=True))
    assert dict(accepted.records)["AE"] == "10" and "AC" not in dict(accepted.records)
    assert answer(term, request("status"))["AC"]  # the result comes with a status request


# -- reproducibility


def test_the_same_seed_gives_the_same_answers():
    def run():
        term = terminal()
        return [encode(term.respond(request(ticket="both")).records) for _ in range(3)]

    assert run() == run()
    assert run()[0] != run()[1]


# -- robustness: whatever the records, an answer and never an exception

known_tags = st.sampled_from([*sorted(tags.SPECS), "XY", "Z9"])
coded_values = st.one_of(
    st.sampled_from(["0", "1", "2", "3", "7", "B", "I", "P", "R", "C", "T", "00C", "100", "121", "978", "999", "05"]),
    st.text(alphabet="0123456789", min_size=1, max_size=14),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=40),
)
any_request = st.lists(st.tuples(known_tags, coded_values), max_size=12).map(
    lambda records: [("CZ", "0300"), ("CJ", "012345678901"), ("CA", "01"), *records]
)


@settings(max_examples=300, deadline=None)
@given(any_request, st.sampled_from(sorted(PROFILES)), st.booleans(), st.booleans())
def test_any_request_gets_an_answer_never_an_exception(req, profile, failure, strict):
    term = terminal(profile=profile, failure=failure, strict=strict)
    term.respond(request())  # something to cancel, reprint or report
    reply = term.respond(req)
    fields = dict(reply.records)
    assert reply.records[0][0] == "CZ" and fields["AE"] in ("10", "01", "11")
    encode(reply.records)  # always a valid frame


def test_a_print_buffer_cannot_drive_the_operators_terminal():
    reply = terminal().respond(request("print", print_text="\x1b[31mRED\x1b]0;title\x07\nMERCI"))
    assert "\x1b" not in reply.note and "\x07" not in reply.note
    assert reply.note == "printed:\n\\x1b[31mRED\\x1b]0;title\\x07\nMERCI"
