"""Record -> replay: a real terminal's answers exported from the journal as replay rules, answered again.

The replayed answer takes the POS's own records (CJ, CA, CF ...) from the new request and the terminal's
(AE, AF, card data, tickets) from the recording; timing = "recorded" also cuts and paces it as recorded.
"""

import json
import re
import subprocess
import sys
import tomllib
from datetime import datetime

import pytest
from helpers import (
    REQUEST,
    SERVER_SCRIPT,
    WAIT,
    InProcessProxy,
    InProcessTerminal,
    answering,
    fake_terminal,
    server_running,
    split,
)
from hypothesis import given
from hypothesis import strategies as st

from caisse_ap_ip import client, export, proxy, scenarios
from caisse_ap_ip.outcomes import Outcome, OutcomeError, coerce, from_table, parse
from caisse_ap_ip.protocol import decode, encode
from caisse_ap_ip.replay import Recording
from caisse_ap_ip.terminal import Terminal
from caisse_ap_ip.testing import SimulatedTerminal

# a real terminal's answer: CJ, CA, CF echoed; its own CZ and a zero-padded CB; AE, card data and a tag of its own
RECORDED_REQUEST = REQUEST + b"CF007ORDER-1"
RECORDED_ANSWER = encode([
    ("CZ", "0301"), ("CJ", "012345678901"), ("CA", "01"), ("CE", "978"), ("CD", "0"), ("CB", "000000011245"),
    ("CF", "ORDER-1"), ("AE", "10"), ("CC", "001"), ("CI", "1"), ("AC", "583014"), ("AA", "497010######4127"),
    ("AI", "A0000000421010"), ("AB", "2612"), ("AQ", "SN123456"), ("CG", "1234567"),
])  # fmt: skip
TERMINAL_OWN = {"CZ": "0301", "CB": "000000011245", "AE": "10", "AC": "583014", "AQ": "SN123456", "CG": "1234567"}


def replay(**more) -> Outcome:
    table = {"outcome": "replay", "request": RECORDED_REQUEST.decode(), "answer": RECORDED_ANSWER.decode(), **more}
    return from_table(table)


def answered(request: bytes, outcome: Outcome) -> bytes:
    return Terminal().respond(decode(request), outcome).data


# -- the echo rule


def test_the_same_request_gets_the_recorded_answer_byte_for_byte():
    assert answered(RECORDED_REQUEST, replay()) == RECORDED_ANSWER


def test_the_pos_records_come_from_the_new_request_the_terminals_from_the_recording():
    new = REQUEST.replace(b"CA00201", b"CA00207") + b"CF007ORDER-9CH004REF9"
    fields = dict(decode(answered(new, replay())))
    assert (fields["CA"], fields["CF"], fields["CH"]) == ("07", "ORDER-9", "REF9")  # echoed, CH as the simulator does
    assert {tag: fields[tag] for tag in TERMINAL_OWN} == TERMINAL_OWN
    assert "BA" not in fields  # the terminal did not echo BA: no replay of it either


def test_a_record_the_new_request_lacks_is_not_echoed_from_the_recording():
    fields = dict(decode(answered(REQUEST, replay())))
    assert "CF" not in fields and fields["AE"] == "10"


def test_what_the_terminal_echoed_is_read_from_the_recording_whatever_the_simulators_profile_says():
    from caisse_ap_ip.terminal import TerminalSettings

    payxpert = Terminal(TerminalSettings(profile="payxpert"))  # its own answers carry CZ 0320
    echoing = from_table({"outcome": "replay", "request": REQUEST.decode(), "answer": (REQUEST + b"AE00210").decode()})
    fields = dict(payxpert.respond(decode(REQUEST.replace(b"CZ0040300", b"CZ0040301")), echoing).records)
    assert fields["CZ"] == "0301"  # the recorded terminal echoed the POS's CZ: so does its replay


def test_several_messages_and_stray_bytes_are_replayed_each_echoing_the_new_request():
    interim = encode([("CZ", "0300"), ("CA", "01"), ("CD", "0"), ("AE", "11")])
    table = {"outcome": "replay", "request": REQUEST.decode(), "answer": (interim + RECORDED_ANSWER + b"\r\n").decode()}
    data = answered(REQUEST.replace(b"CA00201", b"CA00203"), from_table(table))
    assert data.endswith(b"\r\n") and data.count(b"CA00203") == 2


def test_the_terminals_cutting_and_pauses_are_kept_and_a_longer_answer_fills_the_last_piece():
    recording = Recording(REQUEST, b"0123456789", ((1.5, 3), (1.75, 3), (2.0, 4)), timed=True)
    assert recording.pieces(b"0123456789") == [(b"012", 0.25), (b"345", 0.25), (b"6789", 0.0)]
    assert recording.pieces(b"0123456789AB") == [(b"012", 0.25), (b"345", 0.25), (b"6789AB", 0.0)]
    assert recording.pieces(b"01234") == [(b"012", 0.25), (b"34", 0.25)]


# -- the outcome's table


RECORDED = {"outcome": "replay", "request": "CZ0040300", "answer": "AE00210"}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"outcome": "replay"}, "replay needs the recorded request"),
        ({**RECORDED, "timing": "later"}, "timing 'later'"),
        ({**RECORDED, "request": "CZ004"}, "the recorded request is no Caisse-AP message"),
        ({**RECORDED, "timing": "recorded"}, "needs the segments"),
        ({**RECORDED, "segments": [{"at": -1, "size": 1}]}, "at is seconds after the request"),
        ({**RECORDED, "segments": [[0, 1]]}, "at is seconds"),
        ({**RECORDED, "segments": [{"at": 0, "size": 0}]}, "size is a number of bytes >= 1"),
        ({**RECORDED, "answer": "é€"}, "no bytes (Latin-1)"),
        ({**RECORDED, "closes": "yes"}, "closes is true or false"),
        ({"outcome": "failure", "answer": "AE00210"}, "outcome 'failure' takes no answer (only replay does)"),
    ],
)
def test_a_bad_replay_is_refused_with_the_reason(table, message):
    with pytest.raises(OutcomeError, match=re.escape(message)):
        from_table(table)


def test_replay_has_no_text_form_and_says_where_recordings_come_from():
    with pytest.raises(OutcomeError, match="--export-scenario"):
        parse("replay")


def test_recorded_timing_waits_for_the_first_segment_and_refuses_fragments():
    timed = replay(timing="recorded", segments=[{"at": 2.5, "size": 9}, {"at": 2.6, "size": 200}])
    assert timed.delay == (2.5, 2.5) and str(timed) == "replay timing=recorded delay=2.5"
    with pytest.raises(OutcomeError, match="no fragments"):
        replay(timing="recorded", segments=[{"at": 1, "size": 9}], fragments=3)


@pytest.mark.parametrize(
    "outcome",
    [
        parse("answer"),
        parse("failure:refused delay=1-2 fragments=3 pause=0.1"),
        parse("success:amexcontactless"),
        parse("partial:50%"),
        parse("delay:2"),
        replay(),
        replay(timing="recorded", segments=[{"at": 0.5, "size": 9}], closes=True),
    ],
    ids=str,
)
def test_every_outcome_reads_back_from_its_table(outcome):
    assert from_table(json.loads(json.dumps(outcome.table()))) == outcome


# -- export


def recorded_journal(*requests: bytes) -> InProcessProxy:
    """Each request relayed to a terminal that answers RECORDED_ANSWER (echoing the CA) in two segments."""
    proxied = InProcessProxy()
    for request in requests:
        _, terminal = proxied.relay(request)
        proxied.advance(0.5)
        answer = RECORDED_ANSWER.replace(b"CA00201", encode([("CA", dict(decode(request))["CA"])]))
        for piece in split(answer, 9):
            terminal.send(piece)
            proxied.advance(0.25)
        terminal.close()
        proxied.advance(proxy.CLOSE_WATCH)
    return proxied


def exported(proxied: InProcessProxy, tmp_path):
    text, rules = export.scenario(proxied.entries(), "shop.db", datetime(2026, 12, 2, 10, 0))
    path = tmp_path / "recorded.toml"
    path.write_text(text)
    return text, rules, path


def test_one_rule_per_request_shape_with_the_latest_recording_and_a_comment_saying_where_from(tmp_path):
    check = REQUEST + b"CC00300C"
    proxied = recorded_journal(RECORDED_REQUEST, check, REQUEST.replace(b"CA00201", b"CA00205"))
    text, rules, path = exported(proxied, tmp_path)
    assert rules == 2  # the card debits of 112.45 EUR are one shape, whatever their CA or CF
    assert "# debit 112.45 EUR: recorded " in text and "from the terminal at 127.0.0.1:9100" in text
    assert "(journal transaction #3, the latest of 2 recordings of this shape)" in text
    data = tomllib.loads(text)
    card, check_rule = data["rule"]
    assert card["when"] == {"action": "debit", "amount": "112.45", "currency": "EUR", "check": False, "ticket": "none"}
    assert check_rule["when"]["check"] is True and check_rule["name"] == "debit 112.45 EUR (check)"
    assert card["outcome"]["request"] == REQUEST.replace(b"CA00201", b"CA00205").decode()  # the latest
    assert card["outcome"]["segments"] == [{"at": 0.5, "size": 9}, {"at": 0.75, "size": len(RECORDED_ANSWER) - 9}]
    assert card["outcome"]["closes"] is True and card["outcome"]["timing"] == "simulated"
    assert [rule.name for rule in scenarios.load(path).rules] == ["debit 112.45 EUR", "debit 112.45 EUR (check)"]


def test_export_then_replay_gives_the_same_answer_records_with_the_new_requests_echo(tmp_path):
    _, _, path = exported(recorded_journal(RECORDED_REQUEST), tmp_path)
    replaying = InProcessTerminal()
    replaying.factory.terminal.replace_scenario(scenarios.load(path))
    assert replaying.exchange(RECORDED_REQUEST).received == RECORDED_ANSWER
    new = RECORDED_REQUEST.replace(b"CA00201", b"CA00209").replace(b"ORDER-1", b"ORDER-2")
    pos = replaying.exchange(new)
    fields = dict(decode(pos.received))
    assert (fields["CA"], fields["CF"]) == ("09", "ORDER-2") and {t: fields[t] for t in TERMINAL_OWN} == TERMINAL_OWN
    assert pos.closed  # the terminal closed after its answer: so does its replay
    other = replaying.exchange(REQUEST.replace(b"CB00511245", b"CB0041000"))  # a shape never recorded
    assert dict(decode(other.received))["AC"] != "583014"  # answered by the simulator


def test_timing_recorded_sends_the_answer_cut_and_paced_as_the_terminal_did(tmp_path):
    text, _, path = exported(recorded_journal(RECORDED_REQUEST), tmp_path)
    path.write_text(text.replace('timing = "simulated"', 'timing = "recorded"'))
    replaying = InProcessTerminal()
    replaying.factory.terminal.replace_scenario(scenarios.load(path))
    pos = replaying.connect()
    pos.send(RECORDED_REQUEST)
    replaying.advance(0.49)
    assert pos.transport.writes == []
    replaying.advance(0.01)
    assert pos.transport.writes == [RECORDED_ANSWER[:9]]
    replaying.advance(0.25)
    assert pos.transport.writes == split(RECORDED_ANSWER, 9)


@pytest.mark.parametrize(
    "cut", [RECORDED_ANSWER.index(b"AE002"), RECORDED_ANSWER.index(b"AE002") + 3], ids=["before AE", "inside AE"]
)
def test_an_answer_cut_short_is_not_exported_in_place_of_a_whole_one(tmp_path, cut):
    proxied = recorded_journal(RECORDED_REQUEST)
    pos, terminal = proxied.relay(RECORDED_REQUEST)
    terminal.send(RECORDED_ANSWER[:cut])
    pos.reset()  # the POS leaves in the middle of the answer: the latest row, not a whole answer
    assert proxied.entries()[-1]["proxy"]["terminal_answer"] == RECORDED_ANSWER[:cut].decode()
    text, rules, _ = exported(proxied, tmp_path)
    assert rules == 1 and "(journal transaction #1, recorded once)" in text
    assert tomllib.loads(text)["rule"][0]["outcome"]["answer"] == RECORDED_ANSWER.decode()


def test_a_close_that_follows_the_pos_half_close_is_not_exported_as_the_terminals_own(tmp_path):
    proxied = InProcessProxy()
    pos, terminal = proxied.relay(RECORDED_REQUEST)
    pos.shutdown_write()  # the terminal is told, and may close because of it
    terminal.send(RECORDED_ANSWER)
    terminal.close()
    proxied.advance(0)
    text, _, path = exported(proxied, tmp_path)
    assert "closes" not in tomllib.loads(text)["rule"][0]["outcome"]
    assert not scenarios.load(path).rules[0].sequence[0].recording.closes  # the replay keeps the line open
    assert "# closes left out: the terminal closed after the POS had shut its sending side down" in text


def test_nothing_relayed_nothing_to_export(tmp_path):
    simulated = InProcessTerminal()
    simulated.exchange()
    with pytest.raises(export.NothingToExport, match="answered by a real terminal"):
        export.scenario(simulated.entries(), "shop.db", datetime(2026, 12, 2))


@given(st.text(st.characters(max_codepoint=0xFF)))
def test_any_recorded_bytes_survive_the_toml_file(text):
    assert tomllib.loads(f"value = {export.toml_string(text)}")["value"] == text


# -- the three steps of README, as a user runs them


def journal_command(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SERVER_SCRIPT), "journal", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=WAIT)


def test_proxy_watch_export_and_replay_with_the_commands_of_the_readme(tmp_path):
    journal_file, scenario_file = tmp_path / "shop.db", tmp_path / "recorded.toml"
    with (
        fake_terminal(answering(split(RECORDED_ANSWER, 9), pause=0.05)) as port,
        server_running("--proxy", f"127.0.0.1:{port}", "--journal", str(journal_file)) as proxied,
    ):
        exchange = client.transact("127.0.0.1", proxied.port, RECORDED_REQUEST, timeout=WAIT)
        assert proxied.stop() == 0
    assert exchange.answer_bytes == RECORDED_ANSWER
    assert "proxy ready: every POS connection relayed to the terminal at 127.0.0.1:" in proxied.stderr()

    shown = journal_command(str(journal_file)).stdout
    assert f"proxied to 127.0.0.1:{port}" in shown and "terminal -> POS      9 bytes" in shown
    (row,) = [json.loads(line) for line in journal_command(str(journal_file), "--json").stdout.splitlines()]
    assert [s["size"] for s in row["proxy"]["segments"] if s["from"] == "terminal"] == [9, len(RECORDED_ANSWER) - 9]
    assert row["proxy"]["terminal_closed"]  # the client left as soon as the answer was whole: the close came after

    written = journal_command(str(journal_file), "--export-scenario", str(scenario_file))
    assert written.returncode == 0 and written.stdout.startswith(f"{scenario_file}: 1 rule replaying")

    new = RECORDED_REQUEST.replace(b"ORDER-1", b"ORDER-2")
    with server_running("-d", "0", "--scenario", str(scenario_file)) as replaying:
        replayed = client.transact("127.0.0.1", replaying.port, new, timeout=WAIT)
    assert dict(replayed.answer) == {**dict(decode(RECORDED_ANSWER)), "CF": "ORDER-2"}


def test_exporting_a_journal_without_proxied_transactions_is_an_error(tmp_path):
    journal_file = tmp_path / "plain.db"
    with server_running("-d", "0", "--journal", str(journal_file)) as simulated:
        client.transact("127.0.0.1", simulated.port, REQUEST, timeout=WAIT)
    refused = journal_command(str(journal_file), "--export-scenario", str(tmp_path / "x.toml"))
    assert refused.returncode == 2 and "answered by a real terminal (--proxy)" in refused.stderr
    assert not (tmp_path / "x.toml").exists()


def test_a_replay_can_be_queued_in_both_backends_of_simulated_terminal():
    for subprocess_backend in (False, True):
        with SimulatedTerminal(subprocess=subprocess_backend) as terminal:
            terminal.next(replay().table())
            assert client.transact("127.0.0.1", terminal.port, REQUEST, timeout=WAIT).answer == list(
                decode(answered(REQUEST, replay()))
            )
            assert coerce(replay().table()) == replay()
