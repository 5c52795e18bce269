"""caisse-ap-ip-client: a point of sale that sends any Caisse-AP request to a terminal and explains the answer."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import __version__, cli, codes, display
from .amounts import AmountError, currency_from_code, parse_amount
from .client import (
    DEFAULT_PRINT_TEXT,
    DEFAULT_QUIET_TIME,
    DEFAULT_TIMEOUT,
    ClientError,
    Exchange,
    build_request,
    echo_mismatches,
    transact,
    with_records,
)
from .protocol import FrameError, Message, decode, encode, encode_record, is_valid_tag

log = logging.getLogger("caisse_ap_ip.client")
PROG = "caisse-ap-ip-client"
STATUS_EXIT_CODES = {
    codes.SUCCESS: cli.EXIT_SUCCESS,
    codes.FAILURE: cli.EXIT_NOT_PERFORMED,
    codes.ACKNOWLEDGED: cli.EXIT_ACKNOWLEDGED,
}


def pos_number(text: str) -> str:
    if not (text.isdigit() and 1 <= len(text) <= 2):
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or 2 digits")
    return text.zfill(2)


def protocol_version(text: str) -> str:
    if not (text.isdigit() and len(text) == 4):
        raise argparse.ArgumentTypeError(f"{text!r} must be 4 digits, e.g. 0300 or 0320")
    return text


def record_value(tag: str, limit: int = 999):
    def parse(text: str) -> str:
        if not 1 <= len(text) <= limit or not text.isascii():
            raise argparse.ArgumentTypeError(f"{tag} must be 1 to {limit} ASCII characters")
        return text

    return parse


def tag_assignment(text: str) -> tuple[str, str]:
    tag, equals, value = text.partition("=")
    if not equals or not is_valid_tag(tag):
        raise argparse.ArgumentTypeError(f"{text!r} is not XX=VALUE with XX two upper-case letters or digits")
    try:
        encode_record(tag, value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return tag, value


def raw_frame(text: str) -> bytes:
    """The frame as typed, with Python escapes (\\r, \\n, \\xff) for the bytes a shell cannot type."""
    try:
        return text.encode("latin-1").decode("unicode_escape").encode("latin-1")
    except (UnicodeError, ValueError) as error:
        raise argparse.ArgumentTypeError(f"cannot read the frame: {error}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Send a request to a Caisse-AP over IP terminal and explain its answer."
    )
    add = parser.add_argument
    add("--version", action="version", version=f"%(prog)s {__version__}")
    cli.add_log_level(parser)
    add("-d", "--destination", default="127.0.0.1", help="terminal's IP address or host name (default: 127.0.0.1)")
    add("-p", "--port", type=cli.port_number, default=8888, help="terminal's port (default: 8888)")
    add(
        "-a",
        "--amount",
        default="112.45",
        help="amount in currency units, e.g. 112.45; negative for a refund (default: 112.45)",
    )
    add(
        "-c",
        "--currency",
        default="EUR",
        help="ISO 4217 currency, letters or number: EUR, USD, JPY, XPF, 978 (default: EUR)",
    )
    add("-ck", "--check", action="store_true", help="pay by check (CC=00C) instead of card")
    add(
        "--action",
        type=cli.choice(codes.ACTION_CODES),
        default=codes.DEBIT.name,
        metavar="ACTION",
        help=f"what to ask: {', '.join(codes.ACTION_CODES)} (default: {codes.DEBIT.name})",
    )
    add("--pos-number", type=pos_number, default="01", metavar="NN", help="cash register number, CA (default: 01)")
    add("--immediate", action="store_true", help="ask for an immediate answer (BA=1)")
    add(
        "--ticket",
        type=cli.choice(codes.TICKET_COPIES),
        default=None,
        metavar="WHICH",
        help="ask the terminal for the customer, merchant or both tickets (CK); a duplicate asks for customer",
    )
    add(
        "--ticket-format",
        type=cli.choice(codes.TICKET_FORMATS),
        default="text",
        metavar="FORMAT",
        help="text or html, for --ticket and the print action (default: text)",
    )
    add("--ticket-out", type=Path, default=None, metavar="FILE", help="save the tickets of the answer to FILE")
    add(
        "--private-data",
        type=record_value("CF", 99),
        default=None,
        metavar="TEXT",
        help="private data (CF), returned unchanged by the terminal",
    )
    add(
        "--reference",
        type=record_value("CH"),
        default=None,
        metavar="TEXT",
        help="external reference (CH), e.g. of the debit to cancel",
    )
    add(
        "--protocol-version",
        type=protocol_version,
        default=codes.DEFAULT_VERSION,
        metavar="NNNN",
        help="CZ of the request (default: 0300)",
    )
    add(
        "--print-text",
        default=DEFAULT_PRINT_TEXT,
        metavar="TEXT",
        help="what the print action prints, Latin-1 text; \\n for a new line (default: IMPRESSION DE TEST)",
    )
    add(
        "--tag",
        type=tag_assignment,
        action="append",
        default=[],
        metavar="XX=VALUE",
        help="set any record of the request (replaces a tag already there); repeatable",
    )
    add(
        "--raw",
        type=raw_frame,
        default=None,
        metavar="FRAME",
        help="send FRAME as given instead of building a request; Python escapes such as \\r\\n or \\xff allowed",
    )
    add(
        "--timeout",
        type=cli.positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up waiting for the answer after this long (default: {DEFAULT_TIMEOUT:g})",
    )
    add(
        "--quiet-time",
        type=cli.positive_float,
        default=DEFAULT_QUIET_TIME,
        metavar="SECONDS",
        help="an answer that ends on a record boundary is complete once the terminal stays silent this long, "
        f"unless it closes the connection first (default: {DEFAULT_QUIET_TIME:g})",
    )
    add("--json", action="store_true", help="print one JSON object on stdout instead of text")
    return parser


def request_from(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Message | bytes:
    if args.raw is not None:
        return args.raw
    try:
        request = build_request(
            args.action,
            parse_amount(args.amount),
            currency_from_code(args.currency),
            check=args.check,
            pos_number=args.pos_number,
            immediate=args.immediate,
            ticket=args.ticket,
            ticket_format=args.ticket_format,
            private_data=args.private_data,
            reference=args.reference,
            version=args.protocol_version,
            print_text=args.print_text.replace("\\n", "\n"),
        )
    except AmountError as error:
        parser.error(str(error))
    except UnicodeEncodeError:
        parser.error("--print-text has characters that Latin-1 cannot print")
    return with_records(request, args.tag)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    cli.setup_logging(args.log_level)
    request = request_from(args, parser)
    where = f"{args.destination}:{args.port}"
    try:
        exchange = transact(args.destination, args.port, request, timeout=args.timeout, quiet_time=args.quiet_time)
    except ClientError as error:
        return _report_error(args, where, request, str(error))
    status = dict(exchange.answer).get("AE")
    if status not in STATUS_EXIT_CODES:
        message = f"answer from {where} has no valid status: {display.outcome(exchange.answer)}"
        return _report_error(args, where, request, message, exchange)
    exit_code = STATUS_EXIT_CODES[status]
    request_records = _records(request)
    warnings = echo_mismatches(request_records, exchange.answer) if status == codes.SUCCESS and request_records else []
    tickets = display.tickets(exchange.answer)
    if args.ticket_out and tickets:
        args.ticket_out.write_text("\n".join(ticket["text"] for ticket in tickets), encoding="utf-8")
    if args.json:
        print(json.dumps(_as_json(where, request, exchange, exit_code, warnings=warnings)))
    else:
        print(_as_text(where, request, exchange, warnings))
    return exit_code


def _records(request: Message | bytes) -> Message | None:
    if not isinstance(request, bytes):
        return request
    try:
        return decode(request)
    except FrameError:
        return None


def _report_error(args, where, request, message, exchange: Exchange | None = None) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    if args.json:
        print(json.dumps(_as_json(where, request, exchange, cli.EXIT_NO_ANSWER, error=message)))
    return cli.EXIT_NO_ANSWER


def _request_text(request: Message | bytes) -> tuple[str, str]:
    """The frame as sent (escaped where not printable) and its table, or why it is no valid frame."""
    if not isinstance(request, bytes):
        return encode(request).decode(), display.table(request)
    shown = request.decode("latin-1").encode("unicode_escape").decode("ascii")
    try:
        return shown, display.table(decode(request))
    except FrameError as error:
        return shown, f"  (not a valid frame: {error})"


def _as_text(where: str, request: Message | bytes, exchange: Exchange, warnings: list[str]) -> str:
    frame, table = _request_text(request)
    closing = "closed by the terminal" if exchange.closed_by_terminal else "left open by the terminal"
    lines = [
        f"request to {where} ({len(exchange.request_bytes)} bytes): {frame}",
        table,
        f"answer after {exchange.elapsed:.2f} s ({len(exchange.answer_bytes)} bytes, connection {closing}): "
        f"{exchange.answer_bytes.decode()}",
        display.table(exchange.answer),
    ]
    for number, ticket in enumerate(display.tickets(exchange.answer), 1):
        lines.append(f"ticket {number} ({ticket['meaning']}):")
        lines += [f"  | {line}" for line in ticket["text"].splitlines()]
    lines += [f"warning: {warning}" for warning in warnings]
    lines.append(f"result: {display.outcome(exchange.answer)}")
    return "\n".join(lines)


def _as_json(where, request, exchange: Exchange | None, exit_code: int, *, warnings=(), error=None) -> dict:
    answer = None
    if exchange is not None:
        answer = {
            "frame": exchange.answer_bytes.decode(),
            "records": display.describe(exchange.answer),
            "tickets": display.tickets(exchange.answer),
            "elapsed": round(exchange.elapsed, 3),
            "closed_by_terminal": exchange.closed_by_terminal,
        }
    frame, _ = _request_text(request)
    records = _records(request)
    return {
        "destination": where,
        "request": {"frame": frame, "records": display.describe(records) if records is not None else None},
        "answer": answer,
        "result": display.outcome(exchange.answer) if exchange and error is None else "error",
        "exit_code": exit_code,
        "warnings": list(warnings),
        "error": error,
    }


if __name__ == "__main__":
    sys.exit(main())
