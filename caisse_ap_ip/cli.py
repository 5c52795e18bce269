"""What both command lines share: the argparse adapter of the value parsers, logging set-up, exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from . import options

EXIT_SUCCESS = 0
EXIT_NOT_PERFORMED = 1  # client: the terminal answered AE=01
EXIT_USAGE = 2
EXIT_NO_ANSWER = 3  # client: refused, timed out, malformed answer
EXIT_CANNOT_LISTEN = 3  # server: the address cannot be bound
EXIT_ACKNOWLEDGED = 4  # client: AE=11, the terminal took the request without a final result
EXIT_PARTIAL = 5  # client: AE=10 for a lower amount than requested (partial authorisation)

LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


def argument_type(parse: Callable[[object], object], name: str | None = None) -> Callable[[str], object]:
    """A value parser of ``options`` as an argparse type: its SettingError becomes argparse's usage error."""

    def convert(text: str) -> object:
        try:
            return parse(text)
        except options.SettingError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = name or getattr(parse, "__name__", "value")
    return convert


def choice(choices) -> Callable[[str], str]:
    """An argparse type that accepts any case and reports the valid choices."""
    return argument_type(options.choice(choices), "choice")


positive_float = argument_type(options.positive_float)
positive_int = argument_type(options.positive_int)
port_number = argument_type(options.port_number)


def add_log_level(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-l",
        "--log-level",
        type=choice(LOG_LEVELS),
        default="info",
        metavar="LEVEL",
        help="debug, info, warn or error (default: info); logs go to stderr",
    )


LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
TONE_COLOURS = {"success": "\x1b[32m", "failure": "\x1b[31m", "other": "\x1b[33m"}  # green, red, yellow


class _ColouredResults(logging.Formatter):
    """Colours the lines that carry a result's tone (the server's transaction lines)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        colour = TONE_COLOURS.get(getattr(record, "tone", None))
        return f"{colour}{text}\x1b[0m" if colour else text


def formatter_for(stream) -> logging.Formatter:
    """Colours on a terminal, unless NO_COLOR is set (https://no-color.org); plain text elsewhere."""
    coloured = stream.isatty() and not os.environ.get("NO_COLOR")
    return (_ColouredResults if coloured else logging.Formatter)(LOG_FORMAT)


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(sys.stderr))
    logging.basicConfig(level=LOG_LEVELS[level], handlers=[handler])


def stdout_closed() -> None:
    """The reader of our output (head, less, grep -q) has gone: what is left to print goes nowhere, quietly
    (Python would otherwise report the broken pipe again when it flushes at exit)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
