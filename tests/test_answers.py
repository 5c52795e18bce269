"""The POS reading an answer without a socket: when bytes are a whole answer, and what the answer says."""

import itertools
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caisse_ap_ip.amounts import currency_from_code
from caisse_ap_ip.answers import AnswerReader, Expectation, Progress, complement, echo_mismatches
from caisse_ap_ip.answers import partial_authorisation as partial
from caisse_ap_ip.client import build_request, with_records
from caisse_ap_ip.protocol import decode, encode

EUR = currency_from_code("EUR")
DEBIT = build_request("debit", Decimal("112.45"), EUR)
ECHO = encode(DEBIT)
SUCCESS = (
    ECHO
    + b"AE00210CC003001CI0011AC006583014AA016497010######4127AI014A0000000421010AB0042612CF0101010000000CG006424242"
)
REFUSED = ECHO + b"AE00201AF00204"
INTERIM = ECHO + b"AE00211"


def read(data: bytes, request=DEBIT, profile="original", wait_final=False, cuts=()) -> AnswerReader:
    reader = AnswerReader(Expectation.of(request, profile, wait_final))
    bounds = [0, *sorted(set(cuts)), len(data)]
    for start, end in itertools.pairwise(bounds):
        reader.receive(data[start:end])
    return reader


def test_a_whole_card_success_is_complete_at_once():
    reader = read(SUCCESS)
    assert reader.progress is Progress.COMPLETE and encode(reader.final) == SUCCESS


def test_a_success_cut_before_its_card_records_waits_for_them():
    cut = SUCCESS.index(b"CC003001")
    reader = read(SUCCESS[:cut])
    assert reader.progress is Progress.QUIET  # on a record boundary, but the card records are missing
    assert reader.receive(SUCCESS[cut:]) is Progress.COMPLETE


def test_a_record_not_yet_whole_waits_for_the_rest():
    assert read(SUCCESS[:-3]).progress is Progress.WAITING


@pytest.mark.parametrize(
    ("profile", "answer"),
    [
        ("nepting", ECHO + b"AE00210CC003001AC006583014CF0101010000000CG006424242"),  # no AA, AB, AI, CI
        ("payxpert", SUCCESS.replace(b"AI014", b"AL0011AI014")),
    ],
)
def test_the_profile_says_which_card_records_complete_a_success(profile, answer):
    assert read(answer, profile=profile).progress is Progress.COMPLETE
    assert read(answer[: answer.index(b"AC006")], profile=profile).progress is Progress.QUIET


def test_a_failure_is_whole_with_its_af():
    assert read(REFUSED).progress is Progress.COMPLETE
    assert read(ECHO + b"AE00201").progress is Progress.QUIET


def test_a_check_success_carries_no_card_records():
    check = build_request("debit", Decimal("45"), EUR, check=True)
    assert read(encode(check) + b"AE00210", request=check).progress is Progress.COMPLETE


def test_asked_tickets_complete_the_answer():
    with_ticket = build_request("debit", Decimal("112.45"), EUR, ticket="customer")
    echo = encode(with_ticket).replace(b"CK003100", b"")
    ticket = b"ZT017CK003100AK004QUJD"
    assert read(echo + SUCCESS[len(ECHO) :], request=with_ticket).progress is Progress.QUIET
    assert read(echo + SUCCESS[len(ECHO) :] + ticket, request=with_ticket).progress is Progress.COMPLETE


def test_an_interim_ae_11_is_followed_by_the_final_answer_when_ba_is_0():
    reader = read(INTERIM)
    assert reader.progress is Progress.WAITING and reader.awaiting_final
    assert reader.receive(SUCCESS) is Progress.COMPLETE
    assert encode(reader.interim) == INTERIM and encode(reader.final) == SUCCESS and not reader.trailing


def test_an_ae_11_to_an_immediate_request_is_the_answer_unless_waiting_for_the_final_one():
    immediate = build_request("debit", Decimal("112.45"), EUR, immediate=True)
    ack = encode(immediate) + b"AE00211"
    assert read(ack, request=immediate).progress is Progress.COMPLETE
    assert read(ack, request=immediate, wait_final=True).progress is Progress.WAITING


@pytest.mark.parametrize("stray", [b"\r\n", b"\x00", b"\x00\xffGARBAGE\r\n", b"\n"])
def test_stray_bytes_after_a_whole_answer_are_trailing_not_malformed(stray):
    reader = read(REFUSED + stray)
    assert reader.progress is Progress.COMPLETE and reader.usable
    assert encode(reader.final) == REFUSED and reader.trailing == stray


def test_a_second_message_after_the_answer_is_trailing():
    reader = read(REFUSED + SUCCESS)
    assert reader.progress is Progress.COMPLETE and encode(reader.final) == REFUSED and reader.trailing == SUCCESS


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n", "length is not three digits at byte 2"),
        (ECHO[:20] + b"\xe9", "non-ASCII byte at byte 20"),
        (b"\x02" + b"1" * 20 + b"\x03", "tag is not two upper-case letters or digits at byte 0"),
    ],
)
def test_bytes_that_are_no_answer_are_malformed_with_the_first_bad_byte(data, problem):
    reader = read(data)
    assert reader.progress is Progress.MALFORMED and not reader.usable
    assert reader.problem("T") == f"malformed answer from T: {problem}"


def test_an_answer_cut_inside_a_record_is_not_usable():
    reader = read(SUCCESS[:-3])
    assert (
        not reader.usable
        and reader.problem("T") == f"malformed answer from T: truncated record at byte {len(SUCCESS) - 3}"
    )


def test_an_answer_with_the_terminal_own_cz_is_read_like_any_other():
    own = SUCCESS.replace(b"CZ0040300", b"CZ0040301", 1)
    assert read(own).progress is Progress.COMPLETE


def test_a_request_that_could_not_be_decoded_leaves_completeness_to_the_quiet_time():
    reader = AnswerReader(Expectation.of(None))
    assert reader.receive(SUCCESS) is Progress.QUIET


answer_shapes = st.sampled_from([SUCCESS, REFUSED, INTERIM + SUCCESS, REFUSED + b"\r\n", SUCCESS[:-3]])


@given(answer_shapes, st.lists(st.integers(min_value=0, max_value=400)))
def test_any_cutting_gives_the_same_answer(data, cuts):
    whole, pieces = read(data), read(data, cuts=[cut for cut in cuts if cut <= len(data)])
    assert (pieces.progress, pieces.final, pieces.interim, pieces.trailing) == (
        whole.progress, whole.final, whole.interim, whole.trailing,
    )  # fmt: skip


# -- what an answer says


def test_a_success_for_less_than_requested_is_a_partial_authorisation():
    answer = decode(SUCCESS.replace(b"CB00511245", b"CB0041000"))
    assert partial(DEBIT, answer) == {"authorised": "10.00", "requested": "112.45", "currency": "EUR"}
    assert echo_mismatches(DEBIT, answer) == []  # reported as partial, not as a wrong echo
    assert partial(DEBIT, decode(SUCCESS)) is None
    assert partial(DEBIT, decode(SUCCESS.replace(b"CB00511245", b"CB012000000011245"))) is None  # padded


def test_a_failure_or_a_zero_amount_is_no_partial_authorisation():
    assert partial(DEBIT, decode(REFUSED.replace(b"CB00511245", b"CB0041000"))) is None
    assert partial(DEBIT, decode(SUCCESS.replace(b"CB00511245", b"CB00200"))) is None


def test_echo_modes():
    padded = decode(SUCCESS.replace(b"CB00511245", b"CB012000000011245"))
    assert echo_mismatches(DEBIT, padded, "numeric") == []
    assert echo_mismatches(DEBIT, padded, "exact") == ["CB answered '000000011245', sent '11245'"]
    wrong = decode(SUCCESS.replace(b"CA00201", b"CA00202"))
    assert echo_mismatches(DEBIT, wrong, "off") == []
    assert echo_mismatches(DEBIT, wrong) == ["CA answered '02', sent '01'"]
    assert echo_mismatches(with_records(DEBIT, [("CD", "3")]), wrong) == []  # only payments echo an amount


def test_af_is_its_code_then_the_cb2a_extension_field_by_field():
    extended = "04" + "51" + "FONDS INSUFFISANTS".ljust(21) + "  " + "02"
    assert complement(extended) == {
        "code": "04",
        "meaning": "refused",
        "extension": extended[2:],
        "fields": {"response_code": "51", "message": "FONDS INSUFFISANTS", "check_results": None,
                   "non_completion": "02"},
    }  # fmt: skip
    assert complement("04") == {"code": "04", "meaning": "refused", "extension": None, "fields": None}
    assert complement("04" + "X" * 40)["fields"] is None  # longer than the CB2A layout: shown as it is


def test_a_failure_with_asked_tickets_waits_for_its_ticket():
    with_ticket = build_request("debit", Decimal("112.45"), EUR, ticket="customer")
    refused = encode(with_ticket).replace(b"CK003100", b"") + b"AE00201AF00204"
    assert read(refused, request=with_ticket).progress is Progress.QUIET
    assert read(refused + b"ZT017CK003100AK004QUJD", request=with_ticket).progress is Progress.COMPLETE


@pytest.mark.parametrize("stray", [b"\r\n", b"\x00", b"\r\n\r\n"])
def test_stray_bytes_after_an_interim_answer_do_not_hide_the_final_one(stray):
    reader = read(INTERIM + stray)
    assert reader.progress is Progress.WAITING and reader.awaiting_final
    assert reader.receive(SUCCESS + b"\r\n") is Progress.COMPLETE
    assert encode(reader.interim) == INTERIM and encode(reader.final) == SUCCESS and reader.trailing == b"\r\n"


def test_a_cr_alone_after_the_answer_waits_a_quiet_time_for_its_lf():
    reader = read(REFUSED + b"\r")
    assert reader.progress is Progress.QUIET
    assert reader.receive(b"\n") is Progress.COMPLETE and reader.trailing == b"\r\n"


def test_a_stray_record_start_after_a_whole_answer_is_trailing_after_the_quiet_time():
    reader = read(REFUSED + b"0")
    assert reader.progress is Progress.QUIET and reader.usable and reader.trailing == b"0"
    assert not read(SUCCESS[:-3]).usable  # but a record of the answer itself cut: malformed


def test_a_partial_success_to_a_request_without_currency_does_not_crash():
    without_ce = [(tag, value) for tag, value in DEBIT if tag != "CE"]
    answer = decode(SUCCESS.replace(b"CB00511245", b"CB0041000"))
    assert partial(without_ce, answer)["currency"] == "?"
