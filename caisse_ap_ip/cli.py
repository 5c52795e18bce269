"""What both command lines share: option types, logging set-up, exit codes."""

from __future__ import annotations

import argparse
import logging

EXIT_SUCCESS = 0
EXIT_NOT_PERFORMED = 1  # client: the terminal answered AE=01
EXIT_USAGE = 2
EXIT_NO_ANSWER = 3  # client: refused, timed out, malformed answer
EXIT_CANNOT_LISTEN = 3  # server: the address cannot be bound
EXIT_ACKNOWLEDGED = 4  # client: AE=11, the terminal took the request without a final result
EXIT_PARTIAL = 5  # client: AE=10 for a lower amount than requested (partial authorisation)

LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


def choice(choices):
    """An argparse type that accepts any case and reports the valid choices."""

    def parse(text: str) -> str:
        value = text.lower()
        if value not in choices:
            raise argparse.ArgumentTypeError(f"invalid choice {text!r} (choose from {', '.join(choices)})")
        return value

    return parse


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is not between 0 and 65535")
    return value


def add_log_level(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-l",
        "--log-level",
        type=choice(LOG_LEVELS),
        default="info",
        metavar="LEVEL",
        help="debug, info, warn or error (default: info); logs go to stderr",
    )


def setup_logging(level: str) -> None:
    logging.basicConfig(level=LOG_LEVELS[level], format="%(asctime)s %(levelname)s %(message)s")
