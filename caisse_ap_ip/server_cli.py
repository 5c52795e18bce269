"""caisse-ap-ip-server: a Caisse-AP over IP payment terminal simulator."""

from __future__ import annotations

import argparse
import json
import logging
import random
import signal
import sqlite3
import sys
from datetime import datetime
from pathlib import Path

from . import __version__, cli, control, journal, options, outcomes, scenarios
from .cards import PAYMENT_TYPES
from .profiles import PROFILES
from .server import BUSY_MODES, Limits, TerminalFactory, listen
from .terminal import IMMEDIATE_MODES, Terminal, TerminalSettings

log = logging.getLogger("caisse_ap_ip.server")


def build_parser() -> argparse.ArgumentParser:
    limits = Limits()
    parser = argparse.ArgumentParser(
        prog="caisse-ap-ip-server",
        description="Simulate a payment terminal speaking Caisse-AP over IP. "
        "'caisse-ap-ip-server journal PATH' shows a journal file.",
    )
    add = parser.add_argument
    add("--version", action="version", version=f"%(prog)s {__version__}")
    cli.add_log_level(parser)
    add(
        "-p",
        "--port",
        type=cli.port_number,
        default=8888,
        help="TCP port to listen on; 0 picks a free one (default: 8888)",
    )
    add(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 or :: to accept POS of the LAN (default: 127.0.0.1)",
    )
    add("-f", "--failure", action="store_true", help="every payment fails (AE=01) with the --failure-type reason")
    add(
        "-ft",
        "--failure-type",
        type=options.failure_type,
        default="abandon",
        metavar="TYPE",
        help="abandon, timeout, refused or forbidden: AF 11, 08, 04, 05 (default: abandon); also any other "
        "AF code or name of the README; a check always fails with AF 04",
    )
    add(
        "-d",
        "--duration",
        type=cli.non_negative_float,
        default=3.0,
        metavar="SECONDS",
        help="time the customer takes before the terminal answers a payment (default: 3)",
    )
    add(
        "-pt",
        "--payment-type",
        type=cli.choice(PAYMENT_TYPES),
        default="cbcontact",
        metavar="TYPE",
        help="cbcontact, cbcontactless, amexcontact or amexcontactless: the card of successful payments "
        "(default: cbcontact)",
    )
    add(
        "-sc",
        "--seller-contract",
        type=options.seller_contract,
        default="424242",
        metavar="NUMBER",
        help="merchant contract number returned in CG, at most 10 characters (default: 424242)",
    )
    add(
        "--profile",
        type=cli.choice(PROFILES),
        default="original",
        metavar="NAME",
        help=f"answer shapes of a terminal family: {', '.join(PROFILES)} (default: original)",
    )
    add(
        "--currencies",
        type=options.currencies,
        default=None,
        metavar="LIST",
        help="currencies accepted, e.g. EUR or EUR,XPF,USD; others get AF=13 (default: all)",
    )
    add(
        "--strict",
        action="store_true",
        help="also refuse (AF=09) what real POS software sends off the rules: a 1-digit CB or CA",
    )
    add(
        "--immediate-answer",
        type=cli.choice(IMMEDIATE_MODES),
        default="ack",
        metavar="MODE",
        help="answer to BA=1: ack (AE=11), accept (AE=10) or busy (AE=01 AF=07) (default: ack)",
    )
    add(
        "--seed",
        type=int,
        default=None,
        help="seed of every random value (card numbers, authorisation numbers, expiry dates)",
    )
    add(
        "--clock",
        type=options.clock_time,
        default=None,
        metavar="DATETIME",
        help="terminal's clock stopped at this time (tickets, expiry dates), e.g. 2026-03-14T10:42:17",
    )
    add(
        "--terminal-id",
        type=options.terminal_id,
        default="330000000001",
        metavar="DIGITS",
        help="CJ of identification answers, 12 digits (default: 330000000001)",
    )
    add(
        "--merchant-name",
        type=options.ticket_line,
        default="BOUTIQUE DEMO",
        metavar="TEXT",
        help="merchant name on tickets, at most 24 characters (default: BOUTIQUE DEMO)",
    )
    add(
        "--merchant-town",
        type=options.ticket_line,
        default="75001 PARIS",
        metavar="TEXT",
        help="merchant town on tickets, at most 24 characters (default: 75001 PARIS)",
    )
    add(
        "--outcome",
        type=options.outcome,
        default=outcomes.DEFAULT,
        metavar="SPEC",
        help="what happens to every request: answer (the default: as -f/-ft/-pt/-d say), success[:TYPE], "
        "failure[:CODE], immediate, silent, close, reset, garbage, truncated; modifiers delay=S or delay=LO-HI, "
        "fragments=N, pause=S (e.g. 'success fragments=3 pause=0.1')",
    )
    add(
        "--scenario",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML file of rules choosing the outcome of each request (see README: Scenarios)",
    )
    add(
        "--magic-amounts",
        action="store_true",
        help="amounts ending in .61 to .73 choose the outcome (see README: Magic amounts)",
    )
    add(
        "--journal",
        type=Path,
        default=None,
        metavar="PATH",
        help="keep the journal of connections, requests and answers in this SQLite file (default: in memory)",
    )
    add(
        "--journal-cap",
        type=cli.positive_int,
        default=journal.DEFAULT_CAP,
        metavar="N",
        help=f"transactions kept in the journal, the oldest go first (default: {journal.DEFAULT_CAP})",
    )
    add(
        "--after-answer",
        type=options.after_answer,
        default=None,
        metavar="POLICY",
        help="keep the connection open after an answer (keep, the default), close it, or close it after "
        "this many seconds",
    )
    add(
        "--busy",
        type=cli.choice(BUSY_MODES),
        default="parallel",
        metavar="MODE",
        help="a request while another POS's transaction runs: parallel (each POS its own terminal, the "
        "default), refuse (AE=01 AF=07), queue (wait for the terminal), ignore (never answered)",
    )
    add(
        "--terminals",
        type=options.terminals,
        default=1,
        metavar="N|PORTS",
        help="several independent terminals in one process: N on consecutive ports from --port (N free ports "
        "with -p 0), or a list of ports such as 9001,9005; one 'listening on' line each, named 1, 2, ...",
    )
    add(
        "--control-port",
        type=cli.port_number,
        default=None,
        metavar="PORT",
        help="serve the control API (JSON over HTTP) on this port; 0 picks a free one, printed as 'control on "
        "HOST:PORT'",
    )
    add(
        "--control-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address of the control API (default: 127.0.0.1; anyone who reaches it controls the terminal)",
    )
    add(
        "--control-token",
        default=None,
        metavar="TOKEN",
        help="the control API then requires the header 'Authorization: Bearer TOKEN'",
    )
    add(
        "--max-message-size",
        type=cli.positive_int,
        default=limits.max_message_size,
        metavar="BYTES",
        help=f"longest request accepted (default: {limits.max_message_size})",
    )
    add(
        "--max-connections",
        type=cli.positive_int,
        default=limits.max_connections,
        metavar="N",
        help=f"simultaneous POS connections (default: {limits.max_connections})",
    )
    add(
        "--idle-timeout",
        type=cli.positive_float,
        default=limits.idle_timeout,
        metavar="SECONDS",
        help=f"close a connection that sent nothing for this long while no answer is due "
        f"(default: {limits.idle_timeout:g})",
    )
    add(
        "--assembly-time",
        type=cli.non_negative_float,
        default=limits.assembly_time,
        metavar="SECONDS",
        help="how long to wait for the rest of a request that lacks a mandatory tag before answering AF=09 "
        f"(default: {limits.assembly_time:g})",
    )
    return parser


def build_terminal(args: argparse.Namespace, index: int = 0) -> Terminal:
    settings = TerminalSettings(
        failure=args.failure,
        failure_type=args.failure_type,
        duration=args.duration,
        payment_type=args.payment_type,
        seller_contract=args.seller_contract,
        profile=args.profile,
        currencies=args.currencies,
        strict=args.strict,
        immediate=args.immediate_answer,
        terminal_id=args.terminal_id,
        merchant_name=args.merchant_name,
        merchant_town=args.merchant_town,
        outcome=args.outcome,
    )
    terminal = Terminal(settings, random.Random(None if args.seed is None else args.seed + index))
    if args.clock is not None:
        terminal.clock = lambda: args.clock
    terminal.scenario = scenarios.build(args.scenario, args.seed, args.magic_amounts)
    return terminal


def build_journal_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caisse-ap-ip-server journal", description="Show the transactions recorded in a journal file."
    )
    parser.add_argument("path", type=Path, help="the file given to --journal")
    parser.add_argument("--last", type=cli.positive_int, default=None, metavar="N", help="only the last N")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    return parser


def show_journal(argv: list[str]) -> int:
    parser = build_journal_parser()
    args = parser.parse_args(argv)
    try:
        entries = journal.read(args.path, args.last)
    except (FileNotFoundError, sqlite3.DatabaseError) as error:
        print(f"caisse-ap-ip-server journal: {args.path}: {error}", file=sys.stderr)
        return cli.EXIT_USAGE
    for entry in entries:
        if args.json:
            print(json.dumps(entry))
            continue
        when = datetime.fromtimestamp(entry["received"]).isoformat(sep=" ", timespec="milliseconds")
        took = entry["acted"] - entry["received"]
        answer = entry["answer"] if entry["answer"] is not None else "(no answer)"
        print(f"#{entry['id']} {when} terminal {entry['terminal']} {entry['peer']} {entry['outcome']}"
              f"{' [' + entry['rule'] + ']' if entry['rule'] else ''} after {took:.3f} s")  # fmt: skip
        print(f"  -> {entry['request']}")
        print(f"  <- {answer}")
    return cli.EXIT_SUCCESS


def build_limits(args: argparse.Namespace) -> Limits:
    return Limits(
        max_message_size=args.max_message_size,
        max_connections=args.max_connections,
        idle_timeout=args.idle_timeout,
        assembly_time=args.assembly_time,
        after_answer=args.after_answer,
        busy=args.busy,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["journal"]:
        return show_journal(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    cli.setup_logging(args.log_level)
    ports = args.terminals if isinstance(args.terminals, list) else _consecutive(args.port, args.terminals)
    try:
        terminals = [build_terminal(args, index) for index in range(len(ports))]
    except scenarios.ScenarioError as error:
        parser.error(f"scenario {error}")
    from twisted.internet import reactor
    from twisted.internet.error import CannotListenError
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    globalLogBeginner.beginLoggingTo([STDLibLogObserver()], redirectStandardIO=False)
    if args.log_level != "debug":
        logging.getLogger("twisted").setLevel(logging.WARNING)  # no "starting on port" chatter
    _allow_open_files(args.max_connections * len(ports) + 64)
    recorded = journal.Journal(args.journal, args.journal_cap, reactor)
    factories = [
        TerminalFactory(terminal, build_limits(args), reactor, recorded, name=str(number))
        for number, terminal in enumerate(terminals, 1)
    ]
    listening = []
    for factory, port in zip(factories, ports, strict=True):
        try:
            listening.append(listen(factory, port, args.host))
        except CannotListenError as error:
            return _cannot_listen(args.host, port, error)
    # announced once the reactor runs, so that a SIGINT/SIGTERM sent right after it stops cleanly
    for port in listening:
        reactor.callWhenRunning(print, f"listening on {_address(port)}", flush=True)
    if args.control_port is not None:
        api = control.ControlAPI(factories, args.control_token, args.scenario, args.seed, args.magic_amounts)
        try:
            control_port = control.listen(api, args.control_port, args.control_host, reactor)
        except CannotListenError as error:
            return _cannot_listen(args.control_host, args.control_port, error)
        reactor.callWhenRunning(print, f"control on {_address(control_port)}", flush=True)
    reactor.callWhenRunning(log.info, "terminal ready: %s", _describe(terminals[0].settings))
    # a background job of a shell starts with SIGINT ignored, and Twisted then leaves it so: SIGINT must stop us
    signal.signal(signal.SIGINT, signal.default_int_handler)
    reactor.run()
    log.info("stopped")
    return cli.EXIT_SUCCESS


def _cannot_listen(host: str, port: int, error) -> int:
    reason = getattr(error.socketError, "strerror", None) or error.socketError
    print(f"caisse-ap-ip-server: cannot listen on {host}:{port}: {reason}", file=sys.stderr)
    return cli.EXIT_CANNOT_LISTEN


def _consecutive(first: int, count: int) -> list[int]:
    return [0] * count if first == 0 else list(range(first, first + count))


def _address(port) -> str:
    address = port.getHost()
    host = f"[{address.host}]" if ":" in address.host else address.host
    return f"{host}:{address.port}"


def _describe(settings: TerminalSettings) -> str:
    outcome = f"failure ({settings.failure_type})" if settings.failure else f"success ({settings.payment_type})"
    if settings.outcome != outcomes.DEFAULT:
        outcome = f"outcome {settings.outcome.describe()}"
    accepted = (
        "all currencies" if settings.currencies is None else "currencies " + ",".join(sorted(settings.currencies))
    )
    return (
        f"{outcome} after {settings.duration:g} s, contract {settings.seller_contract}, "
        f"profile {settings.profile}, {accepted}"
    )


def _allow_open_files(wanted: int) -> None:
    """Raise the soft file-descriptor limit so that --max-connections can really be reached."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


if __name__ == "__main__":
    sys.exit(main())
