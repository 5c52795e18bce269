"""Request assembly, byte by byte, without a reactor: bytes in, events out."""

import pytest
from helpers import REQUEST
from hypothesis import given
from hypothesis import strategies as st

from caisse_ap_ip.assembly import Malformed, Request, RequestAssembly, Wait
from caisse_ap_ip.protocol import decode, encode
from caisse_ap_ip.terminal import Terminal

CHECK = b"CC00300C"
INCOMPLETE_REQUEST = REQUEST[: REQUEST.index(b"CB")]  # no amount: lacks a mandatory tag


def assembly(max_size: int = 16384) -> RequestAssembly:
    return RequestAssembly(Terminal().is_complete, max_size)


def drain(requests: RequestAssembly) -> tuple[list[bytes], object]:
    """Every request ready now (as bytes), and the event that stopped the taking."""
    taken = []
    while type(event := requests.next_event()) is Request:
        taken.append(encode(event.records))
    return taken, event


def test_a_whole_request_in_one_piece():
    requests = assembly()
    assert requests.next_event() is Wait.NEED_DATA
    requests.receive_data(REQUEST)
    assert requests.next_event() == Request(decode(REQUEST))
    assert requests.next_event() is Wait.NEED_DATA


def test_byte_by_byte_a_request_is_whole_with_its_last_byte_only():
    requests = assembly()
    boundaries = {len(encode(decode(REQUEST)[:n])) for n in range(1, len(decode(REQUEST)))}
    for end in range(1, len(REQUEST)):
        requests.receive_data(REQUEST[end - 1 : end])
        assert requests.next_event() is (Wait.INCOMPLETE if end in boundaries else Wait.NEED_DATA), end
        assert requests.receiving
    requests.receive_data(REQUEST[-1:])
    assert not requests.receiving
    assert requests.next_event() == Request(decode(REQUEST))


def test_glued_requests_come_out_in_order_and_are_counted():
    requests = assembly()
    amounts = [f"CB004{n:04d}".encode() for n in range(20)]
    requests.receive_data(b"".join(REQUEST.replace(b"CB00511245", amount) for amount in amounts))
    assert requests.pending == 19  # the last one is closed by no following CZ: it is not counted
    taken, stopped = drain(requests)
    assert [request[-9:] for request in taken] == amounts
    assert stopped is Wait.NEED_DATA and requests.pending == 0


def test_an_incomplete_request_is_whole_once_the_assembly_time_is_up():
    requests = assembly()
    requests.receive_data(INCOMPLETE_REQUEST)
    assert requests.next_event() is Wait.INCOMPLETE
    requests.assembly_expired()
    assert requests.next_event() == Request(decode(INCOMPLETE_REQUEST))
    requests.receive_data(INCOMPLETE_REQUEST)
    assert requests.next_event() is Wait.INCOMPLETE  # the expiry was that request's, not the next one's


def test_bytes_arriving_after_the_expiry_restart_the_wait():
    requests = assembly()
    requests.receive_data(INCOMPLETE_REQUEST)
    requests.assembly_expired()
    requests.receive_data(b"CH005REF42")  # still no amount
    assert requests.next_event() is Wait.INCOMPLETE
    requests.receive_data(b"CB00511245")
    assert requests.next_event() == Request(decode(INCOMPLETE_REQUEST + b"CH005REF42CB00511245"))


def test_at_eof_what_ends_on_a_record_boundary_is_whole():
    requests = assembly()
    requests.receive_data(REQUEST + INCOMPLETE_REQUEST)
    requests.receive_data(b"")
    assert drain(requests) == ([REQUEST, INCOMPLETE_REQUEST], Wait.END)


def test_at_eof_a_record_cut_short_is_dropped():
    requests = assembly()
    requests.receive_data(REQUEST + REQUEST[:12])
    requests.receive_data(b"")
    assert drain(requests) == ([REQUEST], Wait.END)
    requests.receive_data(REQUEST)  # nothing counts after EOF
    assert requests.next_event() is Wait.END


def test_records_without_a_cz_arriving_after_a_request_was_taken_are_late_records():
    requests = assembly()
    requests.receive_data(REQUEST)
    assert type(requests.next_event()) is Request
    assert requests.late_records() == []
    requests.receive_data(CHECK)
    assert not requests.receiving  # whole records: nothing is on its way
    assert requests.late_records() == [("CC", "00C")]
    assert requests.next_event() is Wait.NEED_DATA


def test_late_records_followed_by_the_next_request():
    requests = assembly()
    requests.receive_data(REQUEST)
    requests.next_event()
    requests.receive_data(CHECK + REQUEST)
    assert requests.late_records() == [("CC", "00C")]
    assert requests.next_event() == Request(decode(REQUEST))


def test_late_records_survive_eof_until_collected():
    requests = assembly()
    requests.receive_data(REQUEST)
    requests.next_event()
    requests.receive_data(CHECK)
    requests.receive_data(b"")
    assert requests.late_records() == [("CC", "00C")]
    assert requests.next_event() is Wait.END


def test_a_late_record_cut_short_is_not_taken():
    requests = assembly()
    requests.receive_data(REQUEST)
    requests.next_event()
    requests.receive_data(CHECK[:4])
    assert requests.late_records() == []
    assert requests.receiving  # a record is on its way


def test_records_without_a_cz_when_no_request_is_taken_are_a_request_of_their_own():
    requests = assembly()
    requests.receive_data(CHECK)
    assert requests.next_event() is Wait.INCOMPLETE
    requests.assembly_expired()
    assert requests.next_event() == Request([("CC", "00C")])  # the terminal answers it AF=09


def test_requests_closed_before_a_bad_byte_come_out_first_then_the_error():
    requests = assembly()
    requests.receive_data(REQUEST + REQUEST + b"\r\n")
    assert requests.next_event() == Request(decode(REQUEST))
    event = requests.next_event()
    assert type(event) is Malformed
    assert event.records == decode(REQUEST)  # the one the bad byte interrupted, for the echo
    assert (event.error.reason, event.error.offset) == ("tag is not two upper-case letters or digits", 2 * len(REQUEST))
    requests.receive_data(REQUEST)  # nothing is read after it
    assert requests.next_event() is event and requests.pending == 0
    assert not requests.receiving


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff", "non-ASCII byte"),
        (b"CZ0040300CJ000", "record length is zero"),
        (b"CZ0040300CJ0x2", "length is not three digits"),
        (b"CZ0040300" + b"CF999" + b"x" * 999, "message longer than 100 bytes"),
    ],
)
def test_malformed_frames(data, reason):
    requests = assembly(max_size=100)
    requests.receive_data(data)
    event = requests.next_event()
    assert type(event) is Malformed and event.error.reason == reason


def test_holds_bytes_until_everything_is_taken():
    requests = assembly()
    assert not requests.holds_bytes
    requests.receive_data(REQUEST[:3])
    assert requests.holds_bytes and requests.unfinished == []
    requests.receive_data(REQUEST[3:])
    assert requests.unfinished == decode(REQUEST)
    requests.next_event()
    assert not requests.holds_bytes


# -- whatever way TCP cuts a stream, the same requests come out

MANDATORY = [("CJ", "012345678901"), ("CA", "01"), ("CD", "0"), ("CE", "978")]
OPTIONAL = [("BA", "0"), ("CC", "00C"), ("CF", "1010000000"), ("CH", "REF42")]


@st.composite
def payment(draw) -> bytes:
    """A payment whose last record is a mandatory one, so it is whole with its last byte and not before."""
    amount = ("CB", str(draw(st.integers(1, 10**8))))
    mandatory = draw(st.permutations([*MANDATORY, amount]))
    optional = draw(st.lists(st.sampled_from(OPTIONAL), unique=True))
    body = draw(st.permutations(mandatory[:-1] + optional))
    return encode([("CZ", "0300"), *body, mandatory[-1]])


@st.composite
def cut_stream(draw, tail: bytes = b"") -> tuple[list[bytes], list[bytes]]:
    requests = draw(st.lists(payment(), min_size=1, max_size=6))
    stream = b"".join(requests) + tail
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    return requests, [piece for piece in pieces if piece]  # b"" would mean EOF; TCP reads are never empty


@given(cut_stream())
def test_any_cutting_gives_the_same_requests(case):
    expected, pieces = case
    requests, taken = assembly(), []
    for piece in pieces:
        requests.receive_data(piece)
        got, stopped = drain(requests)
        taken += got
        assert stopped in (Wait.NEED_DATA, Wait.INCOMPLETE)
    requests.receive_data(b"")
    got, stopped = drain(requests)
    assert taken + got == expected and stopped is Wait.END


@given(cut_stream(tail=b"CZ0040300\xffCB"))
def test_any_cutting_finds_the_same_bad_byte_after_the_same_requests(case):
    expected, pieces = case
    requests, taken = assembly(), []
    for piece in pieces:
        requests.receive_data(piece)
        got, stopped = drain(requests)
        taken += got
    assert type(stopped) is Malformed
    assert (stopped.error.reason, stopped.error.offset) == ("non-ASCII byte", len(b"".join(expected)) + 9)
    assert taken == expected and stopped.records == [("CZ", "0300")]
