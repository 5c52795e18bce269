"""caisse-ap-ip-server: a Caisse-AP over IP payment terminal simulator."""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__, cli
from .server import Limits, TerminalFactory, listen
from .terminal import FAILURE_TYPES, PAYMENT_TYPES, Terminal, TerminalSettings

log = logging.getLogger("caisse_ap_ip.server")


def seller_contract(text: str) -> str:
    if not 1 <= len(text) <= 10 or not text.isascii() or not text.isprintable():
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 to 10 printable ASCII characters")
    return text


def build_parser() -> argparse.ArgumentParser:
    limits = Limits()
    parser = argparse.ArgumentParser(
        prog="caisse-ap-ip-server",
        description="Simulate a payment terminal speaking Caisse-AP over IP.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    cli.add_log_level(parser)
    parser.add_argument(
        "-p",
        "--port",
        type=cli.port_number,
        default=8888,
        help="TCP port to listen on; 0 picks a free one (default: 8888)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 or :: to accept POS of the LAN (default: 127.0.0.1)",
    )
    parser.add_argument(
        "-f", "--failure", action="store_true", help="every payment fails (AE=01) with the --failure-type reason"
    )
    parser.add_argument(
        "-ft",
        "--failure-type",
        type=cli.choice(FAILURE_TYPES),
        default="abandon",
        metavar="TYPE",
        help="abandon, timeout, refused or forbidden: AF 11, 08, 04, 05 "
        "(default: abandon); a check always fails with AF 04",
    )
    parser.add_argument(
        "-d",
        "--duration",
        type=cli.non_negative_float,
        default=3.0,
        metavar="SECONDS",
        help="time the customer takes before the terminal answers (default: 3)",
    )
    parser.add_argument(
        "-pt",
        "--payment-type",
        type=cli.choice(PAYMENT_TYPES),
        default="cbcontact",
        metavar="TYPE",
        help="cbcontact, cbcontactless, amexcontact or amexcontactless: "
        "the card of successful payments (default: cbcontact)",
    )
    parser.add_argument(
        "-sc",
        "--seller-contract",
        type=seller_contract,
        default="424242",
        metavar="NUMBER",
        help="merchant contract number returned in CG, at most 10 characters (default: 424242)",
    )
    parser.add_argument(
        "--max-message-size",
        type=cli.positive_int,
        default=limits.max_message_size,
        metavar="BYTES",
        help=f"longest request accepted (default: {limits.max_message_size})",
    )
    parser.add_argument(
        "--max-connections",
        type=cli.positive_int,
        default=limits.max_connections,
        metavar="N",
        help=f"simultaneous POS connections (default: {limits.max_connections})",
    )
    parser.add_argument(
        "--idle-timeout",
        type=cli.positive_float,
        default=limits.idle_timeout,
        metavar="SECONDS",
        help="close a connection that sent nothing for this long while no "
        f"answer is due (default: {limits.idle_timeout:g})",
    )
    parser.add_argument(
        "--assembly-time",
        type=cli.non_negative_float,
        default=limits.assembly_time,
        metavar="SECONDS",
        help="how long to wait for the rest of a request that lacks a "
        f"mandatory tag before answering AF=09 (default: {limits.assembly_time:g})",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cli.setup_logging(args.log_level)
    from twisted.internet import reactor
    from twisted.internet.error import CannotListenError
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    globalLogBeginner.beginLoggingTo([STDLibLogObserver()], redirectStandardIO=False)
    if args.log_level != "debug":
        logging.getLogger("twisted").setLevel(logging.WARNING)  # no "starting on port" chatter
    settings = TerminalSettings(
        failure=args.failure,
        failure_type=args.failure_type,
        duration=args.duration,
        payment_type=args.payment_type,
        seller_contract=args.seller_contract,
    )
    limits = Limits(
        max_message_size=args.max_message_size,
        max_connections=args.max_connections,
        idle_timeout=args.idle_timeout,
        assembly_time=args.assembly_time,
    )
    _allow_open_files(limits.max_connections + 64)
    factory = TerminalFactory(Terminal(settings), limits, reactor)
    try:
        port = listen(factory, args.port, args.host)
    except CannotListenError as error:
        reason = getattr(error.socketError, "strerror", None) or error.socketError
        print(f"caisse-ap-ip-server: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return cli.EXIT_CANNOT_LISTEN
    address = port.getHost()
    host = f"[{address.host}]" if ":" in address.host else address.host
    # announced once the reactor runs, so that a SIGINT/SIGTERM sent right after it stops cleanly
    reactor.callWhenRunning(print, f"listening on {host}:{address.port}", flush=True)
    reactor.callWhenRunning(log.info, "terminal ready: %s", _describe(settings))
    reactor.run()
    log.info("stopped")
    return cli.EXIT_SUCCESS


def _describe(settings: TerminalSettings) -> str:
    outcome = f"failure ({settings.failure_type})" if settings.failure else f"success ({settings.payment_type})"
    return f"{outcome} after {settings.duration:g} s, contract {settings.seller_contract}"


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
