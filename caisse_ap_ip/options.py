"""The values a server setting may take: one parser per kind of value, for the command line and the control API.

Each parser takes what the user gave: text (a command-line argument) or a JSON
value (the control API's PATCH /settings), and returns the value the program
uses, or raises ``SettingError`` saying why. No parser knows argparse: the
command line adapts them (``cli.argument_type``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from . import codes, outcomes
from .amounts import AmountError, currency_from_code, currency_number
from .outcomes import Outcome


class SettingError(ValueError):
    """A value a setting cannot take; the message is shown as is, after the option or setting name."""


def shown(value: object) -> str:
    """A value as the user wrote it, quoted: '-1' for the text -1 and for the JSON number -1 alike."""
    return repr(value if isinstance(value, str) else json.dumps(value, default=str))


def text(value: object) -> str:
    if not isinstance(value, str):
        raise SettingError(f"{shown(value)} is not text")
    return value


def token(value: object) -> str:
    """A secret that is sent in a header: not empty, printable, no spaces (one empty token would lock the API)."""
    given = text(value)
    if not given or not given.isprintable() or any(character.isspace() for character in given):
        raise SettingError(f"{shown(value)} is no token: give printable characters without spaces")
    return given


def _number(value: object) -> float:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise SettingError(f"{value!r} is not a number") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise SettingError(f"{shown(value)} is not a number")


def non_negative_float(value: object) -> float:
    number = _number(value)
    if not number >= 0 or math.isinf(number):
        raise SettingError(f"{shown(value)} must be a finite number >= 0")
    return number


def positive_float(value: object) -> float:
    number = _number(value)
    if not number > 0 or math.isinf(number):
        raise SettingError(f"{shown(value)} must be a finite number > 0")
    return number


def integer(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(text(value))
    except (ValueError, SettingError):
        raise SettingError(f"{shown(value)} is not an integer") from None


def positive_int(value: object) -> int:
    number = integer(value)
    if number <= 0:
        raise SettingError(f"{shown(value)} must be > 0")
    return number


def port_number(value: object) -> int:
    try:
        number = integer(value)
    except SettingError:
        raise SettingError(f"{shown(value)} is not a port number") from None
    if not 0 <= number <= 65535:
        raise SettingError(f"port {number} is not between 0 and 65535")
    return number


def boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, str | int) else None
    if word in ("true", "1", "yes", "on"):
        return True
    if word in ("false", "0", "no", "off"):
        return False
    raise SettingError(f"{shown(value)} is not true or false")


def choice(choices: Iterable[str]) -> Callable[[object], str]:
    """A parser of one of these names, in any case; the error lists them."""
    names = list(choices)

    def parse(value: object) -> str:
        name = value.lower() if isinstance(value, str) else None
        if name not in names:
            raise SettingError(f"invalid choice {shown(value)} (choose from {', '.join(names)})")
        return name

    return parse


def seller_contract(value: object) -> str:
    contract = value if isinstance(value, str) else ""
    if not 1 <= len(contract) <= 10 or not contract.isascii() or not contract.isprintable():
        raise SettingError(f"{shown(value)} must be 1 to 10 printable ASCII characters")
    return contract


def failure_type(value: object) -> str:
    """A failure name (refused) or an AF code (04); AF 01 means authorised, which is no failure."""
    try:
        codes.failure_code(text(value))
    except (codes.CodeError, SettingError):
        names = ", ".join(codes.FAILURE_TYPES)
        raise SettingError(f"invalid choice {shown(value)} (choose from {names}, or an AF code 00, 02 to 13)") from None
    return value.lower()


def currencies(value: object) -> frozenset[str] | None:
    """'all' (or JSON null), or ISO 4217 codes separated by commas (EUR,XPF,USD or 978) or in a list."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    given = value.split(",") if isinstance(value, str) else value
    if not isinstance(given, list):
        raise SettingError(f"{shown(value)} is neither 'all' nor a list of currencies")
    try:
        return frozenset(currency_number(currency_from_code(str(code).strip())) for code in given if str(code).strip())
    except AmountError as error:
        raise SettingError(str(error)) from None


def terminal_id(value: object) -> str:
    if not isinstance(value, str) or len(value) != 12 or not value.isdigit():
        raise SettingError(f"{shown(value)} must be 12 digits")
    return value


def ticket_line(value: object) -> str:
    line = value if isinstance(value, str) else ""
    if not 1 <= len(line) <= 24:
        raise SettingError(f"{shown(value)} must be 1 to 24 characters")
    try:
        line.encode("latin-1")
    except UnicodeEncodeError:
        raise SettingError(f"{shown(value)} has characters that Latin-1 tickets cannot print") from None
    return line


def clock_time(value: object) -> datetime:
    try:
        return datetime.fromisoformat(text(value))
    except (ValueError, SettingError):
        raise SettingError(f"{shown(value)} is not a date and time like 2026-03-14T10:42:17") from None


def outcome(value: object) -> Outcome:
    """An outcome in its text form ('failure:refused delay=2') or as a table ({"outcome": "failure", ...})."""
    try:
        return outcomes.coerce(value)
    except outcomes.OutcomeError as error:
        raise SettingError(str(error)) from None


def after_answer(value: object) -> float | None:
    """keep (or JSON null), close, or a number of seconds after which the terminal closes the connection."""
    if value is None or (isinstance(value, str) and value.lower() == "keep"):
        return None
    if isinstance(value, str) and value.lower() == "close":
        return 0.0
    try:
        return non_negative_float(value)
    except SettingError:
        raise SettingError(f"{shown(value)} is not keep, close or a number of seconds") from None


def terminals(value: object) -> int | list[int]:
    """How many terminals (3), or the ports of each (9001,9005 or a list)."""
    if isinstance(value, str) and "," in value:
        return [port_number(port.strip()) for port in value.split(",") if port.strip()]
    if isinstance(value, list):
        return [port_number(port) for port in value]
    try:
        count = integer(value)
    except SettingError:
        raise SettingError(f"{shown(value)} is neither a number of terminals nor a list of ports") from None
    if not 1 <= count <= 100:
        raise SettingError(f"{shown(value)}: between 1 and 100 terminals")
    return count


def terminal_address(value: object) -> tuple[str, int]:
    """HOST:PORT of a terminal to connect to: a name, an IPv4 address, or an IPv6 address in brackets ([::1]:8888)."""
    given = text(value).strip()
    host, colon, port = given.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise SettingError(f"{shown(value)}: write an IPv6 address in brackets, as in [::1]:8888")
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SettingError(f"{shown(value)} is not HOST:PORT with a port from 1 to 65535, e.g. 192.0.2.50:8888")
    return host, int(port)


def path(value: object) -> Path:
    return Path(text(value))
