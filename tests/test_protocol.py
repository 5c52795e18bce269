import contextlib
import itertools

import pytest
from helpers import REQUEST
from hypothesis import example, given
from hypothesis import strategies as st

from caisse_ap_ip.protocol import FrameDecoder, FrameError, decode, encode, encode_record, serial_framing

RECORDS = [
    ("CZ", "0300"),
    ("CJ", "012345678901"),
    ("CA", "01"),
    ("CE", "978"),
    ("BA", "0"),
    ("CD", "0"),
    ("CB", "11245"),
]


def test_encode_and_decode_the_reference_request():
    assert decode(REQUEST) == RECORDS
    assert encode(RECORDS) == REQUEST


@pytest.mark.parametrize(
    ("tag", "value", "reason"),
    [
        ("cz", "0300", "not two upper-case"),
        ("C", "0300", "not two upper-case"),
        ("CZ", "", "1 to 999"),
        ("CZ", "x" * 1000, "1 to 999"),
        ("CF", "café", "not ASCII"),
    ],
)
def test_encode_refuses_what_cannot_be_framed(tag, value, reason):
    with pytest.raises(ValueError, match=reason):
        encode_record(tag, value)


@pytest.mark.parametrize(
    ("data", "reason", "offset"),
    [
        (b"CZ0040300\r\n", "tag is not two upper-case letters or digits", 9),
        (b"cz0040300", "tag is not two upper-case letters or digits", 0),
        (b"GET / HTTP/1.1\r\n", "length is not three digits", 2),
        (b"CZ0040300CB0x5", "length is not three digits", 12),
        (b"CZ0040300CB000", "record length is zero", 11),
        (b"CZ0040300CF004ab\xe9d", "non-ASCII byte", 16),
        (b"\xff", "non-ASCII byte", 0),
        (b"CZ0040300CB005112", "truncated record", 17),
        (b"CZ004030", "truncated record", 8),
    ],
)
def test_decode_errors_name_the_reason_and_the_byte(data, reason, offset):
    with pytest.raises(FrameError) as caught:
        decode(data)
    assert (caught.value.reason, caught.value.offset) == (reason, offset)
    assert str(caught.value) == f"{reason} at byte {offset}"


def test_size_limit_is_per_message_and_reported_where_crossed():
    decoder = FrameDecoder(max_size=len(REQUEST))
    assert list(decoder.feed(REQUEST + REQUEST)) == [RECORDS]  # two messages, each within the limit
    with pytest.raises(FrameError, match=f"message longer than {len(REQUEST)} bytes at byte {2 * len(REQUEST)}"):
        list(decoder.feed(b"CF0011"))


def test_a_100_kb_blob_is_refused_without_buffering_it_all():
    decoder = FrameDecoder(max_size=16384)
    with pytest.raises(FrameError, match="longer than 16384 bytes at byte 16384"):
        for _ in range(100):
            list(decoder.feed(b"CF999" + b"x" * 999))


def test_a_cz_record_starts_the_next_message_and_the_last_stays_open_until_flushed():
    decoder = FrameDecoder()
    assert list(decoder.feed(REQUEST + REQUEST[:20])) == [RECORDS]
    assert not decoder.at_boundary and decoder.flush() is None
    assert list(decoder.feed(REQUEST[20:])) == []
    assert decoder.open_message == RECORDS
    assert decoder.flush() == RECORDS
    assert decoder.flush() is None


def test_messages_completed_before_an_error_are_still_delivered():
    decoder = FrameDecoder()
    with pytest.raises(FrameError, match="length is not three digits at byte 128") as caught:
        decoder.feed(REQUEST + REQUEST + b"CZ\r\n")
    assert caught.value.messages == [RECORDS]  # the second one was not closed by a whole CZ record
    assert decoder.open_message == RECORDS


tags = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=2, max_size=2)
values = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), min_size=1, max_size=999)
records = st.lists(st.tuples(tags, values), min_size=1, max_size=20)


@given(records)
def test_round_trip(message):
    assert decode(encode(message)) == message
    assert encode(decode(encode(message))) == encode(message)


def feed_in_pieces(data: bytes, cuts: list[int], max_size: int):
    """Messages and error (as (reason, offset)) that a decoder yields for data fed in pieces cut at ``cuts``."""
    decoder = FrameDecoder(max_size)
    messages, error = [], None
    bounds = [0, *sorted(set(cuts)), len(data)]
    try:
        for start, end in itertools.pairwise(bounds):
            messages.extend(decoder.feed(data[start:end]))
    except FrameError as exc:
        messages.extend(exc.messages)
        error = (exc.reason, exc.offset)
    if error is None:
        last = decoder.flush()
        if last:
            messages.append(last)
    return messages, error


stream_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(records, min_size=1, max_size=4).map(lambda ms: b"".join(encode([("CZ", "0300"), *m]) for m in ms)),
    st.lists(st.sampled_from([REQUEST, b"CZ", b"004", b"0300", b"CB0", b"\r\n", b"\xe9", b"000", b"AK999"])).map(
        b"".join
    ),
)


@given(stream_bytes, st.lists(st.integers(min_value=0, max_value=400)), st.integers(min_value=5, max_value=2000))
@example(b"0A004\x00\x00\x00\x0000001\x00CZ", [], 15)  # a message exactly at the limit, then the next one's "C"
def test_any_cutting_of_the_stream_gives_the_same_messages_and_the_same_error(data, cuts, max_size):
    cuts = [cut for cut in cuts if cut <= len(data)]
    assert feed_in_pieces(data, cuts, max_size) == feed_in_pieces(data, [], max_size)
    assert feed_in_pieces(data, list(range(len(data))), max_size) == feed_in_pieces(data, [], max_size)


@given(st.binary(max_size=2000))
def test_the_decoder_raises_nothing_but_frame_errors(data):
    decoder = FrameDecoder(max_size=500)
    try:
        list(decoder.feed(data))
        decoder.flush()
    except FrameError:
        pass
    with contextlib.suppress(FrameError):
        decode(data)


@given(st.lists(st.sampled_from([REQUEST, encode([("CZ", "0320"), ("CD", "I")])]), min_size=1, max_size=5))
def test_coalesced_messages_are_all_found(messages):
    decoder = FrameDecoder()
    found = list(decoder.feed(b"".join(messages)))
    found.append(decoder.flush())
    assert found == [decode(m) for m in messages]


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"\x0201" + b"00011245" + b"01" + b"0" + b"978" + b" " * 10 + b"A010B010\x03\x15", "fixed fields"),
        (b"\x02CZ0040300CJ012012345678901\x03X", "TLV records"),
        (b"\x05", "handshake (ENQ)"),
        (b"\x06\x04", "handshake (ACK)"),
    ],
)
def test_serial_framing_of_the_older_protocol_is_recognised(data, what):
    description = serial_framing(data)
    assert what in description and description.endswith("not Caisse-AP over IP")


def test_caisse_ap_frames_and_other_garbage_are_not_serial_framing():
    assert serial_framing(REQUEST) is None
    assert serial_framing(b"HTTP/1.1") is None
    assert serial_framing(b"") is None
