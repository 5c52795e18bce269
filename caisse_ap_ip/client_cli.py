"""caisse-ap-ip-client: a point of sale that sends any Caisse-AP request to a terminal and explains the answer."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import __version__, answers, cli, codes, display
from .amounts import AmountError, currency_from_code, parse_amount
from .answers import ECHO_MODES, Expectation, echo_mismatches, partial_authorisation
from .client import (
    DEFAULT_PRINT_TEXT,
    DEFAULT_QUIET_TIME,
    DEFAULT_TIMEOUT,
    ClientError,
    Exchange,
    build_request,
    records_of,
    transact,
    with_records,
)
from .profiles import PROFILES
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


def _choices(names) -> str:
    return ", ".join(names)


def ticket_file(text: str) -> Path:
    """--ticket-out: a file that can be written, checked before anything is sent to the terminal."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no folder {path.parent}")
    return path


# every option once: flags, then add_argument's keywords (the help says its default)
OPTIONS = [
    (("-d", "--destination"), dict(default="127.0.0.1",
                                   help="terminal's IP address or host name (default: 127.0.0.1)")),
    (("-p", "--port"), dict(type=cli.port_number, default=8888, help="terminal's port (default: 8888)")),
    (("-a", "--amount"), dict(default="112.45",
                              help="amount in currency units, e.g. 112.45; negative for a refund (default: 112.45)")),
    (("-c", "--currency"), dict(default="EUR",
                                help="ISO 4217 currency, letters or number: EUR, USD, JPY, XPF, 978 (default: EUR)")),
    (("-ck", "--check"), dict(action="store_true", help="pay by check (CC=00C) instead of card")),
    (("--action",), dict(type=cli.choice(codes.ACTION_CODES), default=codes.DEBIT.name, metavar="ACTION",
                         help=f"what to ask: {_choices(codes.ACTION_CODES)} (default: {codes.DEBIT.name})")),
    (("--pos-number",), dict(type=pos_number, default="01", metavar="NN",
                             help="cash register number, CA (default: 01)")),
    (("--immediate",), dict(action="store_true", help="ask for an immediate answer (BA=1)")),
    (("--wait-final",), dict(action="store_true", help="after an AE=11 to an immediate request, keep reading until "
                             "the final answer (a request without BA=1 always does)")),
    (("--ticket",), dict(type=cli.choice(codes.TICKET_COPIES), default=None, metavar="WHICH",
                         help="ask the terminal for the customer, merchant or both tickets (CK); a duplicate asks "
                         "for customer")),
    (("--ticket-format",), dict(type=cli.choice(codes.TICKET_FORMATS), default="text", metavar="FORMAT",
                                help="text or html, for --ticket and the print action (default: text)")),
    (("--ticket-out",), dict(type=ticket_file, default=None, metavar="FILE",
                             help="save the tickets of the answer to FILE")),
    (("--private-data",), dict(type=record_value("CF", 99), default=None, metavar="TEXT",
                               help="private data (CF), returned unchanged by the terminal")),
    (("--reference",), dict(type=record_value("CH"), default=None, metavar="TEXT",
                            help="external reference (CH), e.g. of the debit to cancel")),
    (("--protocol-version",), dict(type=protocol_version, default=codes.DEFAULT_VERSION, metavar="NNNN",
                                   help=f"CZ of the request (default: {codes.DEFAULT_VERSION})")),
    (("--print-text",), dict(default=DEFAULT_PRINT_TEXT, metavar="TEXT", help="what the print action prints, "
                             "Latin-1 text; \\n for a new line (default: IMPRESSION DE TEST)")),
    (("--tag",), dict(type=tag_assignment, action="append", default=[], metavar="XX=VALUE",
                      help="set any record of the request (replaces a tag already there); repeatable")),
    (("--raw",), dict(type=raw_frame, default=None, metavar="FRAME", help="send FRAME as given instead of building "
                      "a request; Python escapes such as \\r\\n or \\xff allowed")),
    (("--profile",), dict(type=cli.choice(PROFILES), default="original", metavar="NAME",
                          help=f"terminal family whose answers to expect: {_choices(PROFILES)}; a card success is "
                          "whole once it carries that family's card records (default: original)")),
    (("--check-echo",), dict(type=cli.choice(ECHO_MODES), default="numeric", metavar="MODE",
                             help="compare the echo of a successful payment: numeric (CB as a number), exact (byte "
                             "for byte) or off (default: numeric)")),
    (("--timeout",), dict(type=cli.positive_float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                          help=f"give up waiting for the answer after this long (default: {DEFAULT_TIMEOUT:g})")),
    (("--quiet-time",), dict(type=cli.positive_float, default=DEFAULT_QUIET_TIME, metavar="SECONDS",
                             help="an answer that lacks something expected is complete once the terminal stays "
                             f"silent this long (default: {DEFAULT_QUIET_TIME:g})")),
    (("--json",), dict(action="store_true", help="print one JSON object on stdout instead of text")),
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Send a request to a Caisse-AP over IP terminal and explain its answer."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    cli.add_log_level(parser)
    for flags, options in OPTIONS:
        parser.add_argument(*flags, **options)
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
    records = records_of(request)
    where = f"{args.destination}:{args.port}"
    progress = _progress_line(args)
    try:
        exchange = transact(
            args.destination, args.port, request, timeout=args.timeout, quiet_time=args.quiet_time,
            expectation=Expectation.of(records, args.profile, args.wait_final), progress=progress,
        )  # fmt: skip
    except ClientError as error:
        return _report_error(args, where, request, str(error))
    finally:
        if progress is not None:
            progress.clear()
    status = dict(exchange.answer).get("AE")
    if status not in STATUS_EXIT_CODES:
        message = f"answer from {where} has no valid status: {display.outcome(exchange.answer)}"
        return _report_error(args, where, request, message, exchange)
    report = _Report(where, request, records, exchange, args.check_echo)
    tickets = display.tickets(exchange.answer)
    if args.ticket_out and tickets:
        try:
            args.ticket_out.write_text("\n".join(ticket["text"] for ticket in tickets), encoding="utf-8")
        except OSError as error:  # the payment went through all the same: say both
            log.error("tickets not saved to %s: %s", args.ticket_out, error.strerror or error)
    try:
        print(json.dumps(report.as_json()) if args.json else report.as_text(), flush=True)
    except BrokenPipeError:  # the reader (head, grep -q) has had enough: the exit code still says it all
        cli.stdout_closed()
    return report.exit_code


class _ProgressLine:
    """'waiting for the terminal... 12 s' on a terminal's stderr, rewritten in place each second."""

    def __init__(self, stream):
        self.stream = stream
        self.shown = 0

    def __call__(self, waited: float) -> None:
        seconds = int(waited)
        if seconds >= 1 and seconds != self.shown:
            self.shown = seconds
            self.stream.write(f"\rwaiting for the terminal... {seconds} s")
            self.stream.flush()

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _progress_line(args: argparse.Namespace) -> _ProgressLine | None:
    quiet = args.json or cli.LOG_LEVELS[args.log_level] > logging.INFO
    return None if quiet or not sys.stderr.isatty() else _ProgressLine(sys.stderr)


def _report_error(args, where, request, message, exchange: Exchange | None = None) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    if args.json:
        print(json.dumps(_Report(where, request, records_of(request), exchange).as_json(error=message)))
    return cli.EXIT_NO_ANSWER


def _escaped(data: bytes) -> str:
    return data.decode("latin-1").encode("unicode_escape").decode("ascii")


def _request_text(request: Message | bytes) -> tuple[str, str]:
    """The frame as sent (escaped where not printable) and its table, or why it is no valid frame."""
    if not isinstance(request, bytes):
        return encode(request).decode(), display.table(request)
    try:
        return _escaped(request), display.table(decode(request))
    except FrameError as error:
        return _escaped(request), f"  (not a valid frame: {error})"


class _Report:
    """What the client says about one exchange, as text for a person or JSON for a script."""

    def __init__(self, where, request, records: Message | None, exchange: Exchange | None, echo: str = "numeric"):
        self.where, self.request, self.records, self.exchange = where, request, records, exchange
        answer = exchange.answer if exchange else []
        success = dict(answer).get("AE") == codes.SUCCESS and records is not None
        self.partial = partial_authorisation(records, answer) if success else None
        self.warnings = echo_mismatches(records, answer, echo) if success else []
        if exchange and exchange.trailing:
            self.warnings.append(
                f"{len(exchange.trailing)} stray bytes after the answer: {_escaped(exchange.trailing)}"
            )
        if exchange and exchange.final_missing:
            self.warnings.append("no final answer came after the interim AE=11 (time-out or close)")

    @property
    def exit_code(self) -> int:
        if self.partial:
            return cli.EXIT_PARTIAL
        return STATUS_EXIT_CODES[dict(self.exchange.answer)["AE"]]

    @property
    def result(self) -> str:
        if self.partial:
            amounts = f"{self.partial['authorised']} of {self.partial['requested']} {self.partial['currency']}"
            return f"success: partial authorisation {amounts}"
        return display.outcome(self.exchange.answer)

    def as_text(self) -> str:
        exchange = self.exchange
        frame, table = _request_text(self.request)
        closing = "closed by the terminal" if exchange.closed_by_terminal else "still open"
        lines = [f"request to {self.where} ({len(exchange.request_bytes)} bytes): {frame}", table]
        if exchange.interim:
            lines += [f"interim answer: {encode(exchange.interim).decode()}", display.table(exchange.interim)]
        lines += [
            f"answer after {exchange.elapsed:.2f} s ({len(exchange.answer_bytes)} bytes, connection {closing}): "
            f"{exchange.answer_bytes.decode()}",
            display.table(exchange.answer),
        ]
        lines += _extension_lines(dict(exchange.answer).get("AF"))
        for number, ticket in enumerate(display.tickets(exchange.answer), 1):
            lines.append(f"ticket {number} ({ticket['meaning']}):")
            lines += [f"  | {line}" for line in ticket["text"].splitlines()]
        lines += [f"warning: {warning}" for warning in self.warnings]
        lines.append(f"result: {self.result}")
        return "\n".join(lines)

    def as_json(self, error: str | None = None) -> dict:
        exchange, frame = self.exchange, _request_text(self.request)[0]
        return {
            "destination": self.where,
            "request": {"frame": frame, "records": display.describe(self.records) if self.records else None},
            "interim": _message_json(exchange.interim) if exchange and exchange.interim else None,
            "answer": _answer_json(exchange) if exchange else None,
            "trailing": _escaped(exchange.trailing) if exchange and exchange.trailing else None,
            "partial": self.partial,
            "result": "error" if error or not exchange else self.result,
            "exit_code": cli.EXIT_NO_ANSWER if error else self.exit_code,
            "warnings": self.warnings,
            "error": error,
        }


def _extension_lines(af: str | None) -> list[str]:
    if not af or len(af) <= 2:
        return []
    read = answers.complement(af)
    if read["fields"] is None:
        return [f"AF extension after the code {read['code']}: {read['extension']!r}"]
    names = {key: name for key, name, _ in codes.AF_EXTENSION}
    shown = [f"{names[key]} {value!r}" for key, value in read["fields"].items() if value]
    return [f"AF extension after the code {read['code']}: {'; '.join(shown) or 'blank'}"]


def _message_json(message: Message) -> dict:
    return {"frame": encode(message).decode(), "records": display.describe(message)}


def _answer_json(exchange: Exchange) -> dict:
    af = dict(exchange.answer).get("AF")
    return {
        "frame": exchange.answer_bytes.decode(),
        "records": display.describe(exchange.answer),
        "tickets": display.tickets(exchange.answer),
        "af": answers.complement(af) if af else None,
        "elapsed": round(exchange.elapsed, 3),
        "closed_by_terminal": exchange.closed_by_terminal,
    }


if __name__ == "__main__":
    sys.exit(main())
