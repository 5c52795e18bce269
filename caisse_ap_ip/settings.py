"""Every setting of the server, declared once: the command line, the control API and reset all come from here.

A row says the setting's flags, its name (the field of ``TerminalSettings`` or
``Limits`` it sets, or the name the assembly reads), where its default comes
from (that dataclass field's default, or the row's own for start-up-only
settings), the parser of its values (``options``), its metavar and choices,
its help (the default and choices are filled in from the row) and its scope:

- ``STARTUP``: read once when the simulator is built (port, journal, limits ...);
- ``TERMINAL``: a ``TerminalSettings`` field, changeable at run time (``terminal.configure``);
- ``CONNECTION``: a ``Limits`` field, changeable at run time (``factory.configure``).

To add a setting: add its field to the dataclass that owns it (with its
default), then one row below; ``--help``, ``GET``/``PATCH /settings``, reset
and README's option table check (tests/test_settings.py) follow.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from . import __version__, cli, journal, options, outcomes, proxy
from .cards import PAYMENT_TYPES
from .options import SettingError
from .outcomes import Outcome
from .profiles import PROFILES
from .server import BUSY_MODES, Limits
from .terminal import IMMEDIATE_MODES, TerminalSettings

__all__ = ["CONNECTION", "ROWS", "STARTUP", "TERMINAL", "Setting", "SettingError", "build_parser", "parse_args"]

STARTUP, TERMINAL, CONNECTION = "start-up", "terminal", "connection"
_HOMES = {TERMINAL: TerminalSettings, CONNECTION: Limits}
_NO_DEFAULT = object()


def _to_json(value: object) -> object:
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, Outcome):
        return str(value)
    return value


@dataclass(frozen=True)
class Setting:
    name: str  # the dataclass field, the argparse dest and the control API's key
    flags: tuple[str, ...]
    about: str  # the help without its default; {choices} is replaced by the choices, comma separated
    parse: Callable[[object], object] | None = None  # None: an on/off flag, off by default
    scope: str = STARTUP
    home: type | None = None  # the dataclass whose field default is the default (implied by the scope)
    default: object = _NO_DEFAULT  # the row's own default, when no dataclass holds it
    metavar: str | None = None
    choices: Iterable[str] | None = None
    shown: str | None = None  # the default as help and README write it, when the value does not say it
    to_json: Callable[[object], object] = _to_json

    @property
    def runtime(self) -> bool:
        """Whether the control API may change it."""
        return self.scope != STARTUP

    @property
    def home_class(self) -> type | None:
        return self.home or _HOMES.get(self.scope)

    def initial(self) -> object:
        """The default value: the dataclass field's, or the row's own."""
        home = self.home_class
        if home is None:
            return None if self.default is _NO_DEFAULT else self.default
        field = {f.name: f for f in dataclasses.fields(home)}[self.name]
        return field.default if field.default_factory is dataclasses.MISSING else field.default_factory()

    @property
    def default_text(self) -> str:
        if self.shown is not None:
            return self.shown
        value = self.initial()
        if self.parse is None:
            return "on" if value else "off"
        return f"{value:g}" if isinstance(value, float) else str(value)

    @property
    def help(self) -> str:
        return f"{self.about.format(choices=', '.join(self.choices or ()))} (default: {self.default_text})"

    def value(self, given: object) -> object:
        """A value from text or JSON; raises SettingError naming the setting."""
        parse = self.parse or options.boolean
        try:
            return parse(given)
        except SettingError as error:
            raise SettingError(f"{self.name}: {error}") from None


def _row(scope: str, name: str, *flags: str, about: str, parse=None, **more) -> Setting:
    if "choices" in more and parse is None:
        parse = options.choice(more["choices"])
    return Setting(name, flags, about, parse, scope, **more)


def startup(name, *flags, **more) -> Setting:
    return _row(STARTUP, name, *flags, **more)


def terminal(name, *flags, **more) -> Setting:
    return _row(TERMINAL, name, *flags, **more)


def connection(name, *flags, **more) -> Setting:
    return _row(CONNECTION, name, *flags, **more)


def limit(name, *flags, **more) -> Setting:
    """A start-up-only field of ``Limits``."""
    return _row(STARTUP, name, *flags, home=Limits, **more)


_PAYING = "abandon, timeout, refused or forbidden: AF 11, 08, 04, 05; also any other AF code or name of the README; "
ROWS: tuple[Setting, ...] = (
    startup("log_level", "-l", "--log-level", choices=tuple(cli.LOG_LEVELS), default="info", metavar="LEVEL",
            about="{choices}; logs go to stderr"),
    startup("port", "-p", "--port", parse=options.port_number, default=8888,
            about="TCP port to listen on; 0 picks a free one"),
    startup("host", "--host", parse=options.text, default="127.0.0.1",
            about="address to listen on; 0.0.0.0 or :: to accept POS of the LAN"),
    terminal("failure", "-f", "--failure", about="every payment fails (AE=01) with the --failure-type reason"),
    terminal("failure_type", "-ft", "--failure-type", parse=options.failure_type, metavar="TYPE",
             about=_PAYING + "a check always fails with AF 04"),
    terminal("duration", "-d", "--duration", parse=options.non_negative_float, metavar="SECONDS",
             about="time the customer takes before the terminal answers a payment"),
    terminal("payment_type", "-pt", "--payment-type", choices=tuple(PAYMENT_TYPES), metavar="TYPE",
             about="the card of successful payments: {choices}"),
    terminal("seller_contract", "-sc", "--seller-contract", parse=options.seller_contract, metavar="NUMBER",
             about="merchant contract number returned in CG, at most 10 characters"),
    terminal("profile", "--profile", choices=tuple(PROFILES), metavar="NAME",
             about="answer shapes of a terminal family: {choices}"),
    terminal("currencies", "--currencies", parse=options.currencies, metavar="LIST", shown="all",
             to_json=lambda value: "all" if value is None else sorted(value),
             about="currencies accepted, e.g. EUR or EUR,XPF,USD, or all; others get AF=13"),
    terminal("strict", "--strict",
             about="also refuse (AF=09) what real POS software sends off the rules: a 1-digit CB or CA"),
    terminal("immediate", "--immediate-answer", choices=tuple(IMMEDIATE_MODES), metavar="MODE",
             about="answer to BA=1: ack (AE=11), accept (AE=10) or busy (AE=01 AF=07)"),
    startup("seed", "--seed", parse=options.integer, metavar="N", shown="random",
            about="seed of every random value (card numbers, authorisation numbers, expiry dates)"),
    startup("clock", "--clock", parse=options.clock_time, metavar="DATETIME", shown="the real clock",
            about="terminal's clock stopped at this time (tickets, expiry dates), e.g. 2026-03-14T10:42:17"),
    terminal("terminal_id", "--terminal-id", parse=options.terminal_id, metavar="DIGITS",
             about="CJ of identification answers, 12 digits"),
    terminal("merchant_name", "--merchant-name", parse=options.ticket_line, metavar="TEXT",
             about="merchant name on tickets, at most 24 characters"),
    terminal("merchant_town", "--merchant-town", parse=options.ticket_line, metavar="TEXT",
             about="merchant town on tickets, at most 24 characters"),
    terminal("outcome", "--outcome", parse=options.outcome, metavar="SPEC",
             about=f"what happens to every request: {', '.join(outcomes.TEXT_KINDS)} (answer: as -f/-ft/-pt/-d say; "
             "see README: Outcomes); modifiers delay=S or delay=LO-HI, fragments=N, pause=S "
             "(e.g. 'success fragments=3 pause=0.1')"),
    startup("scenario", "--scenario", parse=options.path, metavar="FILE", shown="none",
            about="TOML file of rules choosing the outcome of each request (see README: Scenarios)"),
    startup("magic_amounts", "--magic-amounts",
            about="amounts ending in .61 to .73 choose the outcome (see README: Magic amounts)"),
    startup("journal", "--journal", parse=options.path, metavar="PATH", shown="in memory",
            about="keep the journal of connections, requests and answers in this SQLite file"),
    startup("journal_cap", "--journal-cap", parse=options.positive_int, default=journal.DEFAULT_CAP, metavar="N",
            about="transactions kept in the journal, the oldest go first"),
    startup("proxy", "--proxy", parse=options.terminal_address, metavar="HOST:PORT", shown="off",
            about="relay every POS connection to the real terminal at HOST:PORT, byte for byte, and journal what "
            "both say and how the terminal cuts its answer ([::1]:8888 for IPv6; see README: Between a POS and a "
            "real terminal)"),
    startup("proxy_timeout", "--proxy-timeout", parse=options.positive_float, default=proxy.DEFAULT_CONNECT_TIMEOUT,
            metavar="SECONDS",
            about="with --proxy, how long to wait for the terminal to take the connection before closing the POS's"),
    connection("after_answer", "--after-answer", parse=options.after_answer, metavar="POLICY", shown="keep",
               about="after an answer: keep the connection open, close it, or close it after this many seconds"),
    connection("busy", "--busy", choices=tuple(BUSY_MODES), metavar="MODE",
               about="a request while another POS's transaction runs: parallel (each POS its own terminal), "
               "refuse (AE=01 AF=07), queue (wait for the terminal), ignore (never answered)"),
    connection("ask_timeout", "--ask-timeout", parse=options.positive_float, metavar="SECONDS",
               about="how long a transaction of the outcome ask waits for a person's decision before it ends as "
               "the customer's input time-out (AF=08)"),
    startup("no_prompt", "--no-prompt",
            about="never read keys from the server's terminal (by default, when stdin is a terminal, its keys "
            "decide the transactions of the outcome ask)"),
    startup("terminals", "--terminals", parse=options.terminals, default=1, metavar="N|PORTS",
            about="several independent terminals in one process: N on consecutive ports from --port (N free ports "
            "with -p 0), or a list of ports such as 9001,9005; one 'listening on' line each, named 1, 2, ..."),
    startup("control_port", "--control-port", parse=options.port_number, metavar="PORT", shown="off",
            about="serve the control API (JSON over HTTP) on this port; 0 picks a free one, printed as "
            "'control on HOST:PORT'"),
    startup("control_host", "--control-host", parse=options.text, default="127.0.0.1", metavar="HOST",
            about="address of the control API (anyone who reaches it controls the terminal)"),
    startup("control_token", "--control-token", parse=options.token, metavar="TOKEN", shown="none",
            about="the control API then requires the header 'Authorization: Bearer TOKEN'"),
    startup("ui", "--ui",
            about="serve the virtual terminal, a web page, on the control API's port (a free one without "
            "--control-port), printed as 'virtual terminal on http://HOST:PORT/'"),
    limit("max_message_size", "--max-message-size", parse=options.positive_int, metavar="BYTES",
          about="longest request accepted"),
    limit("max_connections", "--max-connections", parse=options.positive_int, metavar="N",
          about="simultaneous POS connections"),
    limit("idle_timeout", "--idle-timeout", parse=options.positive_float, metavar="SECONDS",
          about="close a connection that sent nothing for this long while no answer is due"),
    limit("assembly_time", "--assembly-time", parse=options.non_negative_float, metavar="SECONDS",
          about="how long to wait for the rest of a request that lacks a mandatory tag before answering AF=09"),
    limit("request_timeout", "--request-timeout", parse=options.positive_float, metavar="SECONDS",
          about="longest time from a request's first byte to its last, whatever the pace; then AF=09 and close"),
)  # fmt: skip
BY_NAME: Mapping[str, Setting] = {row.name: row for row in ROWS}
RUNTIME: Mapping[str, Setting] = {row.name: row for row in ROWS if row.runtime}


class _Parser(argparse.ArgumentParser):
    """argparse, which may raise SettingError instead of exiting (for the Python API)."""

    raise_errors = False

    def error(self, message: str):
        if self.raise_errors:
            raise SettingError(message)
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    """The command line of caisse-ap-ip-server, one argument per row."""
    parser = _Parser(
        prog="caisse-ap-ip-server",
        description="Simulate a payment terminal speaking Caisse-AP over IP. "
        "'caisse-ap-ip-server journal PATH' shows a journal file.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    for row in ROWS:
        help_text = row.help.replace("%", "%%")
        if row.parse is None:
            parser.add_argument(*row.flags, dest=row.name, action="store_true", help=help_text)
            continue
        convert = cli.argument_type(row.parse, "choice" if row.choices else None)
        parser.add_argument(*row.flags, dest=row.name, type=convert, default=row.initial(), metavar=row.metavar,
                            help=help_text)  # fmt: skip
    return parser


def parse_args(argv: list[str], exit_on_error: bool = True) -> argparse.Namespace:
    """Options of the command line: a bad one exits with status 2 and a usage line, or raises SettingError."""
    parser = build_parser()
    parser.raise_errors = not exit_on_error
    return parser.parse_args(argv)


def of(scope: str, args: argparse.Namespace) -> dict[str, object]:
    """The values of one scope's dataclass fields among parsed options: TerminalSettings(**of(TERMINAL, args))."""
    home = _HOMES[scope]
    return {row.name: getattr(args, row.name) for row in ROWS if row.home_class is home}


def validate(changes: object) -> dict[str, dict[str, object]]:
    """Changes given to the control API, validated whole: {scope: {name: value}}, or SettingError for the first
    wrong one (nothing is to be applied then)."""
    if not isinstance(changes, dict):
        raise SettingError("send a JSON object of settings to change")
    parsed: dict[str, dict[str, object]] = {TERMINAL: {}, CONNECTION: {}}
    for name, given in changes.items():
        row = RUNTIME.get(name)
        if row is None:
            known = ", ".join(RUNTIME)
            fixed = name in BY_NAME
            why = f"setting {name!r} is fixed at start-up" if fixed else f"unknown setting {name!r}"
            raise SettingError(f"{why} (settable: {known})")
        parsed[row.scope][name] = row.value(given)
    return parsed


def as_json(scope: str, values: Mapping[str, object]) -> dict[str, object]:
    """The runtime settings of one scope among ``values``, as JSON values."""
    return {name: row.to_json(values[name]) for name, row in RUNTIME.items() if row.scope == scope}
