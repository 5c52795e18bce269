"""The client library: building requests and reading whole answers however they come."""

import socket
from decimal import Decimal

import pytest
from helpers import REQUEST, answering, fake_terminal, split

from caisse_ap_ip.amounts import currency_from_code
from caisse_ap_ip.answers import echo_mismatches
from caisse_ap_ip.client import ClientError, payment_request, transact
from caisse_ap_ip.protocol import decode, encode

EUR = currency_from_code("EUR")
ANSWER = (
    b"CZ0040300CJ012012345678901CA00201CE003978BA0010CD0010CB00511245AE00210CC003001CI0011AC006583014"
    b"AA016497010######4127AI014A0000000421010AB0042612CF0101010000000CG006424242"
)


def pay(port, amount="112.45", currency="EUR", check=False, **options):
    request = payment_request(Decimal(amount), currency_from_code(currency), check=check)
    return transact("127.0.0.1", port, request, **options)


def test_builds_the_request_the_original_client_sends():
    assert encode(payment_request(Decimal("112.45"), EUR)) == REQUEST
    assert encode(payment_request(Decimal("-20"), EUR, check=True)).endswith(b"CD0011CB0042000CC00300C")
    assert encode(payment_request(Decimal("0.05"), EUR)).endswith(b"CB00205")
    assert encode(payment_request(Decimal("1500"), currency_from_code("JPY"))).endswith(
        b"CE003392BA0010CD0010CB0041500"
    )


@pytest.mark.parametrize(
    ("options", "amount", "currency", "check", "expected"),
    [
        ((), "112.45", "EUR", False, {"AE": "10", "CD": "0", "CC": "001"}),
        ((), "-20", "EUR", False, {"AE": "10", "CD": "1", "CB": "2000"}),
        ((), "45", "EUR", True, {"AE": "10", "CC": "00C"}),
        ((), "1500", "JPY", False, {"AE": "10", "CE": "392", "CB": "1500"}),
        ((), "20", "USD", False, {"AE": "10", "CE": "840"}),
        (("-f",), "112.45", "EUR", False, {"AE": "01", "AF": "11"}),
        (("-f", "-ft", "timeout"), "112.45", "EUR", False, {"AE": "01", "AF": "08"}),
        (("-f", "-ft", "refused"), "112.45", "EUR", False, {"AE": "01", "AF": "04"}),
        (("-f", "-ft", "forbidden"), "112.45", "EUR", False, {"AE": "01", "AF": "05"}),
        (("-f", "-ft", "timeout"), "45", "EUR", True, {"AE": "01", "AF": "04"}),
    ],
)
def test_against_the_simulator(terminal_server, options, amount, currency, check, expected):
    server = terminal_server("-d", "0", *options)
    exchange = pay(server.port, amount, currency, check, quiet_time=0.05)
    fields = dict(exchange.answer)
    assert {tag: fields.get(tag) for tag in expected} == expected
    assert exchange.answer[: len(exchange.request)] == exchange.request  # the echo
    assert not exchange.closed_by_terminal


@pytest.mark.parametrize(
    "pieces",
    [
        split(ANSWER, 9, 25),  # where the Odoo module's fake terminal cuts
        split(ANSWER, 7, 20),
        split(ANSWER, 9, 26, 33, 42),  # on record boundaries
        split(ANSWER, *range(1, len(ANSWER))),  # byte by byte
    ],
)
def test_a_fragmented_answer_is_read_whole(pieces):
    with fake_terminal(answering(pieces, pause=0.2 / len(pieces))) as port:
        exchange = pay(port, quiet_time=0.5)
    assert exchange.answer_bytes == ANSWER


def test_a_terminal_that_closes_after_answering_is_read_whole():
    with fake_terminal(answering([ANSWER])) as port:
        exchange = pay(port, quiet_time=30)
    assert exchange.answer_bytes == ANSWER and not exchange.trailing


def test_a_terminal_that_keeps_the_line_open_is_read_whole():
    with fake_terminal(answering([ANSWER], then_close=False)) as port:
        exchange = pay(port, quiet_time=30)  # the answer is whole by its own evidence: no quiet time needed
    assert exchange.answer_bytes == ANSWER
    assert not exchange.closed_by_terminal


def test_an_answer_lacking_its_card_records_is_taken_after_the_quiet_time():
    without_card = ANSWER[: ANSWER.index(b"CC003")]
    with fake_terminal(answering([without_card], then_close=False)) as port:
        exchange = pay(port, quiet_time=0.05)
    assert exchange.answer_bytes == without_card and not exchange.closed_by_terminal


def test_an_answer_longer_than_1024_bytes_is_read_whole():
    ticket = encode([("CK", "100"), ("AK", "Q" * 900)])
    answer = ANSWER + encode([("ZT", ticket.decode())])
    assert len(answer) > 1024
    with fake_terminal(answering(split(answer, 500, 1024), pause=0.02, then_close=False)) as port:
        exchange = pay(port, quiet_time=0.5)
    assert dict(exchange.answer)["ZT"] == ticket.decode()


def test_only_the_first_message_is_the_answer():
    second = ANSWER.replace(b"AE00210", b"AE00201")
    with fake_terminal(answering([ANSWER + second], then_close=False)) as port:
        exchange = pay(port, quiet_time=30)
    assert exchange.answer == decode(ANSWER) and exchange.trailing == second


@pytest.mark.parametrize(
    ("pieces", "message"),
    [
        ([], "closed the connection without answering"),
        ([ANSWER[:30]], "truncated record at byte 30"),
        (
            [b"HTTP/1.1 400 Bad Request\r\n"],
            "malformed answer from 127.0.0.1:\\d+: length is not three digits at byte 2",
        ),
        ([ANSWER[:20] + b"\xe9"], "non-ASCII byte at byte 20"),
    ],
)
def test_unusable_answers_are_reported(pieces, message):
    with fake_terminal(answering(pieces)) as port, pytest.raises(ClientError, match=message):
        pay(port)


def test_a_silent_terminal_times_out():
    silent = answering([], then_close=False, linger=5)
    with (
        fake_terminal(silent) as port,
        pytest.raises(ClientError, match=r"no complete answer from 127.0.0.1:\d+ within 0.3 s"),
    ):
        pay(port, timeout=0.3)


def test_a_terminal_stuck_mid_record_times_out():
    stuck = answering([ANSWER[:40]], then_close=False, linger=5)
    with fake_terminal(stuck) as port, pytest.raises(ClientError, match="no complete answer"):
        pay(port, timeout=0.5, quiet_time=0.1)


def test_a_refused_connection_is_reported():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(ClientError, match=f"connection refused by 127.0.0.1:{port}"):
            pay(port)


def test_echo_mismatches_are_found_zero_padding_aside():
    request = payment_request(Decimal("112.45"), EUR)
    answer = decode(ANSWER.replace(b"CB00511245", b"CB012000000011245"))
    assert echo_mismatches(request, answer) == []
    answer = decode(ANSWER.replace(b"CB00511245", b"CB00500000").replace(b"CA00201", b"CA00202"))
    assert echo_mismatches(request, answer) == ["CA answered '02', sent '01'", "CB answered '00000', sent '11245'"]


INTERIM = ANSWER[: ANSWER.index(b"AE00210")] + b"AE00211"


def test_an_interim_ae_11_is_followed_by_the_final_answer_on_the_same_connection():
    with fake_terminal(answering([INTERIM, ANSWER], pause=0.05, then_close=False)) as port:
        exchange = pay(port, quiet_time=30)
    assert encode(exchange.interim) == INTERIM and exchange.answer_bytes == ANSWER
    assert not exchange.final_missing


def test_a_terminal_that_closes_after_the_interim_answer_leaves_it_as_the_answer():
    with fake_terminal(answering([INTERIM])) as port:
        exchange = pay(port)
    assert exchange.answer_bytes == INTERIM and exchange.final_missing and exchange.closed_by_terminal


@pytest.mark.parametrize("stray", [b"\r\n", b"\x00"])
def test_stray_bytes_after_the_answer_are_kept_apart(stray):
    with fake_terminal(answering([ANSWER + stray], then_close=False)) as port:
        exchange = pay(port, quiet_time=30)
    assert exchange.answer_bytes == ANSWER and exchange.trailing == stray


EXTENDED_AF = ANSWER[: ANSWER.index(b"AE00210")] + b"AE00201AF029" + b"0451" + b"SOLDE INSUFFISANT".ljust(21) + b"  02"


@pytest.mark.parametrize(
    "answer",
    [
        ANSWER.replace(b"CZ0040300", b"CZ0040301"),  # the terminal's own version
        ANSWER.replace(b"CB00511245", b"CB012000000011245"),  # zero-padded amount
        EXTENDED_AF,  # CB2A sub-fields after the AF code
    ],
    ids=["cz-0301", "padded-cb", "extended-af"],
)
def test_answer_shapes_of_real_terminals_are_read_whole(answer):
    with fake_terminal(answering(split(answer, 11, 40), pause=0.02, then_close=False)) as port:
        exchange = pay(port, quiet_time=30)
    assert exchange.answer_bytes == answer and not exchange.trailing
