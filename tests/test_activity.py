"""What a person watching the server reads: one line per transaction, colours on a terminal, floods summarised."""

import io
import logging

import pytest
from helpers import REQUEST, InProcessTerminal

from caisse_ap_ip import activity, cli
from caisse_ap_ip.activity import WarningLimiter, result_words, transaction_line
from caisse_ap_ip.outcomes import parse
from caisse_ap_ip.protocol import decode

CARD = b"CC003001CI0011AC006435613AA016497045######0385AI014A0000000421010AB0042901CF0101010000000CG006424242"


@pytest.mark.parametrize(
    ("answer", "note", "words", "tone"),
    [
        (REQUEST + b"AE00210" + CARD, parse("answer"), "success CB/Visa/Mastercard contact, auth 435613", "success"),
        (REQUEST + b"AE00201AF00204", parse("failure:refused"), "refused (AF=04)", "failure"),
        (REQUEST + b"AE00201AF0290405TRANSACTION REFUSEE      ", parse("extended-af"), "refused (AF=04)", "failure"),
        (REQUEST + b"AE00211" + REQUEST + b"AE00210", parse("pending"), "success", "success"),
        (REQUEST + b"AE00210\r\n", parse("crlf"), "success", "success"),
        (None, parse("silent"), "silent", "other"),
        (None, parse("reset"), "reset", "other"),
        (b"CZ0040300AE00201AF00209", "malformed: bad byte", "malformed: bad byte (AF=09)", "failure"),
        (REQUEST + b"AE00201AF00207", "busy: refused", "busy: refused (AF=07)", "failure"),
        (None, "left before the answer (answer)", "left before the answer (answer)", "other"),
    ],
)  # fmt: skip
def test_the_result_in_words_with_its_codes(answer, note, words, tone):
    assert result_words(answer, note) == (words, tone)


def test_a_transaction_line_says_who_what_the_result_and_how_long():
    line, tone = transaction_line("127.0.0.1:53012", decode(REQUEST), REQUEST + b"AE00201AF00204", "busy: refused", 3)
    assert line == "127.0.0.1:53012 POS 01 debit 112.45 EUR: busy: refused (AF=04) in 3.00 s" and tone == "failure"


def test_warnings_of_a_kind_are_shown_a_few_times_then_counted_then_shown_again():
    now = [0.0]
    limiter = WarningLimiter(lambda: now[0], shown=3, window=10)
    assert [limiter.allow("malformed requests") for _ in range(5)] == [True, True, True, False, False]
    assert limiter.allow("refused connections")  # each kind its own count
    now[0] = 5
    assert limiter.summaries() == []  # the window is not over
    now[0] = 10
    assert limiter.summaries() == ["... 2 more malformed requests in the last 10 s"]
    assert limiter.allow("malformed requests")


def test_a_flood_of_malformed_requests_is_summarised_in_the_log(caplog):
    server = InProcessTerminal()  # started: its idle sweep runs every second and says what it held back
    with caplog.at_level(logging.WARNING, logger="caisse_ap_ip"):
        for _ in range(1000):
            server.exchange(b"\xff", seconds=0)
        server.advance(11)
    lines = caplog.messages
    assert len(lines) == 6 and all("malformed: non-ASCII byte" in line for line in lines[:5])
    assert lines[5] == "... 995 more malformed requests in the last 10 s"
    assert len(server.entries()) == 1000  # the journal keeps them all


def test_with_several_terminals_a_line_says_which(caplog):
    server = InProcessTerminal()
    server.factory.show_name = True
    server.factory.name = "2"
    with caplog.at_level(logging.INFO, logger="caisse_ap_ip"):
        server.exchange()
    assert caplog.messages[-1].startswith("terminal 2 127.0.0.1:")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "no_color", "coloured"), [(Tty(), None, True), (Tty(), "1", False),
                                                             (io.StringIO(), None, False)])  # fmt: skip
def test_results_are_coloured_on_a_terminal_unless_no_color(monkeypatch, stream, no_color, coloured):
    if no_color:
        monkeypatch.setenv("NO_COLOR", no_color)
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    record = logging.LogRecord("caisse_ap_ip.server", logging.INFO, "", 0, "paid", None, None)
    record.tone = "success"
    text = cli.formatter_for(stream).format(record)
    assert text.endswith("\x1b[0m") == coloured and ("\x1b[32m" in text) == coloured


def test_a_terminal_close_after_the_pos_half_close_is_said_to_follow_it():
    from types import SimpleNamespace

    own = SimpleNamespace(answer_segments=[1, 2], terminal_closed=0.5, pos_half_closed=None)
    after = SimpleNamespace(answer_segments=[1], terminal_closed=0.5, pos_half_closed=0.2)
    assert activity.relay_words(own) == "answer in 2 segments, closed by the terminal"
    assert activity.relay_words(after) == "answer in 1 segment, closed by the terminal after the POS's half-close"
