"""Validated values of the server's settings: one place for the command line and the control API.

Each function takes text and returns the value, or raises argparse.ArgumentTypeError saying why.
"""

from __future__ import annotations

import argparse
from datetime import datetime

from . import cli, codes, outcomes
from .amounts import AmountError, currency_from_code, currency_number
from .outcomes import Outcome


def seller_contract(text: str) -> str:
    if not 1 <= len(text) <= 10 or not text.isascii() or not text.isprintable():
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 to 10 printable ASCII characters")
    return text


def failure_type(text: str) -> str:
    """A failure name (refused) or an AF code (04); AF 01 means authorised, which is no failure."""
    try:
        codes.failure_code(text)
    except codes.CodeError:
        names = ", ".join(codes.FAILURE_TYPES)
        raise argparse.ArgumentTypeError(
            f"invalid choice {text!r} (choose from {names}, or an AF code 00, 02 to 13)"
        ) from None
    return text.lower()


def currencies(text: str) -> frozenset[str] | None:
    """'all', or ISO 4217 codes separated by commas (EUR,XPF,USD or 978): the ISO numbers accepted."""
    if text.strip().lower() == "all":
        return None
    try:
        return frozenset(currency_number(currency_from_code(code)) for code in text.split(",") if code.strip())
    except AmountError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def terminal_id(text: str) -> str:
    if len(text) != 12 or not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} must be 12 digits")
    return text


def ticket_line(text: str) -> str:
    if not 1 <= len(text) <= 24:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 to 24 characters")
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(f"{text!r} has characters that Latin-1 tickets cannot print") from None
    return text


def clock_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date and time like 2026-03-14T10:42:17") from None


def outcome(text: str) -> Outcome:
    try:
        return outcomes.parse(text)
    except outcomes.OutcomeError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def after_answer(text: str) -> float | None:
    """keep, close, or a number of seconds after which the terminal closes the connection."""
    if text.lower() == "keep":
        return None
    if text.lower() == "close":
        return 0.0
    try:
        return cli.non_negative_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not keep, close or a number of seconds") from None


def terminals(text: str) -> int | list[int]:
    """How many terminals (3), or the ports of each (9001,9005)."""
    try:
        if "," not in text:
            count = int(text)
            if not 1 <= count <= 100:
                raise argparse.ArgumentTypeError(f"{text!r}: between 1 and 100 terminals")
            return count
        return [cli.port_number(port.strip()) for port in text.split(",") if port.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number of terminals nor a list of ports") from None
