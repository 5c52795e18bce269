"""caisse-ap-ip-client: a point of sale that asks a Caisse-AP over IP terminal for a payment."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from . import __version__, cli, display
from .amounts import AmountError, currency_from_code, parse_amount
from .client import (
    DEFAULT_QUIET_TIME,
    DEFAULT_TIMEOUT,
    ClientError,
    Exchange,
    echo_mismatches,
    payment_request,
    transact,
)
from .protocol import encode

log = logging.getLogger("caisse_ap_ip.client")
PROG = "caisse-ap-ip-client"
STATUS_EXIT_CODES = {"10": cli.EXIT_SUCCESS, "01": cli.EXIT_NOT_PERFORMED, "11": cli.EXIT_ACKNOWLEDGED}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Send a payment request to a Caisse-AP over IP terminal and show its answer.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    cli.add_log_level(parser)
    parser.add_argument(
        "-d", "--destination", default="127.0.0.1", help="terminal's IP address or host name (default: 127.0.0.1)"
    )
    parser.add_argument("-p", "--port", type=cli.port_number, default=8888, help="terminal's port (default: 8888)")
    parser.add_argument(
        "-a",
        "--amount",
        default="112.45",
        help="amount in currency units, e.g. 112.45; negative for a refund (default: 112.45)",
    )
    parser.add_argument(
        "-c",
        "--currency",
        default="EUR",
        help="ISO 4217 currency, letters or number: EUR, USD, JPY, XPF, 978 (default: EUR)",
    )
    parser.add_argument("-ck", "--check", action="store_true", help="pay by check (CC=00C) instead of card")
    parser.add_argument(
        "--timeout",
        type=cli.positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up waiting for the answer after this long (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--quiet-time",
        type=cli.positive_float,
        default=DEFAULT_QUIET_TIME,
        metavar="SECONDS",
        help="an answer that ends on a record boundary is complete once the terminal stays "
        f"silent this long, unless it closes the connection first (default: {DEFAULT_QUIET_TIME:g})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of text")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    cli.setup_logging(args.log_level)
    try:
        currency = currency_from_code(args.currency)
        request = payment_request(parse_amount(args.amount), currency, check=args.check)
    except AmountError as error:
        parser.error(str(error))
    where = f"{args.destination}:{args.port}"
    try:
        exchange = transact(args.destination, args.port, request, timeout=args.timeout, quiet_time=args.quiet_time)
    except ClientError as error:
        return _report_error(args, where, request, str(error))
    status = dict(exchange.answer).get("AE")
    if status not in STATUS_EXIT_CODES:
        return _report_error(
            args,
            where,
            request,
            f"answer from {where} has no valid status: " + display.outcome(exchange.answer),
            exchange,
        )
    exit_code = STATUS_EXIT_CODES[status]
    warnings = echo_mismatches(request, exchange.answer) if status == "10" else []
    if args.json:
        print(json.dumps(_as_json(where, request, exchange, exit_code, warnings=warnings)))
    else:
        print(_as_text(where, request, exchange, warnings))
    return exit_code


def _report_error(args, where, request, message, exchange: Exchange | None = None) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    if args.json:
        print(json.dumps(_as_json(where, request, exchange, cli.EXIT_NO_ANSWER, error=message)))
    return cli.EXIT_NO_ANSWER


def _as_text(where: str, request, exchange: Exchange, warnings: list[str]) -> str:
    closing = "closed by the terminal" if exchange.closed_by_terminal else "left open by the terminal"
    lines = [
        f"request to {where} ({len(exchange.request_bytes)} bytes): {exchange.request_bytes.decode()}",
        display.table(request),
        f"answer after {exchange.elapsed:.2f} s ({len(exchange.answer_bytes)} bytes, connection {closing}): "
        f"{exchange.answer_bytes.decode()}",
        display.table(exchange.answer),
    ]
    lines += [f"warning: {warning}" for warning in warnings]
    lines.append(f"result: {display.outcome(exchange.answer)}")
    return "\n".join(lines)


def _as_json(where, request, exchange: Exchange | None, exit_code: int, *, warnings=(), error=None) -> dict:
    answer = None
    if exchange is not None:
        answer = {
            "frame": exchange.answer_bytes.decode(),
            "records": display.describe(exchange.answer),
            "elapsed": round(exchange.elapsed, 3),
            "closed_by_terminal": exchange.closed_by_terminal,
        }
    return {
        "destination": where,
        "request": {"frame": encode(request).decode(), "records": display.describe(request)},
        "answer": answer,
        "result": display.outcome(exchange.answer) if exchange and error is None else "error",
        "exit_code": exit_code,
        "warnings": list(warnings),
        "error": error,
    }


if __name__ == "__main__":
    sys.exit(main())
