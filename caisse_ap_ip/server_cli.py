"""caisse-ap-ip-server: a Caisse-AP over IP payment terminal simulator."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sqlite3
import sys
from datetime import datetime
from pathlib import Path

from . import cli, control, display, export, journal, outcomes, prompt, scenarios, settings
from .simulator import CannotListen, Simulator
from .terminal import TerminalSettings

log = logging.getLogger("caisse_ap_ip.server")


def build_journal_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caisse-ap-ip-server journal",
        description="Show the transactions recorded in a journal file, or export the answers of a real terminal.",
    )
    parser.add_argument("path", type=Path, help="the file given to --journal")
    parser.add_argument("--last", type=cli.positive_int, default=None, metavar="N", help="only the last N")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    parser.add_argument(
        "--export-scenario", type=Path, metavar="FILE",
        help="write a scenario file that replays the answers of the real terminal (transactions relayed by --proxy): "
        "one replay rule per request shape; load it with --scenario FILE",
    )  # fmt: skip
    return parser


def show_journal(argv: list[str]) -> int:
    parser = build_journal_parser()
    args = parser.parse_args(argv)
    try:
        entries = journal.read(args.path, args.last)
    except (FileNotFoundError, sqlite3.DatabaseError) as error:
        print(f"caisse-ap-ip-server journal: {args.path}: {error}", file=sys.stderr)
        return cli.EXIT_USAGE
    if args.export_scenario is not None:
        return _export(entries, args.path, args.export_scenario)
    try:
        for entry in entries:
            print(json.dumps(entry) if args.json else _journal_text(entry))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader (head, less) has had enough: not an error
        cli.stdout_closed()
    return cli.EXIT_SUCCESS


def _export(entries: list[dict], source: Path, target: Path) -> int:
    try:
        text, rules = export.scenario(entries, str(source), datetime.now())
        target.write_text(text, encoding="utf-8")
    except (export.NothingToExport, OSError) as error:
        print(f"caisse-ap-ip-server journal: {error}", file=sys.stderr)
        return cli.EXIT_USAGE
    print(f"{target}: {rules} rule{'s' if rules > 1 else ''} replaying the answers of {source}")
    return cli.EXIT_SUCCESS


def _journal_text(entry: dict) -> str:
    when = datetime.fromtimestamp(entry["received"]).isoformat(sep=" ", timespec="milliseconds")
    took = entry["acted"] - entry["received"]
    answer = entry["answer"] if entry["answer"] is not None else "(no answer)"
    rule = f" [{entry['rule']}]" if entry["rule"] else ""
    text = (
        f"#{entry['id']} {when} terminal {entry['terminal']} {entry['peer']} {entry['outcome']}{rule} "
        f"after {took:.3f} s\n  -> {entry['request']}\n  <- {answer}"
    )
    return text + _relay_text(entry["proxy"], entry["answer"]) if entry["proxy"] else text


def _relay_text(relayed: dict, answer: str | None) -> str:
    """How the transaction went through the proxy: each segment, the terminal's close, and what the terminal
    sent when the POS got something else."""
    lines = [f"  proxied to {relayed['terminal']} (seconds from the request's first byte):"]
    for segment in relayed["segments"]:
        direction = "POS -> terminal" if segment["from"] == journal.POS else "terminal -> POS"
        lines.append(f"    +{segment['at']:.3f} s  {direction}  {segment['size']:5d} bytes")
    closes = [
        (relayed["pos_half_closed_at"], "the POS shut its sending side (half-close)"),
        (relayed["terminal_closed_at"] if relayed["terminal_closed"] else None, "closed by the terminal"),
    ]
    for at, what in sorted((at, what) for at, what in closes if at is not None):
        lines.append(f"    +{at:.3f} s  {what}")
    if relayed["terminal_answer"] not in (None, answer):
        lines.append(f"  terminal sent: {relayed['terminal_answer']}")
    return "\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["journal"]:
        return show_journal(argv[1:])
    parser = settings.build_parser()
    args = parser.parse_args(argv)
    if args.control_port is None and not args.ui:
        given = [flag for flag, value in (("--control-token", args.control_token), ("--control-host",
                 args.control_host != settings.BY_NAME["control_host"].default)) if value]  # fmt: skip
        if given:
            parser.error(f"{' and '.join(given)}: there is no control API without --control-port or --ui")
    cli.setup_logging(args.log_level)
    from twisted.internet import reactor

    try:
        simulator = Simulator(args, reactor)
    except scenarios.ScenarioError as error:
        parser.error(f"scenario {error}")
    except sqlite3.DatabaseError as error:  # OperationalError too: a folder, a missing folder, not a database
        parser.error(f"argument --journal: {args.journal}: {error}")
    _log_through_stdlib(args.log_level)
    _allow_open_files(args.max_connections * len(simulator.ports) + 64)
    try:
        lines = simulator.start()
    except CannotListen as error:
        print(f"caisse-ap-ip-server: {error}", file=sys.stderr)
        return cli.EXIT_CANNOT_LISTEN
    if simulator.control_port is not None and not args.control_token and not control.is_loopback(args.control_host):
        log.warning(
            "the control API on %s has no --control-token: anyone who reaches it controls the terminal",
            args.control_host,
        )
    if not args.no_prompt:
        prompt.attach(simulator.decisions, reactor)
    # announced once the reactor runs, so that a SIGINT/SIGTERM sent right after it stops cleanly
    for line in lines:
        reactor.callWhenRunning(print, line, flush=True)
    if args.proxy is None:
        reactor.callWhenRunning(log.info, "terminal ready: %s", _describe(simulator.terminals[0].terminal_settings))
    else:
        relayed = "proxy ready: every POS connection relayed to the terminal at %s, outcome %s"
        reactor.callWhenRunning(log.info, relayed, display.address(args.proxy), args.outcome.describe())
    # a background job of a shell starts with SIGINT ignored, and Twisted then leaves it so: SIGINT must stop us
    signal.signal(signal.SIGINT, signal.default_int_handler)
    reactor.addSystemEventTrigger("before", "shutdown", simulator.shutting_down)
    reactor.run()
    log.info("stopped")
    return cli.EXIT_SUCCESS


def _log_through_stdlib(level: str) -> None:
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    globalLogBeginner.beginLoggingTo([STDLibLogObserver()], redirectStandardIO=False)
    if level != "debug":
        logging.getLogger("twisted").setLevel(logging.WARNING)  # no "starting on port" chatter


def _describe(settings: TerminalSettings) -> str:
    outcome = f"failure ({settings.failure_type})" if settings.failure else f"success ({settings.payment_type})"
    if settings.outcome != outcomes.DEFAULT:
        outcome = f"outcome {settings.outcome.describe()}"
    if settings.outcome.kind == "ask":
        return (
            f"{outcome}: each payment waits for a decision, contract {settings.seller_contract}, "
            f"profile {settings.profile}"
        )
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
