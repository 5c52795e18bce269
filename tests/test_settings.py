"""The table of settings: help and README agree, the API parses JSON itself, reset covers every runtime setting."""

import dataclasses
import re
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock

from caisse_ap_ip import outcomes, server_cli, settings
from caisse_ap_ip.options import SettingError
from caisse_ap_ip.profiles import PROFILES
from caisse_ap_ip.server import BUSY_MODES, Limits
from caisse_ap_ip.simulator import Simulator
from caisse_ap_ip.terminal import TerminalSettings

README = Path(__file__).resolve().parent.parent / "README.md"


def help_options(capsys, monkeypatch) -> dict[str, str | None]:
    """Each option of `caisse-ap-ip-server --help` (its long flag) and the default its help states."""
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option
    with pytest.raises(SystemExit) as exited:
        server_cli.main(["--help"])
    assert exited.value.code == 0
    entries: list[str] = []
    for line in capsys.readouterr().out.split("\noptions:\n", 1)[1].splitlines():
        if line.startswith("  -"):
            entries.append(line)
        elif entries:
            entries[-1] += " " + line.strip()  # the help, on the next line after a long option
    found = {}
    for entry in entries:
        default = re.search(r"\(default: (.+?)\)$", entry)
        found[re.findall(r"--[a-z-]+", entry)[0]] = default[1] if default else None
    return found


def readme_options() -> dict[str, str]:
    """Each long flag of README's server option table and its default column, without backticks."""
    section = README.read_text().split("### Server: `caisse-ap-ip-server.py`", 1)[1].split("\n### ", 1)[0]
    found = {}
    for line in section.splitlines():
        cells = re.split(r"(?<!\\)\|", line)
        if len(cells) < 4 or not cells[1].strip().startswith("`-"):
            continue
        for flag in re.findall(r"--[a-z-]+", cells[1]):
            found[flag] = cells[2].strip().replace("`", "")
    return found


def test_every_option_of_the_help_is_in_the_readme_with_the_same_default(capsys, monkeypatch):
    in_help, in_readme = help_options(capsys, monkeypatch), readme_options()
    assert set(in_help) == set(in_readme)
    for flag, default in in_help.items():
        if flag not in ("--help", "--version"):
            assert in_readme[flag] == default, flag


def test_every_field_of_the_settings_dataclasses_has_a_row_with_its_default():
    for home in (TerminalSettings, Limits):
        for field in dataclasses.fields(home):
            row = settings.BY_NAME[field.name]
            assert row.home_class is home and row.initial() == field.default
    args = settings.parse_args([])
    assert TerminalSettings(**settings.of(settings.TERMINAL, args)) == TerminalSettings()
    assert Limits(**settings.of(settings.CONNECTION, args)) == Limits()


def test_help_texts_say_the_default_and_the_choices():
    row = settings.BY_NAME["profile"]
    assert all(name in row.help for name in PROFILES) and row.help.endswith("(default: original)")
    assert settings.BY_NAME["request_timeout"].help.endswith("(default: 30)")
    assert settings.BY_NAME["currencies"].help.endswith("(default: all)")
    assert settings.BY_NAME["failure"].help.endswith("(default: off)")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"duration": 0.5, "strict": True}, {"duration": 0.5, "strict": True}),
        ({"duration": "2"}, {"duration": 2.0}),
        ({"currencies": ["EUR", "978", "XPF"]}, {"currencies": frozenset({"978", "953"})}),
        ({"currencies": None}, {"currencies": None}),
        ({"currencies": "all"}, {"currencies": None}),
        ({"outcome": {"outcome": "failure", "code": "refused"}}, {"outcome": outcomes.parse("failure:04")}),
        ({"after_answer": None, "busy": "QUEUE"}, {"after_answer": None, "busy": "queue"}),
        ({"after_answer": "close"}, {"after_answer": 0.0}),
    ],
)
def test_the_api_parses_json_values_itself(given, expected):
    parsed = settings.validate(given)
    assert {**parsed[settings.TERMINAL], **parsed[settings.CONNECTION]} == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"duration": -1}, "duration: '-1' must be a finite number >= 0"),
        ({"duration": True}, "duration: 'true' is not a number"),
        ({"strict": "maybe"}, "strict: 'maybe' is not true or false"),
        ({"busy": "bogus"}, "busy: invalid choice 'bogus' (choose from " + ", ".join(BUSY_MODES) + ")"),
        ({"seller_contract": 42}, "seller_contract: '42' must be 1 to 10 printable ASCII characters"),
        ({"currencies": ["EUR", "ZZZ"]}, "currencies: "),
        ({"port": 9000}, "setting 'port' is fixed at start-up (settable: failure, "),
        ({"colour": "red"}, "unknown setting 'colour' (settable: "),
        (["failure"], "send a JSON object of settings to change"),
    ],
)
def test_bad_api_values_are_refused_with_the_settings_name(given, message):
    with pytest.raises(SettingError) as refused:
        settings.validate(given)
    assert message in str(refused.value)


def test_bad_options_raise_instead_of_exiting_when_asked():
    with pytest.raises(SettingError, match="argument -d/--duration: 'soon' is not a number"):
        settings.parse_args(["-d", "soon"], exit_on_error=False)


# a value other than the start-up one for every runtime setting: a new runtime setting needs one here
CHANGED = {
    "failure": True, "failure_type": "refused", "duration": 9, "payment_type": "amexcontact",
    "seller_contract": "999", "profile": "ingenico", "currencies": ["EUR"], "strict": True,
    "immediate": "busy", "terminal_id": "123456789012", "merchant_name": "AUTRE", "merchant_town": "LYON",
    "outcome": "silent", "after_answer": 2, "busy": "refuse", "ask_timeout": 5,
}  # fmt: skip


def test_reset_restores_every_runtime_setting_to_its_start_up_value():
    assert set(CHANGED) == set(settings.RUNTIME)
    simulator = Simulator(settings.parse_args(["-d", "0", "--busy", "queue", "--terminals", "2"]), MemoryReactorClock())
    first, second = simulator.terminals
    started = first.settings()
    assert (started["duration"], started["busy"]) == (0.0, "queue")
    first.change(CHANGED)
    first.queue(["close"])
    assert first.settings() != started and first.queued() == ["close"]
    assert second.settings() == {**started, "terminal": "2"}  # terminals are independent
    names = []
    simulator.reset([first]).addCallback(names.extend)
    assert names == ["1"] and first.settings() == started and first.queued() == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--journal", "{tmp}"], "argument --journal: {tmp}: unable to open database file"),
     (["--journal", "{tmp}/no/such/folder/j.db"], "unable to open database file"),
     (["--control-port", "0", "--control-token", ""], "'' is no token"),
     (["--control-token", "s3cret"], "--control-token: there is no control API without --control-port or --ui"),
     (["--control-host", "0.0.0.0"], "--control-host: there is no control API"),
     (["--ask-timeout", "-1"], "'-1' must be a finite number > 0")],
)  # fmt: skip
def test_the_server_refuses_what_it_cannot_do_with_exit_2_and_one_line(capsys, tmp_path, argv, message):
    with pytest.raises(SystemExit) as exited:
        server_cli.main([word.format(tmp=tmp_path) for word in argv])
    error = capsys.readouterr().err
    assert exited.value.code == 2 and message.format(tmp=tmp_path) in error and "Traceback" not in error
